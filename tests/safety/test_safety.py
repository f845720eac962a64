"""Adverse events: entered, reported from questionnaires and reviewed, followed up; serious events
alert the safety contacts once, with deadlines."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.core import mail

from followup import services as followup
from followup.models import Occurrence
from participants import services as journey
from safety import selectors
from safety.models import AdverseEvent, AEStatus
from safety.services import (
    AEInput,
    adverse_event_dismiss,
    adverse_event_followup_add,
    adverse_event_record,
    adverse_event_update,
    safety_policy,
)
from trial import tasks
from trial.errors import ApplicationError, Conflict, NotAllowed
from trial.models import ContactKind, Notification, Trial, TrialContact

RANDOMISED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
IN_MONTH_1 = dt.datetime(2026, 4, 2, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def randomised(walkback: Trial, enrol, coordinator, sealed_list):  # type: ignore[no-untyped-def]
    TrialContact.objects.create(trial=walkback, kind=ContactKind.SAFETY, name="Safety", email="safety@example.org")
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = enrol()
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    participant.refresh_from_db()
    return participant


def serious(**changes: Any) -> AEInput:
    values: dict[str, Any] = {
        "onset_date": dt.date(2026, 3, 20),
        "description": "Fractured ankle after a fall on stairs",
        "category": "lower_extremity",
        "severity": "severe",
        "serious": True,
        "serious_criteria": ["hospitalisation"],
        "relatedness": "possibly",
        "expected": False,
        "action_taken": "Programme paused",
        "outcome": "recovering",
    }
    return AEInput(**{**values, **changes})


def sae_emails() -> list[Any]:
    return [m for m in mail.outbox if m.to == ["safety@example.org"]]


def test_a_serious_event_alerts_the_safety_contacts_once_without_the_arm(
    randomised, coordinator, walkback: Trial, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        event = adverse_event_record(participant=randomised, data=serious(), by=coordinator)
        adverse_event_update(
            event=event,
            data=serious(outcome="recovering", action_taken="Programme paused 4 weeks"),
            reason="More detail",
            by=coordinator,
        )
        adverse_event_update(event=event, data=serious(), reason="Saved again", by=coordinator)
    (alert,) = sae_emails()
    assert randomised.study_id in alert.subject and "hospitalisation" in alert.body
    assert not any(arm.name in alert.body or arm.code in alert.body for arm in walkback.arms.all())
    notification = Notification.objects.get(key=f"sae:{event.pk}")
    tasks.send_notification.apply(args=[notification.pk])  # the task running twice sends nothing more
    assert len(sae_emails()) == 1


def test_a_non_serious_event_alerts_nobody(randomised, coordinator, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        adverse_event_record(
            participant=randomised, data=serious(serious=False, serious_criteria=[], severity="mild"), by=coordinator
        )
    assert sae_emails() == []


def test_every_field_is_checked_together(randomised, coordinator) -> None:
    with pytest.raises(ApplicationError) as bad:
        adverse_event_record(
            participant=randomised,
            data=AEInput(onset_date=dt.date(2099, 1, 1), category="elbow", severity="awful", serious=True),
            by=coordinator,
        )
    assert set(bad.value.errors) == {"onset_date", "description", "category", "severity", "serious_criteria"}
    assert not AdverseEvent.objects.exists()


def test_roles_without_the_permission_or_the_site_may_not_record(randomised, make_staff) -> None:
    with pytest.raises(NotAllowed):
        adverse_event_record(participant=randomised, data=serious(), by=make_staff("statistician"))
    with pytest.raises(NotAllowed, match="site"):
        adverse_event_record(participant=randomised, data=serious(), by=make_staff("coordinator", sites=["BNE"]))


def test_a_new_health_problem_in_a_questionnaire_becomes_a_pending_report_for_review(randomised, coordinator) -> None:
    occurrence = Occurrence.objects.get(participant=randomised, instrument="monthly", month=1)
    with time_machine.travel(IN_MONTH_1, tick=False):
        followup.occurrences_advance(now=IN_MONTH_1)
        followup.response_submit(
            occurrence=occurrence,
            raw={"lbp_any": "no", "new_health_problem": "yes", "new_health_problem_details": "Sore knee after walking"},
            source="participant",
        )
    (report,) = AdverseEvent.objects.filter(participant=randomised)
    assert (report.status, report.source, report.reported_text) == ("pending", "questionnaire", "Sore knee after walking")
    assert list(selectors.pending_reports(user=coordinator, trial=randomised.site.trial)) == [report]

    with time_machine.travel(IN_MONTH_1 + dt.timedelta(hours=2), tick=False):
        completed = adverse_event_update(
            event=report,
            data=serious(serious=False, serious_criteria=[], severity="mild", category="lower_extremity"),
            reason="Reviewed by phone",
            by=coordinator,
        )
    assert completed.status == AEStatus.OPEN and completed.reported_by == coordinator


def test_a_report_that_is_not_an_event_is_dismissed_with_a_reason(randomised, coordinator) -> None:
    report = AdverseEvent.objects.create(participant=randomised, source="questionnaire", status="pending", aware_at=IN_MONTH_1)
    with pytest.raises(ApplicationError, match="why"):
        adverse_event_dismiss(event=report, reason="", by=coordinator)
    adverse_event_dismiss(event=report, reason="Duplicate of event 4", by=coordinator)
    report.refresh_from_db()
    assert report.status == AEStatus.DISMISSED
    with pytest.raises(Conflict):
        adverse_event_update(event=report, data=serious(), reason="x", by=coordinator)


def test_follow_ups_resolve_the_event_and_meet_the_deadlines(randomised, coordinator, walkback: Trial) -> None:
    aware = dt.datetime(2026, 3, 21, 0, 0, tzinfo=dt.UTC)
    with time_machine.travel(aware + dt.timedelta(hours=30), tick=False):  # recorded as serious 30 hours after awareness
        event = adverse_event_record(participant=randomised, data=serious(), by=coordinator, aware_at=aware)
    policy = safety_policy(trial=walkback)
    with time_machine.travel(aware + dt.timedelta(days=3), tick=False):
        deadlines = selectors.sae_deadlines(event=event, policy=policy, first_followup_at=None)
        assert deadlines is not None
        assert deadlines.initial.met is False  # 30 h > 24 h
        assert deadlines.followup.met is None  # due in 7 days, not yet
    with time_machine.travel(aware + dt.timedelta(days=5), tick=False):
        with pytest.raises(ApplicationError) as no_date:
            adverse_event_followup_add(event=event, note="Cast removed", outcome="recovered", by=coordinator)
        assert "resolution_date" in no_date.value.errors
        adverse_event_followup_add(
            event=event,
            note="Cast removed, walking again",
            outcome="recovered",
            resolution_date=dt.date(2026, 3, 25),
            by=coordinator,
        )
    event.refresh_from_db()
    assert event.status == AEStatus.RESOLVED and event.resolution_date == dt.date(2026, 3, 25)
    (listed,) = selectors.adverse_event_list(user=coordinator, trial=walkback, filters={"serious": "true"})
    deadlines = selectors.sae_deadlines(event=listed, policy=policy, first_followup_at=listed.first_followup_at)
    assert deadlines is not None and deadlines.followup.met is True
    with time_machine.travel(aware + dt.timedelta(days=20), tick=False):
        late = selectors.sae_deadlines(event=event, policy=policy, first_followup_at=None)
        assert late is not None and late.followup.met is False


def test_the_list_filters_and_the_safety_summary_by_arm_is_for_unblinded_roles(
    randomised, coordinator, make_staff, walkback: Trial
) -> None:
    adverse_event_record(participant=randomised, data=serious(), by=coordinator)
    adverse_event_record(
        participant=randomised, data=serious(serious=False, serious_criteria=[], category="back", severity="mild"), by=coordinator
    )
    assert selectors.adverse_event_list(user=coordinator, trial=walkback, filters={"category": "back"}).count() == 1
    assert selectors.adverse_event_list(user=coordinator, trial=walkback, filters={"site": "BNE"}).count() == 0
    assert selectors.adverse_event_list(user=make_staff("coordinator", sites=["BNE"], username="b"), trial=walkback).count() == 0
    assert selectors.safety_by_arm(user=make_staff("investigator"), trial=walkback) is None
    summary = selectors.safety_by_arm(user=coordinator, trial=walkback)
    assert summary is not None and sum(s.events for s in summary) == 2 and sum(s.serious for s in summary) == 1


def test_a_participant_filter_too_long_for_an_id_finds_nothing_instead_of_failing(
    randomised, coordinator, walkback: Trial
) -> None:
    adverse_event_record(participant=randomised, data=serious(), by=coordinator)
    assert list(selectors.adverse_event_list(user=coordinator, trial=walkback, filters={"participant": "9" * 30})) == []
    assert (
        selectors.adverse_event_list(user=coordinator, trial=walkback, filters={"participant": randomised.study_id}).count() == 1
    )


def test_the_summary_by_arm_and_the_counts_by_status_are_counted_in_sql(
    randomised, coordinator, walkback: Trial, django_assert_max_num_queries
) -> None:
    from tests.factories import ParticipantFactory

    adverse_event_record(participant=randomised, data=serious(), by=coordinator)
    adverse_event_record(
        participant=randomised, data=serious(serious=False, serious_criteria=[], category="back"), by=coordinator
    )
    with django_assert_max_num_queries(10) as few:
        selectors.safety_by_arm(user=coordinator, trial=walkback)
        selectors.adverse_event_counts(user=coordinator, trial=walkback)
    arm = walkback.arms.get(pk=randomised.allocation.arm_id)
    others = ParticipantFactory.create_batch(20, site=randomised.site, randomised_to=arm)
    adverse_event_record(participant=others[0], data=serious(serious=False, serious_criteria=[], category="back"), by=coordinator)
    with django_assert_max_num_queries(len(few.captured_queries)):
        summary = selectors.safety_by_arm(user=coordinator, trial=walkback)
        counts = selectors.adverse_event_counts(user=coordinator, trial=walkback)
    assert summary is not None
    mine = next(s for s in summary if s.arm == arm.name)
    assert (mine.participants, mine.with_event, mine.events, mine.serious) == (21, 2, 3, 1)
    assert mine.by_category["back"] == 2 and sum(s.events for s in summary) == 3
    assert (counts["total"], counts["serious"]) == (3, 1)


def test_the_deadline_counts_in_sql_agree_with_each_events_deadlines(randomised, coordinator, walkback: Trial) -> None:
    """The overview counts deadlines met, missed and open in one query: for events on either side
    of each deadline, with and without a follow-up, the counts are those of ``sae_deadlines``."""
    from collections import Counter

    from safety.models import AEFollowUp

    policy = safety_policy(trial=walkback)
    now = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    hours, days = policy.initial_report_hours, policy.followup_report_days
    cases = [  # (hours from awareness to serious, days from serious to the first follow-up, days before now)
        (1, 2, 30),  # both met
        (hours + 6, None, 2),  # initial missed; the follow-up not done, not yet due: open
        (hours, None, days + 3),  # initial met on its last moment; the follow-up not done and overdue: missed
        (2, days + 1, 40),  # the follow-up done late: missed
        (2, days, 40),  # the follow-up done on its last moment: met
        (None, None, 3),  # not serious: no deadlines
    ]
    for to_serious, to_followup, ago in cases:
        aware = now - dt.timedelta(days=ago)
        event = AdverseEvent.objects.create(
            participant=randomised,
            source="staff",
            onset_date=aware.date(),
            category="lower_extremity",
            severity="severe",
            aware_at=aware,
            serious=to_serious is not None,
            serious_since=aware + dt.timedelta(hours=to_serious) if to_serious is not None else None,
            reported_by=coordinator,
        )
        if to_followup is not None:
            assert event.serious_since is not None
            AEFollowUp.objects.create(
                event=event,
                reported_on=now.date(),
                note="seen",
                recorded_by=coordinator,
                recorded_at=event.serious_since + dt.timedelta(days=to_followup),
            )
    with time_machine.travel(now, tick=False):
        expected: dict[str, Counter[str]] = {"initial": Counter(), "followup": Counter()}
        for listed in selectors.adverse_event_list(user=coordinator, trial=walkback, filters={"serious": "true"}):
            deadlines = selectors.sae_deadlines(event=listed, policy=policy, first_followup_at=listed.first_followup_at)
            assert deadlines is not None
            for kind in expected:
                met = getattr(deadlines, kind).met
                expected[kind]["met" if met else "missed" if met is False else "open"] += 1
        counts = selectors.sae_deadline_counts(user=coordinator, trial=walkback, policy=policy)
    assert counts == {kind: {state: expected[kind][state] for state in ("met", "missed", "open")} for kind in expected}
    assert counts == {"initial": {"met": 4, "missed": 1, "open": 0}, "followup": {"met": 2, "missed": 2, "open": 1}}
