"""Keys for electronic signatures (the database lock's), kept apart from ``DJANGO_SECRET_KEY``.

A signature is an HMAC-SHA256 of the signed facts, stored with the id of the key that made it, so
rotating ``DJANGO_SECRET_KEY`` never touches it and the signing key itself can rotate:

- ``LOCK_SIGNING_KEYS="2026-01:<base64>,2025-01:<base64>"``: every key that may verify, as
  ``key id:base64 of at least 32 random bytes``; ``LOCK_SIGNING_KEY_ID``: the one that signs now
  (default: the first listed). To rotate, add a new key and make it current; keep the old one
  listed for as long as its signatures must verify. A signature whose key is no longer listed
  verifies as not valid, saying so, rather than as an edited record.
- Unset (development): a key is made once and kept in ``var/lock_signing_key``, like
  ``var/secret_key``. Its id is random, so a new ``var/`` never mistakes an old key for a new one.

This module imports nothing of the project and no models: settings load the keyring with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

LEGACY_KEY_ID = "legacy-secret-key"
"""The key id of signatures made before signing keys existed: an HMAC keyed with the
``DJANGO_SECRET_KEY`` of the time. Migration ``0005_signature_key_ids`` gives it to every signature
already stored, and they are verified the old way, with ``SECRET_KEY`` (or one of
``SECRET_KEY_FALLBACKS``). What that implies: such a signature verifies only while the secret key
it was made with is still configured. Rotating ``DJANGO_SECRET_KEY`` without keeping the old one in
``SECRET_KEY_FALLBACKS`` makes it show as not valid, and the page cannot tell that apart from an
edited record; it says both. New signatures never use this id; the next lock version is signed with
a signing key."""

KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class Verdict:
    valid: bool
    problem: str = ""  # why not, in words for the lock page and API


def parse_keyring(text: str) -> dict[str, bytes]:
    """``"kid1:base64,kid2:base64"`` to ``{kid: key}``; a malformed entry is refused, clearly."""
    keys: dict[str, bytes] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not KEY_ID.fullmatch(key_id) or key_id == LEGACY_KEY_ID:
            raise ImproperlyConfigured(
                f"LOCK_SIGNING_KEYS: {key_id or entry[:10]!r} is not a key id (letters, digits, '.', '_', '-'; up to 32; "
                f"not {LEGACY_KEY_ID!r}), written as 'key id:base64 key'."
            )
        if key_id in keys:
            raise ImproperlyConfigured(f"LOCK_SIGNING_KEYS: key id {key_id!r} is listed twice.")
        try:
            key = base64.b64decode(encoded.strip().replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError) as error:
            raise ImproperlyConfigured(f"LOCK_SIGNING_KEYS: the key of {key_id!r} is not base64.") from error
        if len(key) < MIN_KEY_BYTES:
            raise ImproperlyConfigured(f"LOCK_SIGNING_KEYS: the key of {key_id!r} is shorter than {MIN_KEY_BYTES} bytes.")
        keys[key_id] = key
    return keys


def new_key_entry(key_id: str | None = None) -> str:
    """A fresh ``key id:base64`` entry (``python -c "from trial.signing import new_key_entry as k; print(k('2026-01'))"``)."""
    return f"{key_id or 'local-' + secrets.token_hex(4)}:{base64.b64encode(secrets.token_bytes(MIN_KEY_BYTES)).decode()}"


def load_keyring(*, keys: str, current: str, path: Path) -> tuple[dict[str, bytes], str]:
    """The keyring and the current key id, from the environment's values, else from (or made once
    in) ``path``."""
    if not keys.strip():
        if not path.exists():
            path.write_text(new_key_entry() + "\n")
            path.chmod(0o600)
        keys = path.read_text()
    keyring = parse_keyring(keys)
    if not keyring:
        raise ImproperlyConfigured("LOCK_SIGNING_KEYS holds no key.")
    current = current.strip() or next(iter(keyring))
    if current not in keyring:
        raise ImproperlyConfigured(f"LOCK_SIGNING_KEY_ID {current!r} is not one of LOCK_SIGNING_KEYS ({', '.join(keyring)}).")
    return keyring, current


def _hmac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(message: bytes) -> tuple[str, str]:
    """``(key id, signature)`` with the current signing key."""
    key_id = settings.LOCK_SIGNING_KEY_ID
    return key_id, _hmac(settings.LOCK_SIGNING_KEYS[key_id], message)


FINGERPRINT_MESSAGE = b"walkback.key-fingerprint.v1"


def fingerprint(key: bytes) -> str:
    """A key's fingerprint: names the key without revealing it (an HMAC keyed with it, 128 bits)."""
    return _hmac(key, FINGERPRINT_MESSAGE)[:32]


def secret_key_fingerprint() -> str:
    """Of ``DJANGO_SECRET_KEY``, from which participants' links are derived (participants.links)."""
    return fingerprint(settings.SECRET_KEY.encode())


def lock_key_fingerprints() -> dict[str, str]:
    """Of each lock-signing key configured, by key id."""
    return {key_id: fingerprint(key) for key_id, key in settings.LOCK_SIGNING_KEYS.items()}


def verify(*, key_id: str, message: bytes, signature: str) -> Verdict:
    """Whether ``signature`` is the HMAC of ``message`` with the key ``key_id`` names. An unknown key
    id is not valid, with the reason; it never raises."""
    changed = "the signed record was changed"
    if key_id == LEGACY_KEY_ID:
        secrets_ = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        if any(hmac.compare_digest(_hmac(s.encode(), message), signature) for s in secrets_):
            return Verdict(True)
        return Verdict(False, f"{changed}, or it is an old-scheme signature and DJANGO_SECRET_KEY was rotated since")
    key = settings.LOCK_SIGNING_KEYS.get(key_id)
    if key is None:
        return Verdict(False, f"signed with key {key_id or '(none)'!r}, which this server does not hold (LOCK_SIGNING_KEYS)")
    if hmac.compare_digest(_hmac(key, message), signature):
        return Verdict(True)
    return Verdict(False, changed)
