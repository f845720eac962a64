"""A participant answers the monthly questionnaire on a phone from the link in their e-mail."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command

from followup.models import Occurrence, QuestionnaireResponse
from messaging.models import MessagePolicy
from participants.models import Participant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def open_questionnaire(db: Any) -> tuple[Participant, Occurrence]:
    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    # A participant randomised today, with nothing sent yet.
    participant = Participant.objects.filter(status="randomised", site__code="SYD", messages__isnull=True).order_by("pk").first()
    occurrence = Occurrence.objects.filter(participant=participant, instrument="monthly").order_by("month").first()
    # Open the first monthly window now (the demo participant was randomised today).
    from django.utils import timezone

    Occurrence.objects.filter(pk=occurrence.pk).update(
        opens_at=timezone.now() - timezone.timedelta(days=1),
        closes_at=timezone.now() + timezone.timedelta(days=13),
        status="open",
    )
    return participant, occurrence


def test_participant_answers_on_a_phone_and_staff_see_the_answers(
    phone: Any, page: Any, live_server: Any, settings: Any, open_questionnaire: tuple[Participant, Occurrence]
) -> None:
    participant, occurrence = open_questionnaire
    settings.PUBLIC_URL = live_server.url
    MessagePolicy.objects.update(quiet_start=0, quiet_end=0)  # whatever the hour the test runs at
    mail.outbox.clear()
    call_command("send_due_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115 - the sweep beat runs

    (invitation,) = [m for m in mail.outbox if m.to == [participant.contact.email]]
    link = re.search(r"https?://\S+/p/[^/\s]+/(?=\s)", invitation.body).group(0)
    phone.goto(link)
    phone.click("[data-testid=open-questionnaire]")
    phone.wait_for_selector("#questionnaire")
    assert not phone.is_visible("input[name=ep1_pain_avg]")  # follow-up questions appear only after "yes"
    phone.click("label[for=lbp_any-yes]")
    phone.fill("input[name=ep1_start]", "2026-01-10")
    phone.click("label[for=ep1_24h-yes]")
    phone.click("label[for=ep1_interference-3]")
    phone.fill("input[name=ep1_pain_avg]", "5")
    phone.fill("input[name=ep1_pain_worst]", "8")
    phone.reload()  # answers survive a reload midway
    phone.wait_for_selector("#questionnaire")
    assert phone.input_value("input[name=ep1_pain_avg]") == "5"
    phone.click("label[for=ep1_care_sought-no]")
    phone.fill("input[name=ep1_work_days_missed]", "1")
    phone.click("label[for=ep1_more-no]")
    phone.click("label[for=new_health_problem-no]")
    phone.click("button[type=submit]")
    phone.wait_for_selector("[data-testid=thanks]")

    saved = QuestionnaireResponse.objects.get(occurrence=occurrence)
    assert saved.answers["ep1_pain_avg"] == 5 and saved.answers["ep1_interference"] == 2

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "coordinator")
    page.fill("input[name=password]", "coordinator-walkback-demo")
    page.click("button[type=submit], input[type=submit]")
    page.goto(f"{live_server.url}/participants/{participant.pk}/")
    page.click(f"[data-testid=response-{occurrence.pk}] summary")
    # The invitation shows among the participant's messages, as sent.
    # Staff read the question and the answer, not the item's code.
    answers = page.locator(f"[data-testid=response-{occurrence.pk}]")
    assert answers.locator("[data-code=ep1_pain_avg]").inner_text() == "5"
    assert "ep1_pain_avg" not in answers.inner_text()
