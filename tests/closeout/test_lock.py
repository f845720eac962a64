"""The signed database lock: every write path refuses clinical changes, clearly, and nothing changes."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from rest_framework.test import APIClient

from closeout.datalock.services import database_lock, database_unlock, lock_blockers, lock_signature_valid
from closeout.models import DatabaseLock
from followup import services as followup
from followup.models import Occurrence
from messaging.models import Message
from participants import links
from participants import services as journey
from tests.factories import ELIGIBLE
from trial import access
from trial.errors import Conflict, DataLocked, NotAllowed, lock_refusal
from trial.lockguard import GUARDED_TABLES
from trial.models import Trial

RANDOMISED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def randomised(walkback: Trial, enrol, coordinator, sealed_list):  # type: ignore[no-untyped-def]
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = enrol()
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    participant.refresh_from_db()
    return participant


def checksum() -> dict[str, str]:
    """A fingerprint of every clinical table's rows."""
    sums = {}
    with connection.cursor() as cursor:
        for table in GUARDED_TABLES:
            cursor.execute(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")
            sums[table] = cursor.fetchone()[0]
    return sums


def test_only_an_investigator_with_their_password_signs_the_lock(walkback: Trial, investigator, coordinator, password) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotAllowed, match="investigator"):
        database_lock(trial=walkback, user=coordinator, password=password)
    with pytest.raises(NotAllowed, match="password"):
        database_lock(trial=walkback, user=investigator, password="wrong")
    from trial.models import SecurityEvent

    assert SecurityEvent.objects.filter(user=investigator, kind="login_failed", detail__signature="lock").exists()
    lock = database_lock(trial=walkback, user=investigator, password=password)
    walkback.refresh_from_db()
    assert walkback.data_locked_at == lock.locked_at and lock.version == 1
    assert lock.signer_name == "Ivy Investigator" and lock.meaning == "I approve the lock of the WalkBack database"
    assert lock_signature_valid(lock=lock)
    DatabaseLock.objects.filter(pk=lock.pk).update(meaning="Something else")
    lock.refresh_from_db()
    assert not lock_signature_valid(lock=lock)  # the signature is bound to what was signed


def test_open_items_stand_in_the_way_unless_a_note_says_why(walkback: Trial, investigator, randomised, password) -> None:  # type: ignore[no-untyped-def]
    followup.occurrences_advance(now=dt.datetime(2026, 4, 2, 2, 0, tzinfo=dt.UTC))
    assert lock_blockers(trial=walkback).open_questionnaires == 1
    with pytest.raises(Conflict, match="1 questionnaire"):
        database_lock(trial=walkback, user=investigator, password=password)
    lock = database_lock(trial=walkback, user=investigator, password=password, open_items_note="Window closes after the end date")
    assert lock.open_items_note


def test_after_the_lock_every_write_path_refuses_and_nothing_changes(
    walkback: Trial,
    investigator,
    randomised,
    coordinator,
    password,
    api: APIClient,
    client: Client,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    in_window = dt.datetime(2026, 4, 2, 2, 0, tzinfo=dt.UTC)
    followup.occurrences_advance(now=in_window)
    token = links.access_link_issue(participant=randomised)
    occurrence = Occurrence.objects.get(participant=randomised, instrument="monthly", month=1)
    database_lock(trial=walkback, user=investigator, password=password, open_items_note="Test")
    before = checksum()
    site = walkback.sites.get(code="SYD")

    # a direct service call
    with pytest.raises(DataLocked, match="locked"):
        journey.screening_record(site=site, answers=ELIGIBLE, by=coordinator)
    # the API
    api.force_authenticate(coordinator)
    response = api.post("/api/v1/screenings/", {"site": "SYD", "answers": ELIGIBLE}, format="json")
    assert response.status_code == 423 and "locked" in response.json()["detail"]
    # a page
    client.force_login(coordinator)
    from tests.participants.test_pages import _screening_post

    page = client.post("/screening/new/", _screening_post(walkback))
    assert page.status_code == 200 and b"database was locked" in page.content
    # the participant's link: a polite page, and a submission changes nothing
    with time_machine.travel(in_window, tick=False):
        home = client.get(f"/p/{token}/")
        posted = client.post(f"/p/{token}/q/{occurrence.pk}/", {"lbp_any": "no", "new_health_problem": "no"})
    assert b"The study has closed" in home.content and b"The study has closed" in posted.content
    # the background work and the command: windows frozen, no message sent
    with time_machine.travel(in_window + dt.timedelta(days=40), tick=False):
        from followup.tasks import send_due_messages

        send_due_messages.delay()
        call_command("send_due_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert mail.outbox == [] and not Message.objects.filter(status="sent").exists()
    # what bypasses the services: raw SQL meets the database's own guard
    with pytest.raises(DatabaseError) as raw, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE participants_participant SET status = 'withdrawn'")
    assert lock_refusal(raw.value) is not None

    assert checksum() == before


def test_unlock_needs_a_reason_and_a_signature_and_the_next_lock_is_a_new_version(
    walkback: Trial, investigator, password
) -> None:  # type: ignore[no-untyped-def]
    database_lock(trial=walkback, user=investigator, password=password)
    with pytest.raises(NotAllowed):
        database_unlock(trial=walkback, user=investigator, password="wrong", reason="Late data")
    with pytest.raises(Exception, match="why"):
        database_unlock(trial=walkback, user=investigator, password=password, reason=" ")
    first = database_unlock(trial=walkback, user=investigator, password=password, reason="Late questionnaire found on paper")
    assert first.unlocked_at is not None and first.unlock_signature
    walkback.refresh_from_db()
    assert walkback.data_locked_at is None
    second = database_lock(trial=walkback, user=investigator, password=password)
    assert second.version == 2


def test_blinded_roles_see_arms_after_the_lock_as_configured(walkback: Trial, investigator, make_staff, password) -> None:  # type: ignore[no-untyped-def]
    statistician, datamanager = make_staff("statistician"), make_staff("data_manager")
    assert not access.can_see_allocation(investigator, trial=walkback)
    database_lock(trial=walkback, user=investigator, password=password)
    walkback.refresh_from_db()
    fresh = {u.username: type(u).objects.get(pk=u.pk) for u in (investigator, statistician, datamanager)}
    assert access.can_see_allocation(fresh["ivy"], trial=walkback)
    assert access.can_see_allocation(fresh[statistician.username], trial=walkback)
    assert not access.can_see_allocation(fresh[datamanager.username], trial=walkback)
