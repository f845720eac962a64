"""The data-quality checks: each finds its crafted finding, a finding raises its query once (run
twice, by the task or the command), nothing runs while locked; the missing-data report."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from closeout.datalock.services import database_lock
from closeout.models import DataQuery
from closeout.queries import checks, selectors
from closeout.tasks import run_quality_checks
from followup import services as followup
from followup.models import Occurrence, OccurrenceStatus, Outcome, QuestionnaireResponse, ResponseSource
from intervention.models import Session, Walk
from participants import services as journey
from participants.models import Participant
from safety.models import AdverseEvent
from tests.factories import ParticipantFactory
from tests.monthly import episode, monthly
from trial.models import Trial

UTC = dt.UTC
RANDOMISED_AT = dt.datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # 2 March 2026, 09:00 in Sydney
NOW = dt.datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 1 June 2026, 12:00 in Sydney
ANSWERED_AT = dt.datetime(2026, 4, 3, 2, 0, tzinfo=UTC)

CLEAN_MONTHLY = {
    "lbp_any": True,
    "ep1_start": "2026-03-20",
    "ep1_24h": True,
    "ep1_interference": 2,
    "ep1_pain_avg": 4,
    "ep1_pain_worst": 7,
    "ep1_care_sought": False,
    "ep1_work_days_missed": 1,
    "ep1_recovered_on": "2026-03-28",
    "ep1_more": False,
    "new_health_problem": False,
}


def randomised(walkback: Trial, arm: str, site: str = "SYD") -> Participant:
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = ParticipantFactory(site=walkback.sites.get(code=site), randomised_to=walkback.arms.get(code=arm))
        followup.schedule_create(participant=participant, now=RANDOMISED_AT)
        followup.outcomes_derive(participant=participant, now=RANDOMISED_AT)
    participant.refresh_from_db()
    return participant


def respond(participant: Participant, month: int, answers: dict[str, Any]) -> QuestionnaireResponse:
    """Answers written as they might arrive from an import or a correction: unchecked."""
    occurrence = Occurrence.objects.get(participant=participant, instrument="monthly", month=month)
    Occurrence.objects.filter(pk=occurrence.pk).update(status=OccurrenceStatus.COMPLETED, completed_at=ANSWERED_AT)
    response = QuestionnaireResponse.objects.create(
        occurrence=occurrence,
        instrument_version=followup.instrument_for(occurrence=occurrence),
        answers=answers,
        source=ResponseSource.PARTICIPANT,
        submitted_at=ANSWERED_AT,
    )
    followup.outcomes_derive(participant=participant, now=ANSWERED_AT)  # as a correction would
    return response


@pytest.fixture
def crafted(walkback: Trial) -> dict[str, Any]:
    """One record per check with exactly the problem that check looks for, and clean ones beside them."""
    walker, control = randomised(walkback, "walking"), randomised(walkback, "control", site="BNE")
    rows: dict[str, Any] = {"walker": walker, "control": control}
    rows["clean"] = respond(walker, 1, CLEAN_MONTHLY)
    rows["out_of_range"] = respond(walker, 2, {**CLEAN_MONTHLY, "ep1_pain_avg": 15})
    rows["missing"] = respond(control, 1, {"lbp_any": False})  # new_health_problem is required
    rows["before"] = respond(control, 2, {**CLEAN_MONTHLY, "ep1_start": "2026-02-20", "ep1_recovered_on": "2026-02-25"})
    rows["future"] = respond(walker, 3, {**CLEAN_MONTHLY, "ep1_start": "2026-04-01", "ep1_recovered_on": "2026-04-20"})
    second_episode = {"ep1_more": True, "ep2_start": "2026-03-30", "ep2_24h": True, "ep2_interference": 1, "ep2_pain_avg": 2}
    rows["end_before_start"] = respond(
        control,
        3,
        {**CLEAN_MONTHLY, **second_episode, "ep2_pain_worst": 3, "ep2_care_sought": False, "ep2_work_days_missed": 0}
        | {"ep2_recovered_on": "2026-03-26", "ep2_more": False},
    )
    rows["stale"] = Outcome.objects.get(participant=walker, code="any")
    Outcome.objects.filter(pk=rows["stale"].pk).update(censor_reason="withdrawal")  # written around the services
    rows["walk_ok"] = Walk.objects.create(participant=walker, walked_on=dt.date(2026, 3, 10), minutes=30)
    rows["walk_before"] = Walk.objects.create(participant=walker, walked_on=dt.date(2026, 3, 1), minutes=30)
    rows["walk_future"] = Walk.objects.create(participant=walker, walked_on=dt.date(2026, 6, 2), minutes=30)
    rows["ae_before"] = AdverseEvent.objects.create(
        participant=control, source="staff", status="pending", onset_date=dt.date(2026, 2, 1), aware_at=ANSWERED_AT
    )
    rows["ae_ok"] = AdverseEvent.objects.create(
        participant=walker, source="staff", status="pending", onset_date=dt.date(2026, 4, 1), aware_at=ANSWERED_AT
    )
    day = dt.date(2026, 3, 9)
    rows["session_ok"] = Session.objects.create(
        participant=walker, number=1, name="Education 1", target_date=day, window_start=day, window_end=day
    )
    rows["session_control"] = Session.objects.create(
        participant=control, number=1, name="Education 1", target_date=day, window_start=day, window_end=day
    )
    return rows


def found(trial: Trial) -> set[tuple[str, str, int, str]]:
    return {(f.check, f.record._meta.label_lower, f.record.pk, f.field) for f in checks.findings(trial=trial, now=NOW)}


def test_each_check_finds_its_crafted_finding_and_nothing_else(walkback: Trial, crafted: dict[str, Any]) -> None:
    r = crafted
    response, walk, ae = "followup.questionnaireresponse", "intervention.walk", "safety.adverseevent"
    assert found(walkback) == {
        ("out_of_range", response, r["out_of_range"].pk, "answers.ep1_pain_avg"),
        ("missing_required", response, r["missing"].pk, "answers.new_health_problem"),
        ("date_before_randomisation", response, r["before"].pk, "answers.ep1_start"),
        ("date_before_randomisation", response, r["before"].pk, "answers.ep1_recovered_on"),
        ("date_in_future", response, r["future"].pk, "answers.ep1_recovered_on"),
        ("recurrence_end_before_start", response, r["end_before_start"].pk, "answers.ep2_recovered_on"),
        ("outcome_stale", "followup.outcome", r["stale"].pk, "censor_reason"),
        ("date_before_randomisation", walk, r["walk_before"].pk, "walked_on"),
        ("date_in_future", walk, r["walk_future"].pk, "walked_on"),
        ("date_before_randomisation", ae, r["ae_before"].pk, "onset_date"),
        ("session_outside_intervention_arm", "intervention.session", r["session_control"].pk, "participant"),
    }


def test_running_the_checks_twice_raises_each_query_once(walkback: Trial, crafted: dict[str, Any]) -> None:
    assert checks.checks_run(trial=walkback, now=NOW) == 11
    assert checks.checks_run(trial=walkback, now=NOW) == 0
    assert DataQuery.objects.count() == 11
    query = DataQuery.objects.get(check_code="out_of_range")
    assert (query.site.code, query.raised_by, query.status, query.field) == ("SYD", None, "open", "answers.ep1_pain_avg")
    assert "15 is outside the allowed range (0 to 10)" in query.text
    # a closed query stays closed: the same finding is not raised again
    DataQuery.objects.filter(pk=query.pk).update(status="closed")
    assert checks.checks_run(trial=walkback, now=NOW) == 0
    # a new value is a new finding
    QuestionnaireResponse.objects.filter(pk=crafted["out_of_range"].pk).update(answers={**CLEAN_MONTHLY, "ep1_pain_avg": 11})
    assert checks.checks_run(trial=walkback, now=NOW) == 1


def test_the_task_and_the_command_are_safe_to_run_twice(walkback: Trial, crafted: dict[str, Any]) -> None:
    with time_machine.travel(NOW, tick=False):
        run_quality_checks.apply()
        run_quality_checks.apply(kwargs={"trial_id": walkback.pk})
        call_command("run_quality_checks", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert DataQuery.objects.count() == 11
    assert set(DataQuery.objects.values_list("check_code", flat=True)) == set(checks.CHECK_LABELS)


def test_the_checks_raise_nothing_while_the_database_is_locked(
    walkback: Trial, crafted: dict[str, Any], make_staff, password
) -> None:
    database_lock(trial=walkback, user=make_staff("investigator"), password=password, open_items_note="Test")
    walkback.refresh_from_db()
    assert checks.checks_run(trial=walkback, now=NOW) == 0
    assert not DataQuery.objects.exists()


def test_the_run_checks_button_queues_the_checks_on_commit(
    client: Client, walkback: Trial, crafted: dict[str, Any], make_staff, django_capture_on_commit_callbacks
) -> None:
    client.force_login(make_staff("data_manager"))
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True) as queued:
        client.post(reverse("query-checks-run"))
    assert len(queued) == 1
    assert DataQuery.objects.count() == 11


def test_the_nightly_check_raises_one_query_for_a_stale_outcome_and_never_again(
    walkback: Trial, enrol: Any, coordinator: Any, sealed_list: Any
) -> None:
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = enrol()
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    occurrence = Occurrence.objects.get(participant=participant, instrument="monthly", month=1)
    with time_machine.travel(ANSWERED_AT, tick=False):
        followup.occurrences_advance(now=ANSWERED_AT)
        followup.response_submit(occurrence=occurrence, raw=monthly(episode("2026-03-20")), source="participant")
    assert checks.checks_run(trial=walkback, now=NOW) == 0  # kept current by the services: nothing to raise
    primary = Outcome.objects.get(participant=participant, code="activity_limiting")
    Outcome.objects.filter(pk=primary.pk).update(event=False, event_date=None, days=30)  # stale, written around them

    assert checks.checks_run(trial=walkback, now=NOW) == 1
    assert checks.checks_run(trial=walkback, now=NOW) == 0

    query = DataQuery.objects.get(check_code="outcome_stale")
    assert (query.record_type, query.record_id, query.field) == ("followup.outcome", primary.pk, "event")
    assert "event is stored as False but the answers now give True" in query.text
    assert "event date is stored as none but the answers now give 20 Mar 2026" in query.text
    primary.refresh_from_db()
    assert (primary.event, primary.days) == (False, 30)  # the check writes no outcome


# --- The missing-data report -------------------------------------------------------------------


def test_the_missing_data_report_counts_by_instrument_timepoint_and_site(client: Client, walkback: Trial, make_staff) -> None:
    syd_1, syd_2, bne = randomised(walkback, "walking"), randomised(walkback, "control"), randomised(walkback, "walking", "BNE")

    def mark(participant: Participant, instrument: str, month: int, status: str) -> None:
        Occurrence.objects.filter(participant=participant, instrument=instrument, month=month).update(
            status=status, completed_at=ANSWERED_AT if status == "completed" else None
        )

    mark(syd_1, "monthly", 1, "completed")
    mark(syd_2, "monthly", 1, "missed")
    mark(bne, "monthly", 1, "completed")
    mark(syd_1, "monthly", 2, "open")
    mark(syd_1, "timepoint", 3, "missed")
    mark(syd_2, "monthly", 2, "cancelled")

    report = {
        (row.instrument, row.month): row for row in selectors.missing_data_report(user=make_staff("data_manager"), trial=walkback)
    }
    assert set(report) == {("monthly", 1), ("monthly", 2), ("timepoint", 3)}
    month_1 = report[("monthly", 1)]
    by_site = dict(month_1.by_site)
    assert (by_site["SYD"].due, by_site["SYD"].completed, by_site["SYD"].missed, by_site["SYD"].percent_missing) == (
        2,
        1,
        1,
        50.0,
    )
    assert (by_site["BNE"].due, by_site["BNE"].missed, by_site["BNE"].percent_missing) == (1, 0, 0.0)
    assert (month_1.total.due, month_1.total.completed, month_1.total.missed) == (3, 2, 1)
    assert month_1.total.percent_missing == pytest.approx(33.3)
    month_2 = report[("monthly", 2)].total
    assert (month_2.due, month_2.open, month_2.percent_missing) == (1, 1, None)  # nothing closed yet
    assert report[("timepoint", 3)].total.percent_missing == 100.0

    # a site-bound reader of the report sees only their sites; the page is for data managers and investigators
    bne_only = selectors.missing_data_report(user=make_staff("coordinator", sites=["BNE"]), trial=walkback)
    assert [(row.instrument, row.month, [site for site, _ in row.by_site]) for row in bne_only] == [("monthly", 1, ["BNE"])]
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    assert client.get(reverse("missing-data")).status_code == 403
    client.force_login(make_staff("investigator"))
    page = client.get(reverse("missing-data"))
    assert page.status_code == 200
    row = page.content.decode().split('data-testid="missing-monthly-1-all"')[1].split("</tr>")[0]
    assert "33.3%" in row
