"""Each randomised participant's CONSORT flow row (what the CONSORT and DMC reports count) stays
equal to reckoning it from the participants, allocations, outcomes and sessions, whatever writes
them and in whatever order; rebuilding it gives the same rows."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from closeout import flow
from closeout.models import ParticipantFlow
from followup.models import Outcome, OutcomeCode
from intervention.models import Session, SessionStatus
from participants.models import WithdrawalScope
from tests.factories import ParticipantFactory
from trial.models import Trial

Row = tuple[int, int, int, str, bool, bool]
SLOTS = itertools.count()


def _reckoned() -> set[Row]:
    with connection.cursor() as cursor:
        cursor.execute(flow.PARTICIPANT_FLOW_FILL_SQL.split("\n", 2)[2])  # the SELECT of the fill
        return set(cursor.fetchall())


def _kept() -> set[Row]:
    return set(
        ParticipantFlow.objects.values_list(
            "participant_id", "site_id", "arm_id", "withdrawal_scope", "analysed", "received_intervention"
        )
    )


def _session(participant, number: int, status: str, physio) -> Session:  # type: ignore[no-untyped-def]
    day = dt.date(2026, 5, 1)
    starts = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC) + dt.timedelta(hours=2 * next(SLOTS))  # never overlapping
    return Session.objects.create(
        participant=participant,
        number=number,
        name=f"Education {number}",
        target_date=day,
        window_start=day,
        window_end=day,
        status=status,
        starts_at=starts,
        ends_at=starts + dt.timedelta(hours=1),
        physiotherapist=physio,
        mode="in_person",
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_flow_rows_equal_reckoning_them_after_any_writes(walkback: Trial, make_staff, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    physio = make_staff("physiotherapist", sites=["SYD"])
    sites = list(walkback.sites.order_by("code")[:2])
    arms = list(walkback.arms.order_by("order"))
    people = [ParticipantFactory(site=sites[i % 2]) for i in range(3)]  # not randomised: no row
    people += [ParticipantFactory(site=sites[i % 2], randomised_to=arms[i % 2]) for i in range(5)]
    assert _kept() == _reckoned() and len(_kept()) == 5
    codes = [c.value for c in OutcomeCode]
    statuses = [s.value for s in SessionStatus]
    numbers: dict[int, int] = {}
    for _ in range(40):
        person = rng.choice(people)
        action = rng.random()
        if action < 0.15:  # withdrawn, or back
            person.withdrawal_scope = rng.choice(["", *WithdrawalScope.values])
            person.save(update_fields=["withdrawal_scope"])
        elif action < 0.35:  # an outcome derived, of any code
            code = rng.choice(codes)
            Outcome.objects.get_or_create(
                participant=person, code=code, defaults={"derived_at": dt.datetime(2026, 6, 1, tzinfo=dt.UTC)}
            )
        elif action < 0.45:  # outcomes removed
            Outcome.objects.filter(participant=person, code=rng.choice(codes)).delete()
        elif action < 0.65:  # a session planned, or recorded at once
            numbers[person.pk] = numbers.get(person.pk, 0) + 1
            _session(person, numbers[person.pk], rng.choice(statuses), physio)
        elif action < 0.85:  # sessions attended, missed or cancelled, several at once
            Session.objects.filter(participant=person).update(status=rng.choice(statuses))
        elif action < 0.9:
            Session.objects.filter(participant=person, status=SessionStatus.PLANNED).delete()
        else:  # a participant saved whole, their fields unchanged
            person.save()
        assert _kept() == _reckoned()
    assert any(row[4] for row in _kept())  # the sequence left someone analysed to count


def test_rebuilding_the_flow_writes_again_what_a_load_without_triggers_left_out(walkback: Trial) -> None:
    arm = walkback.arms.order_by("order").first()
    for _ in range(3):
        ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=arm)
    with connection.cursor() as cursor:  # as a restore with --disable-triggers would leave it
        cursor.execute("DELETE FROM closeout_participantflow")
    assert _kept() != _reckoned()
    out = StringIO()
    call_command("rebuild_participant_flow", stdout=out)
    assert _kept() == _reckoned() and "flow rebuilt: 3 participants" in out.getvalue()
    assert flow.participant_flow_rebuild() == 3  # safe to run again


@pytest.mark.migrations
@pytest.mark.django_db(transaction=True)
def test_the_migration_writes_the_rows_of_the_participants_already_randomised(walkback: Trial, make_staff) -> None:  # type: ignore[no-untyped-def]
    arms = list(walkback.arms.order_by("order"))
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("closeout", "0004_economic_policy")])  # no flow table, no triggers
        walker = ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=arms[0])
        control = ParticipantFactory(site=walkback.sites.get(code="BNE"), randomised_to=arms[1])
        ParticipantFactory(site=walkback.sites.get(code="SYD"))  # not randomised
        Outcome.objects.create(
            participant=walker, code=OutcomeCode.ACTIVITY_LIMITING, derived_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
        )
        _session(walker, 1, SessionStatus.ATTENDED, make_staff("physiotherapist", sites=["SYD"]))
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(leaves)
    assert _kept() == _reckoned()
    assert {(row[0], row[4], row[5]) for row in _kept()} == {(walker.pk, True, True), (control.pk, False, False)}
