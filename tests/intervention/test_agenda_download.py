"""The physiotherapist's agenda downloads as CSV (?format=csv): the lines the page shows, a session
of a participant the viewer may not see only as 'booked', in a constant number of queries."""

from __future__ import annotations

import csv
import io
from typing import Any

import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.intervention import test_intervention
from tests.intervention.test_intervention import NOW, book, randomised, session, sydney
from trial.models import StaffProfile, Trial

physio = test_intervention.physio
booker = test_intervention.booker


def _rows(client: Client, **params: str) -> list[dict[str, str]]:
    response = client.get(reverse("intervention-agenda"), {**params, "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="agenda-')
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_agenda_downloads_its_sessions_and_free_time_and_hides_what_the_viewer_may_not_see(
    client: Client, walkback: Trial, physio: Any, booker: Any, make_staff: Any
) -> None:
    StaffProfile.objects.filter(user=physio).update(timezone="Australia/Sydney")
    syd, bne = randomised(walkback, "walking"), randomised(walkback, "walking", site="BNE")
    book(session(syd, 1), sydney(3, 9), booker)
    book(session(bne, 1), sydney(3, 10), booker, mode="video")
    client.force_login(physio)
    with time_machine.travel(NOW, tick=False):
        page = client.get(reverse("intervention-agenda"), {"date": "2026-03-03"}).content.decode()
        assert 'data-testid="csv-download"' in page and "date=2026-03-03&amp;format=csv" in page
        rows = _rows(client, date="2026-03-03")
    sessions = [r for r in rows if r["entry"] == "session"]
    assert [(r["study_id"], r["site"], r["session"], r["status"]) for r in sessions] == [
        (syd.study_id, "SYD", "1", "Booked"),
        (bne.study_id, "BNE", "1", "Booked"),
    ]
    assert sessions[0]["time"] == "09:00-09:45" and sessions[1]["mode"] == "Video call"
    assert any(r["entry"] == "free" for r in rows) and all(r["date"] == "2026-03-03" for r in rows)
    assert not any("@" in value for r in rows for value in r.values())  # no contact details

    # A coordinator at Sydney only sees the Brisbane session as booked, with no study id.
    client.force_login(make_staff("coordinator", sites=["SYD"], username="sydonly"))
    with time_machine.travel(NOW, tick=False):
        rows = _rows(client, date="2026-03-03", physiotherapist=str(physio.pk))
    shown = [(r["entry"], r["study_id"], r["site"]) for r in rows if r["entry"] != "free"]
    assert shown == [("session", syd.study_id, "SYD"), ("booked", "", "BNE")]


def test_the_agenda_download_keeps_its_query_count_as_bookings_grow(
    client: Client, walkback: Trial, physio: Any, booker: Any
) -> None:
    client.force_login(physio)

    def queries() -> int:
        with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as captured:
            _rows(client, date="2026-03-04", view="week")
        return len(captured)

    book(session(randomised(walkback, "walking"), 1), sydney(3, 9), booker)
    few = queries()
    for day in (4, 5):
        book(session(randomised(walkback, "walking"), 1), sydney(day, 9), booker)
        book(session(randomised(walkback, "walking", site="BNE"), 1), sydney(day, 10, 30), booker)
    assert queries() == few
