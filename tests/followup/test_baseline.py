"""The baseline questionnaire: planned at enrolment, answered by staff or on the participant's link,
required before randomisation when the trial says so, and never counted as follow-up."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from closeout.models import DataQuery
from closeout.queries.checks import checks_run
from followup import selectors, services
from followup.baseline import BASELINE_INSTRUMENT, age_in_years
from followup.models import Occurrence, OccurrenceStatus, OutcomeSummary, QuestionnaireResponse, ResponseSource
from messaging.models import Message
from participants import links
from participants import services as journey
from participants.models import Participant, ParticipantStatus
from presets.services import preset_apply
from presets.walkback import WALKBACK
from tests.factories import BASELINE_ANSWERS, ParticipantFactory, SiteFactory, TrialFactory, baseline_complete
from trial.models import Allocation, Trial

UTC = dt.UTC
# 10 Mar 2026, 14:00 UTC is 11 Mar, 01:00 in Sydney: the enrolment day is the participant's.
ENROLLED_AT = dt.datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def _baseline(participant: Participant) -> Occurrence:
    return Occurrence.objects.get(participant=participant, instrument=BASELINE_INSTRUMENT)


@pytest.fixture(autouse=True)
def _clock() -> Any:
    with time_machine.travel(ENROLLED_AT, tick=True):
        yield


@pytest.fixture
def waiting(walkback: Trial, enrol: Any) -> Participant:
    """Enrolled, baseline not answered yet."""
    return enrol(baseline=False)


def _not_required(trial: Trial) -> None:
    trial.baseline_before_randomisation = False
    trial.save(update_fields=["baseline_before_randomisation"])


# --- Age ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (dt.date(1980, 6, 15), dt.date(2026, 6, 14), 45),
        (dt.date(1980, 6, 15), dt.date(2026, 6, 15), 46),
        (dt.date(1980, 12, 31), dt.date(2026, 1, 1), 45),
        # Born on 29 February: a year older on 1 March in common years, on 29 February in leap years.
        (dt.date(2000, 2, 29), dt.date(2025, 2, 28), 24),
        (dt.date(2000, 2, 29), dt.date(2025, 3, 1), 25),
        (dt.date(2000, 2, 29), dt.date(2028, 2, 28), 27),
        (dt.date(2000, 2, 29), dt.date(2028, 2, 29), 28),
        (dt.date(2026, 3, 2), dt.date(2026, 3, 2), 0),
    ],
)
def test_age_in_whole_years(born: dt.date, on: dt.date, age: int) -> None:
    assert age_in_years(born=born, on=on) == age


# --- Planned at enrolment -------------------------------------------------------------------


def test_enrolment_gives_the_participant_their_baseline_due_on_their_local_enrolment_day(waiting: Participant) -> None:
    baseline = _baseline(waiting)
    assert (baseline.month, baseline.due_date, baseline.status) == (0, dt.date(2026, 3, 11), OccurrenceStatus.OPEN)
    assert baseline.opens_at == dt.datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # local midnight, 11 Mar
    # Open 28 days on the link: until local midnight after 8 Apr (daylight saving has ended by then).
    assert baseline.opens_at <= waiting.enrolled_at < baseline.closes_at == dt.datetime(2026, 4, 8, 14, 0, tzinfo=UTC)
    assert baseline.label == "Baseline questionnaire"
    assert Occurrence.objects.filter(participant=waiting).count() == 1  # nothing else before randomisation


def test_a_trial_without_a_baseline_questionnaire_gives_none(db: Any) -> None:
    trial = TrialFactory(code="other", baseline_before_randomisation=True)
    participant: Participant = ParticipantFactory(site=SiteFactory(trial=trial))  # type: ignore[assignment]
    assert services.baseline_create(participant=participant) is None
    assert not Occurrence.objects.filter(participant=participant).exists()
    assert services.baseline_outstanding(participant=participant) is False  # nothing to wait for


def test_participants_enrolled_before_the_trial_had_a_baseline_get_theirs_when_it_is_published(
    waiting: Participant, enrol: Any, coordinator: Any, sealed_list: Any
) -> None:
    randomised = enrol()
    journey.participant_randomise(participant_id=randomised.pk, by=coordinator)
    _baseline(waiting).delete()  # as if enrolled before the baseline existed

    preset_apply(preset=WALKBACK)

    assert _baseline(waiting).status == OccurrenceStatus.OPEN
    assert Occurrence.objects.filter(participant=randomised, instrument=BASELINE_INSTRUMENT).count() == 1  # kept, not doubled


# --- Answered by staff or by the participant ------------------------------------------------


def test_staff_enter_the_baseline_from_the_participant_page_before_randomisation(
    waiting: Participant, coordinator: Any, client: Client
) -> None:
    client.force_login(coordinator)
    page = client.get(reverse("participant-detail", args=[waiting.pk])).content.decode()
    entry = reverse("followup-staff-entry", args=[waiting.pk, _baseline(waiting).pk])
    assert 'data-testid="enter-baseline"' in page and entry in page
    assert "Complete it before randomising." in page

    form = client.get(entry)
    assert form.status_code == 200 and "Baseline questionnaire" in form.content.decode()
    response = client.post(entry, BASELINE_ANSWERS, follow=True)

    html = response.content.decode()
    assert "Baseline questionnaire entered for" in html
    answer = QuestionnaireResponse.objects.get(occurrence__participant=waiting)
    assert (answer.source, answer.entered_by, answer.scores["rmdq_total"]) == (ResponseSource.STAFF, coordinator, 4)
    assert "on the participant's behalf" in html and coordinator.get_username() in html
    assert reverse("record-history", args=["followup", "questionnaireresponse", answer.pk]) in html


def test_missing_answers_are_shown_on_the_entry_page_and_nothing_is_stored(
    waiting: Participant, coordinator: Any, client: Client
) -> None:
    client.force_login(coordinator)
    entry = reverse("followup-staff-entry", args=[waiting.pk, _baseline(waiting).pk])
    response = client.post(entry, {**BASELINE_ANSWERS, "height_cm": "", "date_of_birth": "1980-02-30"})
    assert response.status_code == 400
    assert "There is no date 1980-02-30" in response.content.decode()
    assert not QuestionnaireResponse.objects.exists()
    assert _baseline(waiting).status == OccurrenceStatus.OPEN


def test_the_participant_answers_the_baseline_on_their_link_before_randomisation(
    waiting: Participant, coordinator: Any, client: Client
) -> None:
    token = links.access_link_issue(participant=waiting)
    baseline = _baseline(waiting)
    home = client.get(f"/p/{token}/").content.decode()
    assert "Baseline questionnaire" in home and f"/p/{token}/q/{baseline.pk}/" in home

    response = client.post(f"/p/{token}/q/{baseline.pk}/", BASELINE_ANSWERS)

    assert response.status_code == 302
    answer = QuestionnaireResponse.objects.get(occurrence=baseline)
    assert (answer.source, answer.entered_by) == (ResponseSource.PARTICIPANT, None)
    assert 'data-testid="nothing-open"' in client.get(f"/p/{token}/").content.decode()
    client.force_login(coordinator)
    page = client.get(reverse("participant-detail", args=[waiting.pk])).content.decode()
    assert "by the participant, through their personal link" in page


def test_the_link_still_offers_an_unanswered_baseline_after_randomisation(
    walkback: Trial, waiting: Participant, coordinator: Any, sealed_list: Any, client: Client
) -> None:
    _not_required(walkback)
    with time_machine.travel(ENROLLED_AT + dt.timedelta(days=2), tick=False):
        journey.participant_randomise(participant_id=waiting.pk, by=coordinator)
        token = links.access_link_issue(participant=waiting)
        home = client.get(f"/p/{token}/").content.decode()
    assert f"/p/{token}/q/{_baseline(waiting).pk}/" in home
    assert home.count('data-testid="open-questionnaire"') == 1  # the first monthly one is not open yet


# --- Randomisation waits for it when the trial requires it -----------------------------------


def test_randomisation_is_refused_without_a_complete_baseline_and_writes_nothing(
    waiting: Participant, coordinator: Any, sealed_list: Any
) -> None:
    with pytest.raises(journey.NotReady, match=r"Complete the baseline questionnaire before randomising\."):
        journey.participant_randomise(participant_id=waiting.pk, by=coordinator)

    waiting.refresh_from_db()
    assert (waiting.status, waiting.randomised_at) == (ParticipantStatus.ENROLLED, None)
    assert not Allocation.objects.exists()
    assert list(Occurrence.objects.filter(participant=waiting).values_list("instrument", flat=True)) == [BASELINE_INSTRUMENT]


def test_randomisation_goes_ahead_once_the_baseline_is_complete(waiting: Participant, coordinator: Any, sealed_list: Any) -> None:
    baseline_complete(waiting, by=coordinator)
    journey.participant_randomise(participant_id=waiting.pk, by=coordinator)
    assert Allocation.objects.filter(participant=waiting).exists()
    assert Occurrence.objects.filter(participant=waiting, instrument="monthly").exists()


def test_a_trial_that_does_not_require_it_randomises_with_the_baseline_still_open(
    walkback: Trial, waiting: Participant, coordinator: Any, sealed_list: Any
) -> None:
    _not_required(walkback)
    journey.participant_randomise(participant_id=waiting.pk, by=coordinator)
    assert Allocation.objects.filter(participant=waiting).exists()
    # The follow-up schedule is planned although the participant already had an occurrence.
    assert Occurrence.objects.filter(participant=waiting, instrument="monthly").count() > 12
    assert _baseline(waiting).status == OccurrenceStatus.OPEN


def test_the_randomise_page_names_the_baseline_and_refuses_with_a_clear_message(
    waiting: Participant, coordinator: Any, sealed_list: Any, client: Client
) -> None:
    client.force_login(coordinator)
    url = reverse("participant-randomise", args=[waiting.pk])
    missing = client.get(url).content.decode().split('data-testid="randomise-missing"')[1].split("</div>")[0]
    assert "the baseline questionnaire is not complete" in missing

    response = client.post(url, follow=True)

    assert "Complete the baseline questionnaire before randomising." in response.content.decode()
    assert not Allocation.objects.exists()


def test_the_api_refuses_with_a_400_and_a_json_body(waiting: Participant, coordinator: Any, sealed_list: Any) -> None:
    api = APIClient()
    api.force_authenticate(coordinator)
    response = api.post(f"/api/v1/participants/{waiting.pk}/randomise/")
    assert response.status_code == 400
    assert response.json()["detail"] == "Complete the baseline questionnaire before randomising."
    assert response.json()["errors"] == {"baseline": ["The baseline questionnaire is not complete."]}
    assert not Allocation.objects.exists()


def test_the_walkback_preset_requires_it_and_a_new_trial_does_not(walkback: Trial) -> None:
    assert walkback.baseline_before_randomisation is True
    assert Trial._meta.get_field("baseline_before_randomisation").default is False


# --- Not follow-up ---------------------------------------------------------------------------


def test_an_open_baseline_is_not_follow_up_work(
    walkback: Trial, waiting: Participant, coordinator: Any, sealed_list: Any
) -> None:
    _not_required(walkback)
    journey.participant_randomise(participant_id=waiting.pk, by=coordinator)
    later = ENROLLED_AT + dt.timedelta(days=20)  # the baseline is overdue, still open on the link
    work = selectors.worklist_get(user=coordinator, trial=walkback, now=later)
    assert all(item.occurrence is None or item.occurrence.instrument != BASELINE_INSTRUMENT for item in work.rows)

    much_later = ENROLLED_AT + dt.timedelta(days=30)  # closed: missed, but not a missed follow-up questionnaire
    services.occurrences_advance(now=much_later)
    assert _baseline(waiting).status == OccurrenceStatus.MISSED
    assert not selectors.lost_to_followup_list(user=coordinator, trial=walkback, missed=1).filter(pk=waiting.pk).exists()


def test_a_baseline_gets_an_invitation_but_no_reminders(waiting: Participant) -> None:
    services.messages_plan(now=ENROLLED_AT + dt.timedelta(minutes=5))
    steps = set(Message.objects.filter(occurrence=_baseline(waiting)).values_list("step", flat=True))
    assert steps == {"invitation"}


def test_answers_to_the_baseline_leave_outcomes_and_completion_alone(
    walkback: Trial, waiting: Participant, coordinator: Any, sealed_list: Any
) -> None:
    _not_required(walkback)
    journey.participant_randomise(participant_id=waiting.pk, by=coordinator)
    waiting.refresh_from_db()
    services.outcomes_derive(participant=waiting)
    before = list(waiting.outcomes.order_by("code").values("code", "event", "censored_at", "days"))

    baseline_complete(waiting, by=coordinator, pain_now="9")

    assert list(waiting.outcomes.order_by("code").values("code", "event", "censored_at", "days")) == before
    summary = OutcomeSummary.objects.get(participant=waiting)
    assert (summary.monthly_completed, summary.monthly_missed) == (0, 0)
    assert all(row["month"] > 0 for row in selectors.outcome_panel(participant=waiting)["monthly_history"])


def test_re_planning_the_schedule_never_moves_or_cancels_the_baseline(
    walkback: Trial, waiting: Participant, coordinator: Any, sealed_list: Any
) -> None:
    _not_required(walkback)
    journey.participant_randomise(participant_id=waiting.pk, by=coordinator)
    Occurrence.objects.filter(pk=_baseline(waiting).pk).update(status=OccurrenceStatus.SCHEDULED)
    before = Occurrence.objects.filter(pk=_baseline(waiting).pk).values().get()

    walkback.max_followup_months = 12
    walkback.save(update_fields=["max_followup_months"])
    result = services.schedule_replan(trial=walkback, reason="Follow-up shortened")

    assert result.cancelled == 24  # months 13-36

    assert Occurrence.objects.filter(pk=before["id"]).values().get() == before


def test_withdrawal_from_follow_up_cancels_an_unanswered_baseline(waiting: Participant, coordinator: Any) -> None:
    journey.participant_withdraw(participant=waiting, scope="followup", reason="Changed their mind", by=coordinator)
    assert _baseline(waiting).status == OccurrenceStatus.CANCELLED


def test_a_date_of_birth_is_not_queried_as_before_randomisation_but_one_in_the_future_is(
    walkback: Trial, waiting: Participant, enrol: Any, coordinator: Any, sealed_list: Any
) -> None:
    baseline_complete(waiting, by=coordinator)
    unborn = enrol(baseline=False)
    baseline_complete(unborn, by=coordinator, date_of_birth="2099-01-01")
    for participant in (waiting, unborn):
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)

    checks_run(trial=walkback)

    queried = DataQuery.objects.filter(field="answers.date_of_birth")
    assert list(queried.values_list("check_code", "record_id")) == [
        ("date_in_future", QuestionnaireResponse.objects.get(occurrence__participant=unborn).pk)
    ]
