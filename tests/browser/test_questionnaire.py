"""A participant answers the monthly questionnaire on a phone from the link in their e-mail, a step
at a time: stops, goes on from a second device, corrects a mistake from the error summary, checks
the answers and sends them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command

from followup.models import Occurrence, QuestionnaireResponse, ResponseDraft
from messaging.models import MessagePolicy
from participants.models import Participant
from tests.browser.conftest import _refused_by_csp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def open_questionnaire(db: Any) -> tuple[Participant, Occurrence]:
    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    # A participant randomised today, with nothing sent yet.
    # (its welcome message with the link aside: nothing about a questionnaire or a session)
    participant = (
        Participant.objects.filter(status="randomised", site__code="SYD")
        .exclude(messages__occurrence__isnull=False)
        .exclude(messages__session__isnull=False)
        .order_by("pk")
        .first()
    )
    occurrence = Occurrence.objects.filter(participant=participant, instrument="monthly").order_by("month").first()
    # Open the first monthly window now (the demo participant was randomised today).
    from django.utils import timezone

    Occurrence.objects.filter(pk=occurrence.pk).update(
        opens_at=timezone.now() - timezone.timedelta(days=1),
        closes_at=timezone.now() + timezone.timedelta(days=13),
        status="open",
    )
    return participant, occurrence


@pytest.fixture
def second_phone(browser: Any) -> Iterator[Any]:
    """Another device: a browser context of its own (no cookies, no storage shared)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    refused = _refused_by_csp(page)
    yield page
    context.close()
    assert refused == [], "the Content-Security-Policy refused something"


def _step_label(page: Any) -> str:
    return page.inner_text("[data-testid=progress-label]")


def test_participant_answers_step_by_step_resumes_on_another_phone_and_staff_see_the_answers(
    phone: Any,
    second_phone: Any,
    page: Any,
    live_server: Any,
    settings: Any,
    open_questionnaire: tuple[Participant, Occurrence],
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
    assert _step_label(phone) == "Step 1 of 3"
    assert phone.get_attribute("#wizard-progress", "value") == "1"
    assert not phone.is_visible("input[name=ep1_pain_avg]")  # episode questions come after "yes"
    phone.click("label[for=lbp_any-yes]")
    phone.click("[data-testid=next]")
    phone.wait_for_selector("input[name=ep1_start]")
    assert _step_label(phone) == "Step 2 of 5"  # the progress moves, and counts the episode's steps
    phone.fill("input[name=ep1_start]", "2026-01-10")
    phone.click("label[for=ep1_24h-yes]")
    phone.click("label[for=ep1_interference-3]")
    phone.fill("input[name=ep1_pain_avg]", "5")
    phone.fill("input[name=ep1_pain_worst]", "8")
    phone.click("label[for=ep1_care_sought-no]")
    phone.click("[data-testid=next]")
    phone.wait_for_selector("input[name=ep1_work_days_missed]")
    assert ResponseDraft.objects.get(occurrence=occurrence).answers["ep1_pain_avg"] == 5  # saved on the server
    # The participant stops here, and goes on later from another phone with the same link.
    second_phone.goto(link)
    assert second_phone.inner_text("[data-testid=open-questionnaire]").strip().endswith("Continue")
    second_phone.click("[data-testid=open-questionnaire]")
    second_phone.wait_for_selector("input[name=ep1_work_days_missed]")
    assert _step_label(second_phone) == "Step 3 of 5"
    assert not second_phone.is_visible("[data-code=ep1_care_from]")  # they sought no care
    second_phone.click("[data-testid=back]")  # the answers given on the first phone are there
    second_phone.wait_for_selector("input[name=ep1_pain_avg]")
    assert second_phone.input_value("input[name=ep1_pain_avg]") == "5"
    assert second_phone.is_checked("#ep1_interference-3")
    second_phone.click("[data-testid=next]")
    # A mistake: 40 days off work in a month.
    second_phone.wait_for_selector("input[name=ep1_work_days_missed]")
    second_phone.fill("input[name=ep1_work_days_missed]", "40")
    second_phone.click("label[for=ep1_more-no]")
    second_phone.click("[data-testid=next]")
    summary = second_phone.wait_for_selector("[data-testid=error-summary]")
    assert summary.get_attribute("role") == "alert"
    assert second_phone.evaluate("document.activeElement.id") == "error-summary"  # read out first
    second_phone.click("[data-testid=error-summary] a[href='#ep1_work_days_missed']")
    assert second_phone.evaluate("document.activeElement.id") == "ep1_work_days_missed"
    described = second_phone.get_attribute("#ep1_work_days_missed", "aria-describedby")
    assert "ep1_work_days_missed-error" in described.split()
    assert "from 0 to 31" in second_phone.inner_text("#ep1_work_days_missed-error")
    second_phone.fill("input[name=ep1_work_days_missed]", "1")
    second_phone.click("[data-testid=next]")
    second_phone.wait_for_selector("label[for=new_health_problem-no]")
    second_phone.click("label[for=new_health_problem-no]")
    second_phone.click("[data-testid=next]")
    # The review: every answer in words, with a way back to each step.
    second_phone.wait_for_selector("[data-testid=submit]")
    assert _step_label(second_phone) == "Step 5 of 5"
    assert second_phone.inner_text("[data-code=ep1_interference]") == "Somewhat"
    assert second_phone.inner_text("[data-code=ep1_work_days_missed]") == "1"
    second_phone.click("[data-testid=change-2]")
    second_phone.wait_for_selector("input[name=ep1_pain_worst]")
    second_phone.fill("input[name=ep1_pain_worst]", "9")
    second_phone.click("[data-testid=next]")
    second_phone.wait_for_selector("[data-testid=submit]")
    assert second_phone.inner_text("[data-code=ep1_pain_worst]") == "9"
    second_phone.click("[data-testid=submit]")
    second_phone.wait_for_selector("[data-testid=thanks]")

    saved = QuestionnaireResponse.objects.get(occurrence=occurrence)
    assert saved.answers["ep1_pain_avg"] == 5 and saved.answers["ep1_interference"] == 2 and saved.answers["ep1_pain_worst"] == 9
    assert not ResponseDraft.objects.filter(occurrence=occurrence).exists()
    # The first phone, still on step 3, is told the answers are in.
    phone.click("[data-testid=next]")
    phone.wait_for_selector("[data-testid=thanks]")

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "coordinator")
    page.fill("input[name=password]", "coordinator-walkback-demo")
    page.click("button[type=submit], input[type=submit]")
    page.goto(f"{live_server.url}/participants/{participant.pk}/")
    page.click(f"[data-testid=response-{occurrence.pk}] summary")
    # Staff read the question and the answer, not the item's code.
    answers = page.locator(f"[data-testid=response-{occurrence.pk}]")
    assert answers.locator("[data-code=ep1_pain_avg]").inner_text() == "5"
    assert "ep1_pain_avg" not in answers.inner_text()


PHONE_HEIGHT = 844


def _answer_every_question_on_a_phone(phone: Any, url: str) -> dict[str, float]:
    """Answer a questionnaire as a participant in a hurry would: each question shown, the "No" or
    the first option, the lowest number, today's date, optional text left empty; then next, and on
    the review send. Counts taps (a choice, a field typed into, next, send, and opening it from the
    home page) and screens (steps, review included), and the tallest step in phone screens."""
    phone.goto(url)
    phone.wait_for_selector("#questionnaire")
    taps, screens, tallest = 1, 0, 0.0
    while not phone.is_visible("[data-testid=submit]"):
        screens += 1
        assert screens < 60, "the questionnaire never reached its review"
        assert not phone.is_visible("[data-testid=error-summary]"), phone.inner_text("[data-testid=error-summary]")
        height = phone.evaluate("document.documentElement.scrollHeight") / PHONE_HEIGHT
        tallest = max(tallest, height)
        done: set[str] = set()
        while pending := [
            q for q in phone.query_selector_all(".question:not([hidden])") if q.get_attribute("data-code") not in done
        ]:
            question = pending[0]
            code = question.get_attribute("data-code")
            done.add(code)
            if question.query_selector("input[type=radio]"):
                option = question.query_selector(f"label[for='{code}-no']") or question.query_selector("label.wizard-option")
                option.click()
                taps += 1
            elif (field := question.query_selector("input[type=number]")) is not None:
                field.fill(field.get_attribute("min") or "0")
                taps += 1
            elif (field := question.query_selector("input[type=date]")) is not None:
                field.fill(phone.evaluate("new Date().toISOString().slice(0, 10)"))
                taps += 1
            elif question.query_selector("input[type=checkbox]") and "(optional)" not in question.inner_text():
                question.query_selector("label.wizard-option").click()
                taps += 1
        with phone.expect_navigation():
            phone.click("[data-testid=next]")
        taps += 1
    screens += 1  # the review
    phone.click("[data-testid=submit]")
    phone.wait_for_selector("[data-testid=thanks]")
    return {"taps": taps + 1, "screens": screens, "tallest": round(tallest, 1)}


def test_the_monthly_and_timepoint_questionnaires_are_short_work_on_a_phone(
    phone: Any, live_server: Any, open_questionnaire: tuple[Participant, Occurrence], record_property: Any
) -> None:
    """The figures issue 15 asked for (before: one page, 11 phone screens tall, 47 taps for the
    timepoint questionnaire): taps and screens of the monthly and the timepoint questionnaire,
    answered from the participant's link on a 390 x 844 phone, and no step much taller than two screens."""
    from django.utils import timezone

    from participants.links import access_link_tokens

    participant, monthly = open_questionnaire
    timepoint = Occurrence.objects.filter(participant=participant, instrument="timepoint").order_by("month").first()
    Occurrence.objects.filter(pk=timepoint.pk).update(
        opens_at=timezone.now() - timezone.timedelta(days=1),
        closes_at=timezone.now() + timezone.timedelta(days=27),
        status="open",
    )
    token = access_link_tokens(participants=[participant])[participant.pk]
    figures = {
        name: _answer_every_question_on_a_phone(phone, f"{live_server.url}/p/{token}/q/{occurrence.pk}/")
        for name, occurrence in (("monthly", monthly), ("timepoint", timepoint))
    }
    assert QuestionnaireResponse.objects.filter(occurrence__in=[monthly, timepoint]).count() == 2
    for name, counted in figures.items():
        for what, value in counted.items():
            record_property(f"phone_{name}_{what}", value)
    assert figures["monthly"]["screens"] <= 4 and figures["monthly"]["taps"] <= 8, figures
    assert figures["timepoint"]["taps"] <= 47, figures
    assert all(counted["tallest"] <= 2.2 for counted in figures.values()), figures
