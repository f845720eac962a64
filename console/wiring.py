"""The cross-feature steps, in one place: what happens in one feature after a step in another.

The features below never import each other; each offers hooks (``participants.hooks``,
``followup.hooks``) and this module connects them when Django starts (``ConsoleConfig.ready``).
Every hook runs inside the transaction of the step that fires it.

- Enrolment: follow-up gives the participant their baseline questionnaire (if the trial has one);
  messaging plans the welcome message with their personal link (if the trial's policy sends one).
- Randomisation: follow-up refuses first while a required baseline questionnaire is incomplete;
  then follow-up plans the questionnaire schedule and derives the outcomes (every randomised
  participant has them from day 0), and intervention prepares the session dates before the
  stratum is claimed; once the arm is known, intervention saves the sessions if the arm has any.
- Withdrawal: intervention cancels the sessions not yet held; withdrawal from follow-up (or
  consent) cancels the schedule and re-derives the outcomes (censoring at withdrawal).
- The end of follow-up changes (admin): follow-up re-plans every schedule and derives the
  outcomes again (each participant's own end of follow-up may have moved).
- Answers: safety raises a pending adverse-event report from a "new health problem" answer.
"""

from __future__ import annotations

import datetime as dt

from followup import hooks as followup_hooks
from followup.models import QuestionnaireResponse
from followup.services import (
    baseline_create,
    baseline_require,
    outcomes_derive,
    outcomes_start,
    schedule_cancel,
    schedule_create,
    schedule_replan,
)
from intervention.services import sessions_cancel_future, sessions_prepare, sessions_save
from messaging.services import message_welcome_plan
from participants import hooks as participant_hooks
from participants.hooks import AfterAllocation
from participants.models import Participant
from safety.services import adverse_event_from_response
from trial import hooks as trial_hooks
from trial.models import Allocation, Trial


def plan_baseline(participant: Participant) -> None:
    baseline_create(participant=participant)


def welcome(participant: Participant) -> None:
    message_welcome_plan(participant=participant)


def require_baseline(participant: Participant, at: dt.datetime) -> None:
    baseline_require(participant=participant)


def plan_followup(participant: Participant, at: dt.datetime) -> None:
    schedule_create(participant=participant, now=at)
    outcomes_start(participant=participant, now=at)  # censored at day 0 until the first answer


def prepare_sessions(participant: Participant, at: dt.datetime) -> AfterAllocation:
    prepared = sessions_prepare(participant=participant, randomised_at=at)

    def save(allocation: Allocation) -> None:
        sessions_save(participant=participant, prepared=prepared, arm_id=allocation.arm_id)

    return save


def cancel_sessions(participant: Participant, scope: str, withdrawn_on: dt.date) -> None:
    sessions_cancel_future(participant=participant, reason=f"Withdrawn on {withdrawn_on:%d %b %Y}")


def end_followup(participant: Participant, scope: str, withdrawn_on: dt.date) -> None:
    if not participant.withdrawn_from_followup:
        return
    schedule_cancel(participant=participant, reason=f"Withdrawn from follow-up on {withdrawn_on:%d %b %Y}")
    if participant.randomised_at is not None:
        outcomes_derive(participant=participant)  # censoring now reads "withdrawal"


def report_health_problem(response: QuestionnaireResponse) -> None:
    adverse_event_from_response(response=response)


def replan_followup(trial: Trial) -> str:
    result = schedule_replan(trial=trial, reason="End of follow-up changed")
    return (
        f"Re-planned {result.participants} participants: {result.added} added, {result.moved} moved, "
        f"{result.cancelled} cancelled."
    )


def connect() -> None:
    trial_hooks.on_followup_end_changed(replan_followup)
    participant_hooks.on_enrolled(plan_baseline)
    participant_hooks.on_enrolled(welcome)
    participant_hooks.on_randomising(require_baseline)  # first: a refusal comes before any other work
    participant_hooks.on_randomising(plan_followup)
    participant_hooks.on_randomising(prepare_sessions)
    participant_hooks.on_withdrawn(cancel_sessions)
    participant_hooks.on_withdrawn(end_followup)
    followup_hooks.on_submitted(report_health_problem)
