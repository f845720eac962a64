"""Every list downloads as CSV from its own URL (?format=csv): every row, the page's filters, and the
page's blinding and contact rules, in a constant number of queries per thousand rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from closeout.queries.services import query_raise
from participants import services
from participants.models import Participant
from safety.services import AEInput, adverse_event_record
from trial import downloads
from trial.models import Trial

NOW = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _clock() -> Any:
    with time_machine.travel(NOW, tick=True):
        yield


def _csv(client: Client, name: str, **params: str) -> list[dict[str, str]]:
    response = client.get(reverse(name), {**params, "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def randomised(walkback: Trial, enrol: Any, coordinator: Any, sealed_list: Any) -> list[Participant]:
    people = [enrol(site="SYD"), enrol(site="SYD"), enrol(site="NCL")]
    for p in people:
        services.participant_randomise(participant_id=p.pk, by=coordinator)
    return people


def test_the_participant_list_downloads_every_row_with_the_arm_only_for_roles_that_see_it(
    randomised: list[Participant], coordinator: Any, make_staff: Any, client: Client
) -> None:
    client.force_login(coordinator)
    page = client.get(reverse("participant-list"), {"site": "SYD"}).content.decode()
    assert 'data-testid="csv-download"' in page and "site=SYD&amp;format=csv" in page
    rows = _csv(client, "participant-list")
    assert sorted(r["study_id"] for r in rows) == sorted(p.study_id for p in randomised)
    arms = set(randomised[0].site.trial.arms.values_list("name", flat=True))
    assert {r["arm"] for r in rows} <= arms and all(r["arm"] for r in rows)
    assert [r["site"] for r in _csv(client, "participant-list", site="NCL")] == ["NCL"]

    client.force_login(make_staff("statistician", username="stan"))
    blinded = _csv(client, "participant-list")
    assert len(blinded) == 3 and "arm" not in blinded[0]


def test_screening_adverse_events_and_queries_download_as_their_pages_show_them(
    walkback: Trial, randomised: list[Participant], coordinator: Any, make_staff: Any, client: Client
) -> None:
    event = adverse_event_record(
        participant=randomised[0],
        data=AEInput(onset_date=dt.date(2026, 3, 1), description="Sore knee", category="lower_extremity", severity="mild"),
        by=coordinator,
    )
    manager = make_staff("data_manager", username="dm")
    query_raise(trial=walkback, record=event, field="description", text="=Which knee?", by=manager)
    client.force_login(coordinator)
    screening = _csv(client, "screening-log")
    assert len(screening) == 3 and {r["study_id"] for r in screening} == {p.study_id for p in randomised}
    (ae,) = _csv(client, "adverse-event-list")
    assert (ae["event"], ae["study_id"], ae["severity"], ae["serious"]) == (str(event.pk), randomised[0].study_id, "Mild", "no")
    client.force_login(manager)
    (query,) = _csv(client, "query-list")
    # A question that starts like a formula is written so that a spreadsheet shows it as text.
    assert (query["study_id"], query["field"], query["question"]) == (randomised[0].study_id, "description", "'=Which knee?")


def test_a_download_reads_a_constant_number_of_queries_however_many_rows(
    walkback: Trial, enrol: Any, coordinator: Any, client: Client
) -> None:
    client.force_login(coordinator)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            _csv(client, "participant-list")
        return len(captured)

    enrol()
    few = queries()
    for _ in range(4):
        enrol()
    assert queries() == few


def test_cells_that_look_like_formulas_are_quoted() -> None:
    lines = "".join(downloads.csv_lines(["a", "b", "c"], [["=1+1", "-2", None], ["plain", 3, "@x"]]))
    assert lines == "a,b,c\n'=1+1,'-2,\nplain,3,'@x\n"
