"""The tally of messages (what the messages API counts its pages by) stays equal to counting the
messages, whatever writes them; a message never changes whose it is; the API's count and its last
pages agree with the messages themselves, for roles that see arms and blinded ones."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import InternalError, ProgrammingError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from rest_framework.test import APIClient

from intervention.models import Session
from messaging import services
from messaging.models import Message, MessageTally
from participants.models import Unblinding
from tests.factories import ParticipantFactory
from trial.models import Trial

AT = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


def _counted() -> Counter[tuple[int, bool]]:
    rows = (
        Message.objects.annotate(for_session=ExpressionWrapper(Q(session__isnull=False), BooleanField()))
        .values_list("participant__site_id", "for_session")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return Counter({(site, for_session): n for site, for_session, n in rows})


def _tally() -> Counter[tuple[int, bool]]:
    return Counter({(t.site_id, t.for_session): t.n for t in MessageTally.objects.all() if t.n})


def _session(participant, number: int) -> Session:
    day = dt.date(2026, 5, 1)
    return Session.objects.create(
        participant=participant, number=number, name=f"Education {number}", target_date=day, window_start=day, window_end=day
    )


def _message(participant, n: int, session: Session | None = None) -> Message:
    return Message(
        participant=participant,
        session=session,
        step=f"reminder-{n}",
        channel="email",
        planned_at=AT + dt.timedelta(minutes=n),
        due_at=AT + dt.timedelta(minutes=n),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_tally_equals_counting_the_messages_after_any_writes(walkback: Trial, seed: int) -> None:
    rng = random.Random(seed)
    sites = list(walkback.sites.order_by("code")[:2])
    people = [ParticipantFactory(site=sites[i % 2]) for i in range(4)]
    sessions = {p.pk: _session(p, 1) for p in people}
    n = 0
    for _ in range(25):
        action = rng.random()
        if action < 0.4:  # many in one statement, some about a session
            batch = []
            for _row in range(rng.randint(1, 6)):
                n += 1
                person = rng.choice(people)
                batch.append(_message(person, n, sessions[person.pk] if rng.random() < 0.3 else None))
            Message.objects.bulk_create(batch)
        elif action < 0.6:  # one at a time, through the model
            n += 1
            person = rng.choice(people)
            _message(person, n, sessions[person.pk] if rng.random() < 0.5 else None).save()
        elif action < 0.8:  # the sweep's kind of change: status only
            Message.objects.filter(pk__in=list(Message.objects.values_list("pk", flat=True)[:5])).update(
                status="sent", sent_at=AT
            )
        else:  # removed, several at once
            pick = list(Message.objects.values_list("pk", flat=True))
            Message.objects.filter(pk__in=rng.sample(pick, min(len(pick), rng.randint(1, 3)))).delete()
        assert _tally() == _counted()
    assert sum(_tally().values()) > 0


def test_a_message_keeps_its_participant_and_its_session(walkback: Trial) -> None:
    person, other = (
        ParticipantFactory(site=walkback.sites.get(code="SYD")),
        ParticipantFactory(site=walkback.sites.get(code="BNE")),
    )
    message = _message(person, 1)
    message.save()
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        Message.objects.filter(pk=message.pk).update(participant=other)
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        Message.objects.filter(pk=message.pk).update(session=_session(person, 2))
    message.status = "sent"
    message.sent_at = AT
    message.save()  # every column written, the participant and session unchanged: allowed
    assert _tally() == _counted() == Counter({(person.site_id, False): 1})


def test_rebuilding_the_tally_counts_again_what_a_load_without_triggers_left_out(walkback: Trial) -> None:
    person = ParticipantFactory(site=walkback.sites.get(code="SYD"))
    Message.objects.bulk_create([_message(person, n) for n in range(3)])
    with connection.cursor() as cursor:  # as a restore with --disable-triggers would leave it
        cursor.execute("DELETE FROM messaging_messagetally")
    assert _tally() != _counted()
    out = StringIO()
    call_command("rebuild_message_tally", stdout=out)
    assert _tally() == _counted() and "tally rebuilt: 1 rows" in out.getvalue()
    assert services.message_tally_rebuild() == 1  # safe to run again


def test_the_api_counts_its_pages_by_the_tally_and_reads_late_pages_from_the_end(
    walkback: Trial, make_staff, api: APIClient
) -> None:
    syd, bne = walkback.sites.get(code="SYD"), walkback.sites.get(code="BNE")
    walker, other, elsewhere = ParticipantFactory(site=syd), ParticipantFactory(site=syd), ParticipantFactory(site=bne)
    walks, others = _session(walker, 1), _session(other, 1)
    Message.objects.bulk_create(
        [_message(walker, n) for n in range(4)]
        + [_message(walker, 10 + n, walks) for n in range(2)]  # only the arm with sessions gets these
        + [_message(other, 20, others)]
        + [_message(elsewhere, 30 + n) for n in range(3)]
    )

    def pages(user) -> tuple[int, list[int]]:  # type: ignore[no-untyped-def]
        api.force_authenticate(user)
        first = api.get("/api/v1/messages/?page_size=3").json()
        seen = [m["id"] for m in first["results"]]
        for number in range(2, (first["count"] + 2) // 3 + 1):
            seen += [m["id"] for m in api.get(f"/api/v1/messages/?page_size=3&page={number}").json()["results"]]
        last = api.get("/api/v1/messages/?page_size=3&page=last").json()["results"]
        assert [m["id"] for m in last] == seen[len(seen) - len(last) :]
        return first["count"], seen

    def listed(**where) -> list[int]:  # type: ignore[no-untyped-def]
        return list(Message.objects.filter(**where).order_by("-planned_at", "-pk").values_list("pk", flat=True))

    count, seen = pages(make_staff("coordinator", sites=["SYD"], username="sees-arms"))
    assert count == 7 and seen == listed(participant__site=syd)
    blinded = make_staff("data_manager", username="dana")
    count, seen = pages(blinded)
    assert count == 7 and seen == listed(session__isnull=True)  # both sites, no session messages
    Unblinding.objects.create(participant=walker, user=blinded, reason="SAE")
    count, seen = pages(blinded)
    assert count == 9 and seen == [pk for pk in listed() if pk not in listed(participant=other, session__isnull=False)]
    api.force_authenticate(blinded)
    one = api.get(f"/api/v1/messages/?participant={walker.pk}").json()
    assert one["count"] == 6 and len(one["results"]) == 6


@pytest.mark.migrations
@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_messages_already_written(walkback: Trial) -> None:
    syd, bne = walkback.sites.get(code="SYD"), walkback.sites.get(code="BNE")
    here, there = ParticipantFactory(site=syd), ParticipantFactory(site=bne)
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("messaging", "0006_message_failed_index")])  # no tally, no triggers
        Message.objects.bulk_create([_message(here, n) for n in range(3)] + [_message(there, 9, _session(there, 1))])
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(leaves)
    assert _tally() == _counted() == Counter({(syd.pk, False): 3, (bne.pk, True): 1})
