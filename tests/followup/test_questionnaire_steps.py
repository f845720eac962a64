"""The participant's questionnaire a step at a time: steps from the definition, skip logic, answers
checked and saved on the server at each step, resumed on another device, reviewed, then sent."""

from __future__ import annotations

import datetime as dt
import re

import pghistory.models
import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from followup import services
from followup.instruments import STEP_MAX_QUESTIONS, STEP_MAX_WEIGHT, _screen_weight, step_clean, steps, visible_steps
from followup.models import Occurrence, OccurrenceStatus, Outcome, QuestionnaireResponse, ResponseDraft
from participants import links
from participants import services as journey
from presets.instrument_library import BASELINE, EQ5D_CODES, MONTHLY_EPISODES, RMDQ_CODES, TIMEPOINT
from trial.errors import ApplicationError
from trial.models import Trial

UTC = dt.UTC
RANDOMISED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
IN_FIRST_WINDOW = dt.datetime(2026, 4, 2, 2, 0, tzinfo=UTC)  # month 1 is open in Sydney

STEP_2 = {  # episode 1, its first six questions
    "ep1_start": "2026-03-20",
    "ep1_24h": "yes",
    "ep1_interference": "2",
    "ep1_pain_avg": "4",
    "ep1_pain_worst": "7",
    "ep1_care_sought": "yes",
}


# --- steps from the definition (no database) ----------------------------------------------------


def test_each_section_is_a_step_and_long_sections_are_split_evenly() -> None:
    monthly = steps(definition=MONTHLY_EPISODES)
    assert monthly[0].codes == ("lbp_any",)
    # Episode 1 (11 questions) over two screens; "who did you see" stays after "did you seek care".
    assert monthly[1].codes[-1] == "ep1_care_sought" and monthly[2].codes[:2] == ("ep1_care_from", "ep1_care_from_other")
    assert monthly[-1].codes == ("new_health_problem", "new_health_problem_details")
    for definition in (MONTHLY_EPISODES, TIMEPOINT, BASELINE):
        all_steps = steps(definition=definition)
        assert [code for step in all_steps for code in step.codes] == [item["code"] for item in definition["items"]]
        assert all(len(step.codes) <= STEP_MAX_QUESTIONS for step in all_steps)
        assert [step.number for step in all_steps] == list(range(1, len(all_steps) + 1))
    # The 24 Roland-Morris statements: four screens of six, their shared instruction said once a screen.
    rmdq = [step for step in steps(definition=TIMEPOINT) if set(step.codes) <= set(RMDQ_CODES)]
    assert [len(step.codes) for step in rmdq] == [6, 6, 6, 6]
    assert all(step.instructions.startswith("When your back hurts") for step in rmdq)
    # Five EQ-5D questions of five long options each were 3.4 phone screens on one step: now 2, 2, 1.
    eq5d = [step for step in steps(definition=TIMEPOINT) if set(step.codes) <= set(EQ5D_CODES)]
    assert [len(step.codes) for step in eq5d] == [2, 2, 1]
    items = {item["code"]: item for item in BASELINE["items"]}
    for step in steps(definition=BASELINE):
        assert len(step.codes) == 1 or sum(_screen_weight(items[code]) for code in step.codes) <= STEP_MAX_WEIGHT, step


def test_skipped_steps_are_not_shown() -> None:
    numbers = lambda answers: [step.number for step in visible_steps(definition=MONTHLY_EPISODES, answers=answers)]  # noqa: E731
    assert numbers({}) == [1, 8]
    assert numbers({"lbp_any": "no"}) == [1, 8]
    assert numbers({"lbp_any": "yes"}) == [1, 2, 3, 8]
    assert numbers({"lbp_any": "yes", "ep1_more": "yes"}) == [1, 2, 3, 4, 5, 8]


def test_a_step_is_checked_with_the_questionnaires_rules_restricted_to_its_questions() -> None:
    step = steps(definition=MONTHLY_EPISODES)[1]
    answers, errors = step_clean(
        definition=MONTHLY_EPISODES, step=step, answers={"lbp_any": True}, raw={**STEP_2, "ep1_pain_avg": "11", "ep1_start": ""}
    )
    assert set(errors) == {"ep1_pain_avg", "ep1_start"}  # not the later steps' unanswered questions
    assert answers["lbp_any"] is True and answers["ep1_pain_worst"] == 7 and "ep1_pain_avg" not in answers


# --- pages ---------------------------------------------------------------------------------------


@pytest.fixture
def randomised(walkback: Trial, enrol, coordinator, sealed_list):  # type: ignore[no-untyped-def]
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = enrol()
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    participant.refresh_from_db()
    return participant


@pytest.fixture
def link(randomised) -> str:  # type: ignore[no-untyped-def]
    return links.access_link_issue(participant=randomised)


def _first(participant) -> Occurrence:  # type: ignore[no-untyped-def]
    return Occurrence.objects.get(participant=participant, instrument="monthly", month=1)


def _step(link: str, occurrence: Occurrence, number: int) -> str:
    return f"/p/{link}/q/{occurrence.pk}/step/{number}/"


@time_machine.travel(IN_FIRST_WINDOW, tick=False)
def test_steps_saved_on_the_server_resume_on_another_device_then_review_and_send(
    randomised, link: str, client: Client, coordinator
) -> None:
    services.occurrences_advance()
    first = _first(randomised)
    page = client.get(f"/p/{link}/q/{first.pk}/", follow=True)
    html = page.content.decode()
    assert page.redirect_chain[-1][0] == _step(link, first, 1)
    assert "Step 1 of 3" in html and '<progress id="wizard-progress"' in html and 'label for="wizard-progress"' in html

    assert client.post(_step(link, first, 1), {"lbp_any": "yes", "action": "next"})["Location"] == _step(link, first, 2)
    # A mistake: the step is shown again with a summary at the top linking to each field.
    wrong = client.post(_step(link, first, 2), {**STEP_2, "ep1_pain_avg": "11", "ep1_start": "", "action": "next"})
    html = wrong.content.decode()
    assert wrong.status_code == 400 and 'role="alert"' in html
    summary = html[html.index('id="error-summary"') : html.index("</ul>")]
    assert 'href="#ep1_pain_avg"' in summary and 'href="#ep1_start"' in summary
    assert 'aria-describedby="ep1_pain_avg-error' in html and 'id="ep1_pain_avg-error"' in html
    assert 'value="7"' in html  # the other answers stay on the page
    assert ResponseDraft.objects.get(occurrence=first).step == 1  # nothing of the step saved

    assert client.post(_step(link, first, 2), {**STEP_2, "action": "next"})["Location"] == _step(link, first, 3)
    # "Who did you see" follows "yes" on the previous step; its own instruction is said under it.
    third = client.get(_step(link, first, 3)).content.decode()
    assert 'data-code="ep1_care_from"' in third and "Choose all that apply." in third and "Step 3 of 5" in third

    # Another device: the same link goes on at the first step not done, with the answers filled in.
    phone = Client()
    resumed = phone.get(f"/p/{link}/q/{first.pk}/", follow=True)
    assert resumed.redirect_chain[-1][0] == _step(link, first, 3)
    assert "Continue" in phone.get(f"/p/{link}/").content.decode()
    back = phone.post(_step(link, first, 3), {"ep1_care_from": ["gp"], "action": "back"})
    assert back["Location"] == _step(link, first, 2)
    assert 'value="7"' in phone.get(back["Location"]).content.decode()

    phone.post(
        _step(link, first, 3),
        {"ep1_care_from": ["gp", "physiotherapist"], "ep1_work_days_missed": "2", "ep1_more": "no", "action": "next"},
    )
    assert phone.post(_step(link, first, 8), {"new_health_problem": "no", "action": "next"})["Location"].endswith("/review/")
    review = phone.get(f"/p/{link}/q/{first.pk}/review/").content.decode()
    # Every answer in words, each step with a way back to change it.
    assert "General practitioner (GP); Physiotherapist" in review and "Somewhat" in review and "20 Mar 2026" in review
    assert f'href="{_step(link, first, 2)}?from=review"' in review and "Step 5 of 5" in review
    change = phone.post(_step(link, first, 2), {**STEP_2, "ep1_pain_worst": "8", "from": "review", "action": "next"})
    assert change["Location"].endswith("/review/")

    sent = phone.post(f"/p/{link}/q/{first.pk}/review/")
    assert sent["Location"].endswith("/thanks/")
    response = QuestionnaireResponse.objects.get(occurrence=first)
    assert response.answers["ep1_pain_worst"] == 8 and response.answers["ep1_care_from"] == ["gp", "physiotherapist"]
    assert response.source == "participant"
    assert not ResponseDraft.objects.filter(occurrence=first).exists()
    # The draft's history is kept, its deletion included.
    labels = set(
        pghistory.models.Events.objects.filter(pgh_model="followup.ResponseDraftEvent").values_list("pgh_label", flat=True)
    )
    assert labels == {"insert", "update", "delete"}
    # The thanks page, and the questionnaire's pages after it: answered once.
    assert client.get(f"/p/{link}/q/{first.pk}/")["Location"].endswith("/thanks/")
    assert client.post(_step(link, first, 1), {"lbp_any": "no", "action": "next"})["Location"].endswith("/thanks/")


@time_machine.travel(IN_FIRST_WINDOW, tick=False)
def test_no_back_pain_skips_the_episode_steps(randomised, link: str, client: Client) -> None:
    services.occurrences_advance()
    first = _first(randomised)
    assert client.post(_step(link, first, 1), {"lbp_any": "no", "action": "next"})["Location"] == _step(link, first, 8)
    assert client.get(_step(link, first, 2))["Location"] == _step(link, first, 8)  # a skipped step is not shown
    assert "Step 2 of 3" in client.get(_step(link, first, 8)).content.decode()
    # The review cannot be skipped to: the step not done yet comes first.
    assert client.get(f"/p/{link}/q/{first.pk}/review/")["Location"] == _step(link, first, 8)
    client.post(_step(link, first, 8), {"new_health_problem": "no", "action": "next"})
    client.post(f"/p/{link}/q/{first.pk}/review/")
    assert QuestionnaireResponse.objects.get(occurrence=first).answers == {"lbp_any": False, "new_health_problem": False}


@time_machine.travel(IN_FIRST_WINDOW, tick=False)
def test_a_draft_never_counts_as_a_response(randomised, link: str, client: Client, coordinator) -> None:
    services.occurrences_advance()
    first = _first(randomised)
    outcomes_before = list(Outcome.objects.filter(participant=randomised).values())
    client.post(_step(link, first, 1), {"lbp_any": "yes", "action": "next"})
    client.post(_step(link, first, 2), {**STEP_2, "action": "next"})
    assert ResponseDraft.objects.filter(occurrence=first).exists()
    first.refresh_from_db()
    assert first.status == OccurrenceStatus.OPEN and first.completed_at is None
    assert not QuestionnaireResponse.objects.filter(occurrence=first).exists()
    assert list(Outcome.objects.filter(participant=randomised).values()) == outcomes_before
    api = APIClient()
    api.force_authenticate(coordinator)
    rows = api.get(f"/api/v1/participants/{randomised.pk}/responses/").json()
    assert [row["instrument"] for row in rows] == ["baseline"]
    # Staff entering the answers by phone: their response is the one; the draft goes.
    services.response_submit(occurrence=first, raw={"lbp_any": "no", "new_health_problem": "no"}, source="staff", by=coordinator)
    assert not ResponseDraft.objects.filter(occurrence=first).exists()


def test_a_draft_cannot_be_saved_once_the_window_closed(randomised, link: str, client: Client) -> None:
    first = _first(randomised)
    with time_machine.travel(first.closes_at + dt.timedelta(hours=1), tick=False):
        with pytest.raises(ApplicationError, match="closed"):
            services.draft_save(occurrence=first, step=1, raw={"lbp_any": "no"})
        assert client.post(_step(link, first, 1), {"lbp_any": "no", "action": "next"}).status_code == 410
    assert not ResponseDraft.objects.exists()


def test_the_baseline_on_the_participants_link_is_the_same_step_by_step_questionnaire(walkback: Trial, enrol) -> None:
    waiting = enrol(baseline=False)
    token = links.access_link_issue(participant=waiting)
    baseline = Occurrence.objects.get(participant=waiting, instrument="baseline")
    page = Client().get(f"/p/{token}/q/{baseline.pk}/", follow=True)
    html = page.content.decode()
    assert page.redirect_chain[-1][0] == f"/p/{token}/q/{baseline.pk}/step/1/"
    assert re.search(r"Step 1 of 12", html) and 'label class="form-label fs-5 fw-semibold" for="date_of_birth"' in html
