"""Which keys this database's data was made with, and whether the server holds them.

Participants' links derive from ``DJANGO_SECRET_KEY``; lock signatures from the lock-signing keyring
(``trial.signing``). Neither key is in the database, so a server started with other keys (after a
restore, or a lost ``var/``) would silently replace every link already e-mailed and show every
signature as not valid. The first time a key signs, its fingerprint is recorded here; the system
check ``trial.E010`` (``trial.checks``) refuses to start a server whose keys do not match.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from trial import signing
from trial.models import KeyFingerprint, KeyPurpose

SECRET_KEY_SETTING = "DJANGO_SECRET_KEY (or var/secret_key)"
LOCK_KEYS_SETTING = "LOCK_SIGNING_KEYS (or var/lock_signing_key)"


@dataclass(frozen=True)
class Recorded:
    purpose: str
    key_id: str
    fingerprint: str


def key_fingerprint_record(*, purpose: str, key_id: str = "") -> None:
    """Record that the configured key for ``purpose`` (and ``key_id``) signs data; a no-op once
    recorded. One query; never overwrites (a different key is a mismatch, not a new record)."""
    value = signing.secret_key_fingerprint() if purpose == KeyPurpose.LINKS else signing.lock_key_fingerprints()[key_id]
    KeyFingerprint.objects.bulk_create(
        [KeyFingerprint(purpose=purpose, key_id=key_id, fingerprint=value)],
        ignore_conflicts=True,
    )


def key_fingerprints_recorded() -> list[Recorded]:
    return [
        Recorded(*row)
        for row in KeyFingerprint.objects.order_by("purpose", "key_id").values_list("purpose", "key_id", "fingerprint")
    ]


def key_fingerprints_configured() -> dict[str, object]:
    """The configured keys' fingerprints, as a backup manifest keeps them (never the keys)."""
    return {
        "secret_key": signing.secret_key_fingerprint(),
        "lock_signing_key_id": settings.LOCK_SIGNING_KEY_ID,
        "lock_signing_keys": signing.lock_key_fingerprints(),
    }


def key_mismatches(recorded: list[Recorded]) -> list[str]:
    """What the configured keys fail to match among the fingerprints ``recorded``, in words; empty
    when every recorded key is held. A retired lock key (its id no longer configured while another
    recorded one is) is not a mismatch: its signatures show as made with a key no longer held."""
    problems = []
    links = [r for r in recorded if r.purpose == KeyPurpose.LINKS]
    if links and links[0].fingerprint != signing.secret_key_fingerprint():
        problems.append(
            f"{SECRET_KEY_SETTING} is not the key this database's participants' links were issued with "
            f"(fingerprint {links[0].fingerprint[:12]}..., configured {signing.secret_key_fingerprint()[:12]}...): "
            "every link already sent would stop working and be replaced."
        )
    held = signing.lock_key_fingerprints()
    lock = [r for r in recorded if r.purpose == KeyPurpose.LOCK_SIGNING]
    for r in lock:
        if r.key_id in held and held[r.key_id] != r.fingerprint:
            problems.append(
                f"{LOCK_KEYS_SETTING}: key {r.key_id!r} is not the key of that id this database's lock signatures were made with "
                f"(fingerprint {r.fingerprint[:12]}..., configured {held[r.key_id][:12]}...)."
            )
    if lock and not any(r.key_id in held for r in lock):
        problems.append(
            f"{LOCK_KEYS_SETTING} holds none of the keys this database's lock signatures were made with "
            f"({', '.join(r.key_id for r in lock)}): every signature would show as not valid."
        )
    return problems


def manifest_key_mismatches(archived: dict[str, object]) -> list[str]:
    """What the configured keys fail to match among those a backup was made with (its manifest's
    ``key_fingerprints``)."""
    problems = []
    if archived.get("secret_key") != signing.secret_key_fingerprint():
        problems.append(f"{SECRET_KEY_SETTING} is not the key the backup was made with: participants' links would not resolve.")
    held = signing.lock_key_fingerprints()
    archived_lock = archived.get("lock_signing_keys") or {}
    assert isinstance(archived_lock, dict)
    for key_id, value in archived_lock.items():
        if key_id not in held:
            problems.append(f"{LOCK_KEYS_SETTING} does not hold key {key_id!r}, which the backup was made with.")
        elif held[key_id] != value:
            problems.append(f"{LOCK_KEYS_SETTING}: key {key_id!r} is not the key of that id the backup was made with.")
    return problems


@transaction.atomic
def key_fingerprints_adopt() -> list[Recorded]:
    """Make the configured keys the recorded ones (after a deliberate key change, e.g. a restore
    with ``--force-keys``): links are reissued when next sent, older lock signatures show as made
    with a key not held. The change is in the fingerprints' history (pghistory)."""
    KeyFingerprint.objects.filter(purpose=KeyPurpose.LINKS).update(fingerprint=signing.secret_key_fingerprint())
    held = signing.lock_key_fingerprints()
    for row in KeyFingerprint.objects.filter(purpose=KeyPurpose.LOCK_SIGNING, key_id__in=list(held)):
        if row.fingerprint != held[row.key_id]:
            KeyFingerprint.objects.filter(pk=row.pk).update(fingerprint=held[row.key_id])
    current = settings.LOCK_SIGNING_KEY_ID
    if KeyFingerprint.objects.filter(purpose=KeyPurpose.LOCK_SIGNING).exists():
        key_fingerprint_record(purpose=KeyPurpose.LOCK_SIGNING, key_id=current)
    return key_fingerprints_recorded()
