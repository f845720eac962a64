"""participants.blinding: what a blinded role sees of records whose fields differ by arm.
(tests/participants/test_arm_swap.py proves it across every page; these say each rule plainly.)"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from intervention import services as intervention
from intervention.models import WorkingHours
from participants import blinding, services
from participants.models import Participant, Withdrawal
from tests.factories import ParticipantFactory
from trial.models import Trial


@pytest.fixture
def walker(walkback: Trial, make_staff) -> Participant:  # type: ignore[no-untyped-def]
    make_staff("physiotherapist", sites=["SYD"], username="phil")
    WorkingHours.objects.create(site=walkback.sites.get(code="SYD"), weekday=0, start=dt.time(9), end=dt.time(12))
    participant = ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.get(code="walking"))
    intervention.sessions_plan(participant=participant)  # assigns the physiotherapist
    participant.refresh_from_db()
    assert participant.physiotherapist_id is not None
    return participant


def test_a_blinded_role_never_sees_the_physiotherapist_nor_the_change_that_assigned_one(
    walkback: Trial, walker: Participant, make_staff, coordinator
) -> None:  # type: ignore[no-untyped-def]
    blinded = blinding.record_history(obj=walker, user=make_staff("investigator"), trial=walkback)
    assert [e.label for e in blinded] == ["insert", "update"]  # enrolled, randomised: as in the control arm
    assert all("physiotherapist_id" not in [c[0] for c in e.changes] for e in blinded)
    assert blinded[0].data["physiotherapist_id"] == blinding.REDACTED

    unblinded = blinding.record_history(obj=walker, user=coordinator, trial=walkback)
    assert any(("physiotherapist_id", None, walker.physiotherapist_id) in e.changes for e in unblinded)


def test_stopping_the_intervention_only_looks_like_no_withdrawal_to_a_blinded_role(
    walkback: Trial, walker: Participant, make_staff, coordinator
) -> None:  # type: ignore[no-untyped-def]
    services.participant_withdraw(participant=walker, scope="intervention", reason="Too busy", by=coordinator)
    walker.refresh_from_db()
    investigator = make_staff("investigator")

    seen = blinding.participant_as_seen(walker, user=investigator, trial=walkback)
    assert seen.withdrawal_scope == "" and seen.physiotherapist_id is None
    assert walker.withdrawal_scope == "intervention", "the record itself is untouched"
    assert blinding.reveals_arm(Withdrawal.objects.get(participant=walker))
    assert not blinding.can_view_record(investigator, Withdrawal.objects.get(participant=walker), trial=walkback)
    assert [e.label for e in blinding.record_history(obj=walker, user=investigator, trial=walkback)] == ["insert", "update"]

    services.participant_withdraw(participant=walker, scope="followup", reason="Moved away", by=coordinator)
    walker.refresh_from_db()
    history = blinding.record_history(obj=walker, user=investigator, trial=walkback)
    assert ("withdrawal_scope", "", "followup") in history[-1].changes  # a wider withdrawal is shown as it is
    assert blinding.participant_as_seen(walker, user=investigator, trial=walkback).withdrawal_scope == "followup"
    assert blinding.participant_as_seen(walker, user=coordinator, trial=walkback).physiotherapist_id is not None


def test_an_emergency_unblinding_shows_that_participant_as_stored(
    walkback: Trial, walker: Participant, make_staff, coordinator, password: str
) -> None:  # type: ignore[no-untyped-def]
    services.participant_withdraw(participant=walker, scope="intervention", reason="Too busy", by=coordinator)
    investigator: Any = make_staff("investigator")
    services.participant_unblind(participant=walker, user=investigator, reason="SAE", password=password)
    walker.refresh_from_db()
    assert blinding.participant_as_seen(walker, user=investigator, trial=walkback).withdrawal_scope == "intervention"
