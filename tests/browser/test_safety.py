"""A participant reports a new health problem in the monthly questionnaire; a coordinator completes
it as a serious adverse event; the safety contact has the e-mail."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from followup.models import Occurrence
from participants.links import access_link_issue
from participants.models import Participant
from presets.demo import DEMO_PASSWORD_SUFFIX
from safety.models import AdverseEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def open_month(db: Any) -> tuple[Participant, Occurrence]:
    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    # (its welcome message with the link aside: nothing about a questionnaire or a session)
    participant = (
        Participant.objects.filter(status="randomised", site__code="SYD")
        .exclude(messages__occurrence__isnull=False)
        .exclude(messages__session__isnull=False)
        .order_by("pk")
        .first()
    )
    occurrence = Occurrence.objects.filter(participant=participant, instrument="monthly").order_by("month").first()
    Occurrence.objects.filter(pk=occurrence.pk).update(
        opens_at=timezone.now() - timezone.timedelta(days=1),
        closes_at=timezone.now() + timezone.timedelta(days=13),
        status="open",
    )
    return participant, occurrence


def test_a_reported_health_problem_becomes_a_serious_event_and_alerts_safety(
    phone: Any, page: Any, live_server: Any, open_month: tuple[Participant, Occurrence]
) -> None:
    base = live_server.url
    participant, occurrence = open_month
    mail.outbox.clear()

    token = access_link_issue(participant=participant)
    phone.goto(f"{base}/p/{token}/q/{occurrence.pk}/")
    phone.wait_for_selector("#questionnaire")
    phone.click("label[for=lbp_any-no]")
    phone.click("[data-testid=next]")
    phone.wait_for_selector("label[for=new_health_problem-yes]")
    phone.click("label[for=new_health_problem-yes]")
    phone.fill("[name=new_health_problem_details]", "Fell on stairs, broke my ankle, one night in hospital")
    phone.click("[data-testid=next]")
    phone.click("[data-testid=submit]")  # the review
    phone.wait_for_selector("[data-testid=thanks]")
    report = AdverseEvent.objects.get(participant=participant, status="pending")

    page.goto(f"{base}/")
    page.fill("input[name=username]", "coordinator")
    page.fill("input[name=password]", f"coordinator{DEMO_PASSWORD_SUFFIX}")
    page.click("button[type=submit], input[type=submit]")
    page.goto(f"{base}/safety/events/?status=pending")
    page.click(f"a[href='/safety/events/{report.pk}/']")
    page.click("[data-testid=review-button]")
    page.fill("input[name=onset_date]", timezone.localdate().isoformat())
    page.fill("[name=description]", "Fractured ankle after a fall on stairs")
    page.select_option("select[name=category]", "lower_extremity")
    page.locator("[data-testid=choice-severity] label", has_text="Severe").click()
    page.check("input[name=serious]")
    page.check("input[name=serious_criteria][value=hospitalisation]")
    page.select_option("select[name=outcome]", "recovering")
    page.fill("[name=reason]", "Reviewed with the participant by phone")
    page.click("input[type=submit][name=submit]")
    page.wait_for_selector("[data-testid=serious-flag]")

    report.refresh_from_db()
    assert report.status == "open" and report.serious
    alerts = [m for m in mail.outbox if m.to == ["safety@walkback.test"]]
    assert len(alerts) == 1 and participant.study_id in alerts[0].subject
