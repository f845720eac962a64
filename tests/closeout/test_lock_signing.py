"""Lock signatures have their own keys, by key id (trial.signing): rotating DJANGO_SECRET_KEY or the
signing key never turns a past signature invalid; a key the server no longer holds shows as not
valid, saying why, and never as an error; signatures of the old scheme still verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from closeout.datalock.services import (
    database_lock,
    database_unlock,
    lock_signature_check,
    lock_signature_valid,
    unlock_signature_check,
)
from closeout.models import DatabaseLock
from trial import signing
from trial.models import Trial

OLD_KEY, NEW_KEY = b"o" * 32, b"n" * 32


def reloaded(lock: DatabaseLock) -> DatabaseLock:
    return DatabaseLock.objects.get(pk=lock.pk)


def test_a_signature_outlives_a_new_django_secret_key(walkback: Trial, investigator: Any, password: str) -> None:
    lock = database_lock(trial=walkback, user=investigator, password=password)
    assert lock.signature_key_id == settings.LOCK_SIGNING_KEY_ID != signing.LEGACY_KEY_ID
    unlocked = database_unlock(trial=walkback, user=investigator, password=password, reason="Late data")
    with override_settings(SECRET_KEY="a-brand-new-secret-key-" + "x" * 40):
        assert lock_signature_valid(lock=reloaded(lock))
        assert unlock_signature_check(lock=reloaded(unlocked)).valid
        assert reloaded(unlocked).unlock_signature_key_id == settings.LOCK_SIGNING_KEY_ID


def test_the_signing_key_rotates_and_old_signatures_verify_with_their_key_id(
    walkback: Trial, investigator: Any, password: str
) -> None:
    with override_settings(LOCK_SIGNING_KEYS={"2025": OLD_KEY}, LOCK_SIGNING_KEY_ID="2025"):
        first = database_lock(trial=walkback, user=investigator, password=password)
    assert first.signature_key_id == "2025"
    with override_settings(LOCK_SIGNING_KEYS={"2026": NEW_KEY, "2025": OLD_KEY}, LOCK_SIGNING_KEY_ID="2026"):
        assert lock_signature_valid(lock=reloaded(first))
        unlocked = database_unlock(trial=walkback, user=investigator, password=password, reason="Late data")
        second = database_lock(trial=walkback, user=investigator, password=password)
        assert (unlocked.signature_key_id, unlocked.unlock_signature_key_id, second.signature_key_id) == ("2025", "2026", "2026")
        assert lock_signature_valid(lock=reloaded(first)) and unlock_signature_check(lock=reloaded(first)).valid
        assert lock_signature_valid(lock=reloaded(second))
        DatabaseLock.objects.filter(pk=second.pk).update(meaning="Something else")
        assert lock_signature_check(lock=reloaded(second)).problem == "the signed record was changed"
    with override_settings(LOCK_SIGNING_KEYS={"2026": NEW_KEY}, LOCK_SIGNING_KEY_ID="2026"):  # 2025 retired
        verdict = lock_signature_check(lock=reloaded(first))
        assert not verdict.valid and "'2025'" in verdict.problem and "does not hold" in verdict.problem


def test_an_unknown_key_id_is_not_valid_with_the_reason_on_the_page_and_the_api(
    client: Client, walkback: Trial, investigator: Any, password: str
) -> None:
    lock = database_lock(trial=walkback, user=investigator, password=password)
    DatabaseLock.objects.filter(pk=lock.pk).update(signature_key_id="gone-2019")
    assert lock_signature_check(lock=reloaded(lock)) == signing.Verdict(
        False, "signed with key 'gone-2019', which this server does not hold (LOCK_SIGNING_KEYS)"
    )

    client.force_login(investigator)
    page = client.get(reverse("lock"))
    assert page.status_code == 200
    assert "Not valid: signed with key &#x27;gone-2019&#x27;, which this server does not hold" in page.content.decode()

    api = APIClient()
    api.force_authenticate(investigator)
    response = api.get("/api/v1/lock/")
    assert response.status_code == 200
    body = response.json()
    assert body["signature_valid"] is False and "gone-2019" in body["signature_problem"]


def _legacy(message_parts: tuple[object, ...], secret: str) -> str:
    message = "|".join(str(p) for p in message_parts).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_a_signature_of_the_old_scheme_verifies_with_the_secret_key_it_was_made_with(
    walkback: Trial, investigator: Any, password: str
) -> None:
    """What migration 0005 leaves: key id 'legacy-secret-key', an HMAC keyed with DJANGO_SECRET_KEY."""
    lock = database_lock(trial=walkback, user=investigator, password=password)
    parts = (lock.trial_id, lock.version, lock.locked_by_id, lock.signer_name, lock.locked_at.isoformat(), lock.meaning)
    DatabaseLock.objects.filter(pk=lock.pk).update(
        signature_key_id=signing.LEGACY_KEY_ID, signature=_legacy(parts, settings.SECRET_KEY)
    )
    assert lock_signature_valid(lock=reloaded(lock))
    old_secret = settings.SECRET_KEY
    with override_settings(SECRET_KEY="rotated-" + "y" * 50):
        verdict = lock_signature_check(lock=reloaded(lock))
        assert not verdict.valid and "DJANGO_SECRET_KEY was rotated" in verdict.problem
    with override_settings(SECRET_KEY="rotated-" + "y" * 50, SECRET_KEY_FALLBACKS=[old_secret]):
        assert lock_signature_valid(lock=reloaded(lock))


# --- The keyring from the environment -------------------------------------------------------------


def entry(key_id: str, key: bytes) -> str:
    return f"{key_id}:{base64.b64encode(key).decode()}"


def test_the_keyring_is_read_from_the_environment(tmp_path: Path) -> None:
    keys = f"{entry('2026', NEW_KEY)}, {entry('2025', OLD_KEY)}"
    assert signing.load_keyring(keys=keys, current="", path=tmp_path / "k") == ({"2026": NEW_KEY, "2025": OLD_KEY}, "2026")
    assert signing.load_keyring(keys=keys, current="2025", path=tmp_path / "k")[1] == "2025"
    assert not (tmp_path / "k").exists()  # the environment's keys: nothing written
    urlsafe = "k1:" + base64.urlsafe_b64encode(b"\xfb" * 32).decode()
    assert signing.parse_keyring(urlsafe) == {"k1": b"\xfb" * 32}


@pytest.mark.parametrize(
    ("keys", "current", "message"),
    [
        ("2026:not base64!", "", "not base64"),
        ("2026:" + base64.b64encode(b"short").decode(), "", "shorter than 32 bytes"),
        (entry("legacy-secret-key", NEW_KEY), "", "not a key id"),
        (base64.b64encode(NEW_KEY).decode(), "", "not a key id"),
        (f"{entry('a', NEW_KEY)},{entry('a', OLD_KEY)}", "", "listed twice"),
        (entry("2026", NEW_KEY), "2027", "LOCK_SIGNING_KEY_ID '2027' is not one of"),
        (" , ", "", "holds no key"),
    ],
)
def test_a_malformed_keyring_is_refused_clearly(tmp_path: Path, keys: str, current: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        signing.load_keyring(keys=keys, current=current, path=tmp_path / "k")


def test_in_development_a_key_is_made_once_under_var(tmp_path: Path) -> None:
    path = tmp_path / "lock_signing_key"
    keyring, current = signing.load_keyring(keys="", current="", path=path)
    assert current.startswith("local-") and len(keyring[current]) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert signing.load_keyring(keys="", current="", path=path) == (keyring, current)  # kept, not made again
