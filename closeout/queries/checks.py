"""The data-quality checks, all here. Each is a small function yielding findings; ``checks_run``
raises one query per finding, once (the finding's key is unique across runs).

Answer checks read one questionnaire response at a time (the instrument definition the
participant answered says what is in range and required); record checks query their table.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Model, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from closeout.models import DataQuery
from closeout.queries.services import query_raise
from followup import outcomes as outcome_rules
from followup.baseline import BASELINE_INSTRUMENT
from followup.instruments import visible_items
from followup.models import InstrumentVersion, OutcomeCode, QuestionnaireResponse
from followup.services import outcome_inputs, outcome_values
from intervention.models import InterventionPolicy, Session, Walk
from participants.models import Participant
from safety.models import AdverseEvent
from trial.audit import audit_context
from trial.errors import DataLocked
from trial.guard import write_block_reason
from trial.models import Trial

CHECK_LABELS: dict[str, str] = {
    "out_of_range": "Answer out of range",
    "missing_required": "Required answer missing",
    "date_before_randomisation": "Date before randomisation",
    "date_in_future": "Date in the future",
    "recurrence_end_before_start": "Recovery before the back pain started",
    "session_outside_intervention_arm": "Session outside the intervention arm",
    "outcome_stale": "Stored outcome differs from the answers",
}


@dataclass(frozen=True)
class Finding:
    check: str
    record: Model
    field: str
    message: str
    key: str


def _key(check: str, record: Model, field: str, *extra: object) -> str:
    parts = [check, record._meta.label_lower, str(record.pk), field, *(str(e) for e in extra)]
    return ":".join(parts)[:200]


def _finding(check: str, record: Model, field: str, message: str, *extra: object) -> Finding:
    return Finding(check=check, record=record, field=field, message=message, key=_key(check, record, field, *extra))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


def _as_date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


# --- Answer checks: one questionnaire response at a time ------------------------------------


@dataclass(frozen=True)
class Answered:
    """One response as the checks read it."""

    response: QuestionnaireResponse
    answers: dict[str, Any]
    shown: list[dict[str, Any]]  # the items the participant was asked (skip logic applied)
    randomised_on: dt.date | None
    answered_on: dt.date


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def answers_out_of_range(a: Answered) -> Iterator[Finding]:
    for item in a.shown:
        value = a.answers.get(item["code"])
        if item["type"] not in ("integer", "number") or _blank(value):
            continue
        low, high = item.get("min"), item.get("max")
        number = _number(value)
        if number is None:
            yield _finding("out_of_range", a.response, f"answers.{item['code']}", f"'{value}' is not a number.", value)
        elif (low is not None and number < low) or (high is not None and number > high):
            yield _finding(
                "out_of_range",
                a.response,
                f"answers.{item['code']}",
                f"{value} is outside the allowed range ({low if low is not None else '…'} to {high if high is not None else '…'}).",
                value,
            )


def answers_missing_required(a: Answered) -> Iterator[Finding]:
    for item in a.shown:
        if item.get("required") and _blank(a.answers.get(item["code"])):
            yield _finding("missing_required", a.response, f"answers.{item['code']}", "A required answer is missing.")


def answer_dates_out_of_range(a: Answered) -> Iterator[Finding]:
    for item in a.shown:
        if item["type"] != "date" or (day := _as_date(a.answers.get(item["code"]))) is None:
            continue
        field = f"answers.{item['code']}"
        # The baseline asks about the time before the trial (a date of birth): only the future is wrong there.
        before_trial = a.response.occurrence.instrument == BASELINE_INSTRUMENT
        if a.randomised_on is not None and day < a.randomised_on and not before_trial:
            yield _finding("date_before_randomisation", a.response, field, f"{day:%d %b %Y} is before randomisation.", day)
        elif day > a.answered_on:
            yield _finding("date_in_future", a.response, field, f"{day:%d %b %Y} is after the day it was answered.", day)


def recurrence_end_before_start(a: Answered) -> Iterator[Finding]:
    """Each reported episode (version 2: ``ep{n}_start`` and ``ep{n}_recovered_on``; version 1:
    ``lbp_start`` and ``recovered_on``) recovered before it started."""
    version_2 = "lbp_any" in a.answers
    for episode in outcome_rules.episodes(a.answers):
        start, end = episode.start, episode.recovered_on
        if start is None or end is None or end >= start:
            continue
        yield _finding(
            "recurrence_end_before_start",
            a.response,
            f"answers.ep{episode.number}_recovered_on" if version_2 else "answers.recovered_on",
            f"Recovered on {end:%d %b %Y}, before the back pain started ({start:%d %b %Y}).",
            start,
            end,
        )


ANSWER_CHECKS: tuple[Callable[[Answered], Iterator[Finding]], ...] = (
    answers_out_of_range,
    answers_missing_required,
    answer_dates_out_of_range,
    recurrence_end_before_start,
)


def _local_day(moment: dt.datetime | None, zone: str) -> dt.date | None:
    return moment.astimezone(zoneinfo.ZoneInfo(zone)).date() if moment else None


def _answered(*, trial: Trial) -> Iterator[Answered]:
    definitions = dict(InstrumentVersion.objects.filter(trial=trial).values_list("pk", "definition"))
    responses = QuestionnaireResponse.objects.filter(occurrence__participant__site__trial=trial).select_related(
        "occurrence__participant__site"
    )
    for response in responses.order_by("pk").iterator(chunk_size=1000):
        participant = response.occurrence.participant
        zone = participant.site.timezone
        answers = response.answers if isinstance(response.answers, dict) else {}
        definition = definitions.get(response.instrument_version_id)
        if definition is None:
            continue
        answered_on = _local_day(response.submitted_at, zone)
        assert answered_on is not None
        yield Answered(
            response=response,
            answers=answers,
            shown=visible_items(definition=definition, answers=answers),
            randomised_on=_local_day(participant.randomised_at, zone),
            answered_on=answered_on,
        )


# --- Record checks ---------------------------------------------------------------------------


def _dated_out_of_range(*, trial: Trial, now: dt.datetime, queryset: Any, field: str, what: str) -> Iterator[Finding]:
    """Rows whose ``field`` is before the participant's randomisation day or after today, in the site's zone."""
    for site in trial.sites.all():
        zone = zoneinfo.ZoneInfo(site.timezone)
        today = now.astimezone(zone).date()
        rows = (
            queryset.filter(participant__site=site, participant__randomised_at__isnull=False, **{f"{field}__isnull": False})
            .annotate(randomised_on=TruncDate("participant__randomised_at", tzinfo=zone))
            .filter(Q(**{f"{field}__lt": F("randomised_on")}) | Q(**{f"{field}__gt": today}))
            .select_related("participant")
            .order_by("pk")
        )
        for row in rows:
            day = getattr(row, field)
            if day < row.randomised_on:
                yield _finding("date_before_randomisation", row, field, f"{what} {day:%d %b %Y} is before randomisation.", day)
            else:
                yield _finding("date_in_future", row, field, f"{what} {day:%d %b %Y} is in the future.", day)


def walk_dates_out_of_range(*, trial: Trial, now: dt.datetime) -> Iterator[Finding]:
    yield from _dated_out_of_range(trial=trial, now=now, queryset=Walk.objects.all(), field="walked_on", what="Walk on")


def adverse_event_onset_out_of_range(*, trial: Trial, now: dt.datetime) -> Iterator[Finding]:
    yield from _dated_out_of_range(trial=trial, now=now, queryset=AdverseEvent.objects.all(), field="onset_date", what="Onset on")


def sessions_outside_intervention_arm(*, trial: Trial, now: dt.datetime) -> Iterator[Finding]:
    """Session rows of a participant who is not allocated to the arm that has sessions."""
    policy = InterventionPolicy.objects.filter(trial=trial).first()
    if policy is None:
        return
    sessions = (
        Session.objects.filter(participant__site__trial=trial)
        .exclude(participant__allocation__arm_id=policy.arm_id)
        .select_related("participant")
        .order_by("pk")
    )
    for session in sessions:
        yield _finding(
            "session_outside_intervention_arm",
            session,
            "participant",
            "An education session is recorded for a participant who is not allocated to the sessions.",
        )


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "none"
    return f"{value:%d %b %Y}" if isinstance(value, dt.date) else str(value)


def outcomes_stale(*, trial: Trial, now: dt.datetime) -> Iterator[Finding]:
    """Every randomised participant's outcomes derived again, in memory (nothing is written), and
    compared with the stored ones: each derived value that differs is a finding (0 expected: the
    outcomes are derived again whenever what they depend on changes). Adjudications are not compared."""
    labels = dict(OutcomeCode.choices)
    participants = (
        Participant.objects.filter(site__trial=trial, randomised_at__isnull=False)
        .select_related("site__trial")
        .prefetch_related("outcomes")
        .order_by("pk")
    )
    for participant in participants.iterator(chunk_size=500):
        stored = {outcome.code: outcome for outcome in participant.outcomes.all()}
        for code, values in outcome_values(inputs=outcome_inputs(participant=participant)).items():
            outcome = stored.get(code)
            if outcome is None:
                yield _finding(
                    "outcome_stale", participant, "", f"{participant.study_id} has no stored outcome '{labels[code]}'.", code
                )
                continue
            differ = [(name.removesuffix("_id"), getattr(outcome, name), derived) for name, derived in values.items()]
            differ = [(field, value, derived) for field, value, derived in differ if value != derived]
            if not differ:
                continue
            said = "; ".join(
                f"{field.replace('_', ' ')} is stored as {_shown(value)} but the answers now give {_shown(derived)}"
                for field, value, derived in differ
            )
            yield _finding(
                "outcome_stale",
                outcome,
                differ[0][0],
                f"{labels[code]}: {said}.",
                *(f"{field}={value}>{derived}" for field, value, derived in differ),
            )


RECORD_CHECKS: tuple[Callable[..., Iterator[Finding]], ...] = (
    walk_dates_out_of_range,
    adverse_event_onset_out_of_range,
    sessions_outside_intervention_arm,
    outcomes_stale,
)


def findings(*, trial: Trial, now: dt.datetime) -> Iterator[Finding]:
    for answered in _answered(trial=trial):
        for check in ANSWER_CHECKS:
            yield from check(answered)
    for record_check in RECORD_CHECKS:
        yield from record_check(trial=trial, now=now)


def checks_run(*, trial: Trial, now: dt.datetime | None = None) -> int:
    """Run every check and raise a query for each new finding; return how many were raised.
    Safe to run twice (a finding raises its query once) and a no-op while the database is locked."""
    if write_block_reason(trial=trial):
        return 0
    now = now or timezone.now()
    known = set(DataQuery.objects.filter(trial=trial, finding_key__isnull=False).values_list("finding_key", flat=True))
    raised = 0
    with audit_context(reason="Data-quality checks"):
        for finding in findings(trial=trial, now=now):
            if finding.key in known:
                continue
            known.add(finding.key)
            try:
                query = query_raise(
                    trial=trial,
                    record=finding.record,
                    field=finding.field,
                    text=finding.message,
                    check_code=finding.check,
                    finding_key=finding.key,
                )
            except DataLocked:
                break  # locked while the checks ran: what is left waits for an unlock
            raised += query is not None
    return raised


def checks_run_all(*, trial_id: int | None = None, now: dt.datetime | None = None) -> int:
    """``checks_run`` for one trial, or for every trial."""
    trials = Trial.objects.order_by("pk")
    if trial_id is not None:
        trials = trials.filter(pk=trial_id)
    return sum(checks_run(trial=trial, now=now) for trial in trials)
