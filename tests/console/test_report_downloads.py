"""The open report for the data monitoring committee and the status grid download as CSV from their
own URLs (?format=csv): the page's numbers, pooled for every role, in a constant number of queries."""

# ruff: noqa: F811  (the world fixture is imported from test_reports)
from __future__ import annotations

import csv
import io
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.console.test_reports import world  # noqa: F401
from trial.models import Trial


def _csv(client: Client, name: str, **params: str) -> list[dict[str, str]]:
    response = client.get(reverse(name), {**params, "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def _value(rows: list[dict[str, str]], section: str, row: str, measure: str) -> str:
    (found,) = [r["value"] for r in rows if (r["section"], r["row"], r["measure"]) == (section, row, measure)]
    return found


def test_the_monitoring_committee_report_downloads_its_numbers_pooled_for_every_role(
    world: dict[str, Any], walkback: Trial, coordinator: Any, make_staff: Any, client: Client
) -> None:
    client.force_login(coordinator)  # a role that sees arms elsewhere
    page = client.get(reverse("report-dmc")).content.decode()
    assert 'data-testid="csv-download"' in page and "?format=csv" in page
    rows = _csv(client, "report-dmc")
    assert _value(rows, "recruitment", "trial", "randomised") == "6"
    assert _value(rows, "recruitment", "trial", "target") == "701"
    assert _value(rows, "retention", "trial", "withdrew_from_followup") == "1"
    assert _value(rows, "sites", "SYD", "randomised") == "6"
    text = "\n".join(",".join(r.values()) for r in rows).lower()
    for arm in walkback.arms.all():
        assert arm.code not in text and arm.name.lower() not in text
    assert not any(r["section"] == "arms" for r in rows)
    # A blinded role gets the same numbers (over every site: a statistician is not limited to Sydney).
    client.force_login(make_staff("statistician", username="stan"))
    blinded = _csv(client, "report-dmc")
    assert [r for r in blinded if r["section"] != "sites"] == [r for r in rows if r["section"] != "sites"]
    assert _value(blinded, "sites", "SYD", "randomised") == "6"


def test_the_monitoring_committee_download_reads_a_constant_number_of_queries(
    walkback: Trial, enrol: Any, coordinator: Any, sealed_list: Any, client: Client
) -> None:
    from participants import services as journey

    client.force_login(coordinator)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            _csv(client, "report-dmc")
        return len(captured)

    journey.participant_randomise(participant_id=enrol().pk, by=coordinator)
    few = queries()
    for _ in range(3):
        journey.participant_randomise(participant_id=enrol().pk, by=coordinator)
    assert queries() == few


def test_the_status_grid_page_downloads_with_format_csv_as_its_csv_link_does(
    world: dict[str, Any], coordinator: Any, client: Client
) -> None:
    client.force_login(coordinator)
    via_page = b"".join(client.get(reverse("report-status-grid"), {"format": "csv"}).streaming_content)
    via_link = b"".join(client.get(reverse("report-status-grid-csv")).streaming_content)
    assert via_page == via_link and via_page.count(b"\n") == 7  # a header and six randomised participants
