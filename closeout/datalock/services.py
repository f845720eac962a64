"""Locking the database. The lock takes the write guard's advisory lock exclusively, so it waits for
writes in flight and every later write sees it (``trial.guard``); a trigger in the database
refuses what bypasses the services. An investigator signs it with their password; unlocking needs
a reason and a new signature, and the next lock is a new version."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from closeout.models import DatabaseLock, DataQuery, QueryStatus
from followup.models import Occurrence, OccurrenceStatus
from safety.models import AdverseEvent, AEStatus
from trial import access, signin, signing
from trial.access import Perm
from trial.audit import audit_context, security_event_record
from trial.errors import ApplicationError, Conflict, NotAllowed
from trial.guard import hold_exclusive
from trial.keys import key_fingerprint_record
from trial.models import KeyPurpose, SecurityEventKind, Trial

DEFAULT_MEANING = "I approve the lock of the {trial} database"


def _sign(*parts: object) -> tuple[str, str]:
    """``(key id, HMAC-SHA256)`` of the signed facts with the current signing key (trial.signing,
    not the server's secret key): a later edit of any of them no longer matches the stored
    signature, and the key id says which key verifies it. The key's fingerprint is recorded
    (trial.keys), so a server without it refuses to start."""
    key_id, signature = signing.sign(_message(*parts))
    key_fingerprint_record(purpose=KeyPurpose.LOCK_SIGNING, key_id=key_id)
    return key_id, signature


def _message(*parts: object) -> bytes:
    return "|".join(str(p) for p in parts).encode()


def lock_signature_check(*, lock: DatabaseLock) -> signing.Verdict:
    """Whether the lock's signature matches what was signed, with the key its key id names; if not,
    why (an edited record, or a key this server no longer holds). Never raises."""
    message = _message(lock.trial_id, lock.version, lock.locked_by_id, lock.signer_name, lock.locked_at.isoformat(), lock.meaning)
    return signing.verify(key_id=lock.signature_key_id, message=message, signature=lock.signature)


def lock_signature_valid(*, lock: DatabaseLock) -> bool:
    return lock_signature_check(lock=lock).valid


def unlock_signature_check(*, lock: DatabaseLock) -> signing.Verdict:
    """The same for the unlock's signature (only once unlocked)."""
    if lock.unlocked_at is None:
        return signing.Verdict(False, "not unlocked")
    message = _message(
        lock.trial_id,
        lock.version,
        lock.unlocked_by_id,
        lock.unlock_signer_name,
        lock.unlocked_at.isoformat(),
        "unlock",
        lock.unlock_reason,
    )
    return signing.verify(key_id=lock.unlock_signature_key_id, message=message, signature=lock.unlock_signature)


@dataclass(frozen=True)
class Blockers:
    open_queries: int
    pending_adverse_events: int
    open_questionnaires: int

    @property
    def any(self) -> bool:
        return bool(self.open_queries or self.pending_adverse_events or self.open_questionnaires)

    def describe(self) -> list[str]:
        items = []
        if self.open_queries:
            items.append(f"{self.open_queries} open data quer{'y' if self.open_queries == 1 else 'ies'}")
        if self.pending_adverse_events:
            items.append(f"{self.pending_adverse_events} adverse-event report(s) not reviewed")
        if self.open_questionnaires:
            items.append(f"{self.open_questionnaires} questionnaire(s) still open")
        return items


def lock_blockers(*, trial: Trial) -> Blockers:
    """What stands in the way of the lock."""
    return Blockers(
        open_queries=DataQuery.objects.filter(trial=trial).exclude(status=QueryStatus.CLOSED).count(),
        pending_adverse_events=AdverseEvent.objects.filter(participant__site__trial=trial, status=AEStatus.PENDING).count(),
        open_questionnaires=Occurrence.objects.filter(participant__site__trial=trial, status=OccurrenceStatus.OPEN).count(),
    )


def _check_signer(*, user: Any, password: str, trial: Trial, what: str) -> str:
    if not access.has_perm(user, Perm.LOCK_DATABASE, trial=trial):
        raise NotAllowed(f"Only an investigator may sign the {what}.")
    try:  # throttled: after a few wrong passwords the signature is refused (429) for a while
        signin.password_confirm(
            user=user, password=password, purpose="lock-signature", message="The password is not right; nothing was signed."
        )
    except NotAllowed:
        security_event_record(kind=SecurityEventKind.LOGIN_FAILED, user=user, detail={"signature": what})
        raise
    return user.get_full_name() or user.get_username()


def database_lock(
    *,
    trial: Trial,
    user: Any,
    password: str,
    meaning: str = "",
    open_items_note: str = "",
    now: dt.datetime | None = None,
) -> DatabaseLock:
    """Lock the database with the investigator's electronic signature. Refused while queries,
    adverse-event reports or questionnaires are open, unless a note says why they stay open.

    The signature is checked first, outside the lock's transaction, so a failed attempt stays
    in the audit trail."""
    signer = _check_signer(user=user, password=password, trial=trial, what="lock")
    return _lock(trial=trial, user=user, signer=signer, meaning=meaning, open_items_note=open_items_note, now=now)


@transaction.atomic
def _lock(*, trial: Trial, user: Any, signer: str, meaning: str, open_items_note: str, now: dt.datetime | None) -> DatabaseLock:
    hold_exclusive(trial=trial)  # writes in flight finish first; later ones wait, then see the lock
    trial = Trial.objects.select_for_update().get(pk=trial.pk)
    if trial.data_locked_at is not None:
        raise Conflict(f"The {trial.name} database is already locked.")
    blockers = lock_blockers(trial=trial)
    if blockers.any and not open_items_note.strip():
        raise Conflict(
            "These stand in the way of the lock: " + "; ".join(blockers.describe()) + ". Clear them, or say why they stay open.",
            errors={"open_items_note": blockers.describe()},
        )
    now = now or timezone.now()
    meaning = meaning.strip() or DEFAULT_MEANING.format(trial=trial.name)
    version = (DatabaseLock.objects.filter(trial=trial).order_by("-version").values_list("version", flat=True).first() or 0) + 1
    key_id, signature = _sign(trial.pk, version, user.pk, signer, now.isoformat(), meaning[:300])
    with audit_context(reason=f"Database lock v{version}: {meaning}"):
        lock = DatabaseLock.objects.create(
            trial=trial,
            version=version,
            locked_at=now,
            locked_by=user,
            signer_name=signer,
            meaning=meaning[:300],
            signature=signature,
            signature_key_id=key_id,
            open_items_note=open_items_note.strip()[:500],
        )
        trial.data_locked_at = now
        trial.save(update_fields=["data_locked_at", "updated_at"])
    return lock


def database_unlock(*, trial: Trial, user: Any, password: str, reason: str, now: dt.datetime | None = None) -> DatabaseLock:
    """Unlock, with a reason and a new signature. The lock record keeps both signatures."""
    signer = _check_signer(user=user, password=password, trial=trial, what="unlock")
    return _unlock(trial=trial, user=user, signer=signer, reason=reason, now=now)


@transaction.atomic
def _unlock(*, trial: Trial, user: Any, signer: str, reason: str, now: dt.datetime | None) -> DatabaseLock:
    if not reason.strip():
        raise ApplicationError("Say why the database is unlocked.", errors={"reason": ["Required."]})
    trial = Trial.objects.select_for_update().get(pk=trial.pk)
    lock = DatabaseLock.objects.select_for_update().filter(trial=trial, unlocked_at__isnull=True).first()
    if lock is None or trial.data_locked_at is None:
        raise Conflict(f"The {trial.name} database is not locked.")
    now = now or timezone.now()
    with audit_context(reason=f"Database unlocked (lock v{lock.version}): {reason.strip()}"):
        lock.unlocked_at = now
        lock.unlocked_by = user
        lock.unlock_signer_name = signer
        lock.unlock_reason = reason.strip()[:500]
        lock.unlock_signature_key_id, lock.unlock_signature = _sign(
            trial.pk, lock.version, user.pk, signer, now.isoformat(), "unlock", lock.unlock_reason
        )
        lock.save()
        trial.data_locked_at = None
        trial.save(update_fields=["data_locked_at", "updated_at"])
    return lock


def lock_current(*, trial: Trial) -> DatabaseLock | None:
    return DatabaseLock.objects.filter(trial=trial, unlocked_at__isnull=True).select_related("locked_by").first()
