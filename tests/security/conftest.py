"""A small trial with one of everything, and a signed-in user per role, for the security tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from closeout.queries import services as queries
from followup.models import Occurrence, OccurrenceStatus, OutcomeCode
from followup.services import outcomes_derive
from intervention.models import ExtraSlot, Leave, Session
from participants import links
from participants import services as journey
from participants.models import Participant
from safety.services import AEInput, adverse_event_record
from tests.factories import ELIGIBLE
from trial.models import Trial

# The roles of the README's table, by the username each has in the world.
ROLES = ("coordinator", "physiotherapist", "investigator", "data_manager", "statistician", "admin")


@dataclasses.dataclass
class World:
    trial: Trial
    users: dict[str, Any]
    walker: Participant  # randomised to the intervention arm: sessions, diary
    ids: dict[str, Any]  # what fills a path parameter, by kind of record


@pytest.fixture
def world(walkback: Trial, make_staff: Callable[..., Any], coordinator: Any, sealed_list: Any, enrol: Any) -> World:
    users = {
        role: make_staff(role, sites=["SYD"] if role in ("coordinator", "physiotherapist") else [], username=f"w-{role}")
        for role in ROLES
    }
    physio = users["physiotherapist"]
    people = [enrol(site="SYD", prior=prior, by=coordinator) for prior in ("yes", "no", "yes", "no")]
    for person in people[:3]:
        journey.participant_randomise(participant_id=person.pk, by=coordinator)
    walker = next(p for p in people[:3] if Session.objects.filter(participant=p).exists())
    walker.refresh_from_db()
    Session.objects.filter(participant__site__code="SYD").update(physiotherapist=physio)
    screening = journey.screening_record(site=walkback.sites.get(code="SYD"), answers=ELIGIBLE, by=coordinator)
    event = adverse_event_record(
        participant=walker,
        data=AEInput(
            onset_date=timezone.localdate() - dt.timedelta(days=1),
            description="Sore knee after a walk",
            category="lower_extremity",
            severity="mild",
            relatedness="possibly",
            expected=True,
            action_taken="None",
            outcome="recovering",
        ),
        by=coordinator,
    )
    query = queries.query_raise(trial=walkback, record=walker, field="study_id", text="Please check", by=users["data_manager"])
    assert query is not None
    now = timezone.now()
    leave = Leave.objects.create(
        physiotherapist=physio, starts_at=now + dt.timedelta(days=40), ends_at=now + dt.timedelta(days=41)
    )
    extra = ExtraSlot.objects.create(
        physiotherapist=physio,
        site=walkback.sites.get(code="SYD"),
        starts_at=now + dt.timedelta(days=42),
        ends_at=now + dt.timedelta(days=42, hours=2),
        modes=["in_person"],
    )
    occurrence = Occurrence.objects.filter(participant=walker).order_by("opens_at").first()
    assert occurrence is not None
    # Its window is open now, so the participant's questionnaire page answers.
    Occurrence.objects.filter(pk=occurrence.pk).update(
        status=OccurrenceStatus.OPEN, opens_at=now - dt.timedelta(days=1), closes_at=now + dt.timedelta(days=6)
    )
    outcomes_derive(participant=walker)
    ids = {
        "participant": walker.pk,
        "screening": screening.pk,
        "adverse_event": event.pk,
        "query": query.pk,
        "session": Session.objects.filter(participant=walker).order_by("number").first().pk,  # type: ignore[union-attr]
        "leave": leave.pk,
        "extra": extra.pk,
        "occurrence": occurrence.pk,
        "physiotherapist": physio.pk,
        "outcome": OutcomeCode.ACTIVITY_LIMITING.value,
        "token": links.access_link_issue(participant=walker, by=coordinator),
        "channel": "email",
    }
    return World(trial=walkback, users=users, walker=walker, ids=ids)
