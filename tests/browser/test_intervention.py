"""A coordinator books session 1 for a new walking-arm participant; the participant sees it on a
phone and logs a walk; the physiotherapist records the session with a prescription and sees the diary."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from intervention.models import Prescription, Session, Walk
from participants import services as journey
from participants.links import access_link_issue
from participants.models import Participant
from tests.browser.conftest import demo_login
from tests.factories import baseline_complete
from trial.models import Trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ELIGIBLE = {"inclusion": True, "exclusion": False}


@pytest.fixture
def walker(db: Any) -> Participant:
    """A participant randomised just now to the walking arm at Sydney."""
    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    trial = Trial.objects.get(code="walkback")
    coordinator = get_user_model().objects.get(username="coordinator")
    answers = {c.code: ELIGIBLE[c.kind] for c in trial.eligibility.filter(active=True)}
    for n in range(12):
        screening = journey.screening_record(
            site=trial.sites.get(code="SYD"), answers=answers, by=coordinator, referral="community"
        )
        person = journey.participant_enrol(
            screening=screening,
            consent=journey.ConsentInput(method="in_person", signed_name=f"Walker {n}"),
            strata={"prior_episodes_gt2": "yes"},
            contact=journey.ContactInput(email=f"walker{n}@example.org", mobile="+61400000001", timezone="Australia/Sydney"),
            by=coordinator,
        )
        baseline_complete(person, by=coordinator)
        allocation = journey.participant_randomise(participant_id=person.pk, by=coordinator)
        if allocation.arm.code == "walking":
            return person
    raise AssertionError("no walking-arm allocation in 12 tries")


def _login(page: Any, base: str, username: str) -> None:
    demo_login(page, base, username)
    page.wait_for_selector("[data-testid=whoami]", state="attached")


def test_booking_the_diary_and_the_session_record(
    browser: Any, page: Any, phone: Any, live_server: Any, walker: Participant
) -> None:
    base = live_server.url
    first = Session.objects.get(participant=walker, number=1)

    # The coordinator books session 1 into a free slot of the physiotherapist.
    _login(page, base, "coordinator")
    page.goto(f"{base}/sessions/{first.pk}/book/")
    page.click("[data-testid=mode-in_person]")  # first how, then a day (the first with free times is open), then a time
    page.wait_for_selector("[data-testid=days]")
    page.locator("[data-testid=slot]").first.click()
    page.click("[data-testid=book-submit]")
    page.wait_for_load_state()
    first.refresh_from_db()
    assert first.status == "booked" and first.starts_at is not None

    # The participant sees the booking on their phone and logs a walk.
    token = access_link_issue(participant=walker)
    phone.goto(f"{base}/p/{token}/")
    phone.click("[data-testid=my-sessions]")
    booked = phone.inner_text("[data-testid=session-1] [data-testid=booked-time]")
    local = first.starts_at.astimezone(zoneinfo.ZoneInfo("Australia/Sydney"))
    assert f"{local:%A} {local.day} {local:%B}" in booked  # in the participant's time zone
    phone.goto(f"{base}/p/{token}/diary/")
    phone.fill("input[name=minutes]", "25")
    phone.fill("input[name=steps]", "3100")
    phone.click("button[type=submit]")
    phone.wait_for_selector("[data-testid=recent-walks]")
    assert "25" in phone.inner_text("[data-testid=recent-walks]")
    assert Walk.objects.filter(participant=walker, minutes=25).exists()

    # The session takes place (moved to an hour ago), and the physiotherapist records it.
    held_at = (timezone.now() - dt.timedelta(days=2)).replace(minute=7, second=0, microsecond=0)
    Session.objects.filter(pk=first.pk).update(starts_at=held_at, ends_at=held_at + dt.timedelta(minutes=45))
    physio_context = browser.new_context(viewport={"width": 1280, "height": 900})
    physio = physio_context.new_page()
    physio.set_default_timeout(15_000)
    _login(physio, base, "physio")
    physio.goto(f"{base}/sessions/{first.pk}/record/")
    physio.locator("[data-testid=choice-attendance] label", has_text="Attended").click()
    physio.fill("input[name=duration_minutes]", "40")
    physio.locator("input[name=topics]").first.check()
    physio.fill("input[name=walks_per_week]", "3")
    physio.fill("input[name=minutes_per_walk]", "15")
    physio.click("input[type=submit][name=submit]")
    physio.wait_for_load_state()
    prescription = Prescription.objects.get(session=first)
    assert (prescription.walks_per_week, prescription.minutes_per_walk) == (3, 15)

    physio.goto(f"{base}/participants/{walker.pk}/")
    section = physio.inner_text("[data-testid=sessions-section]")
    assert "3 walks a week, 15 minutes each" in section
    assert "25" in physio.inner_text("[data-testid=adherence]")
    physio_context.close()
