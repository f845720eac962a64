"""Backup and restore as one unit (closeout.backups): the archive restores into a new database with
its triggers, lock signature and participants' links intact, and nothing restores with other keys,
into a database with tables, or from an archive that does not match its manifest."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.test import override_settings

from closeout.backups import DUMP, FORMAT, FORMAT_VERSION, MANIFEST
from closeout.datalock.services import database_lock
from closeout.models import Release, ReleaseStatus, ReleaseVariant
from participants.links import access_link_issue
from trial import signing
from trial.checks import KEYS_MISMATCH, keys_match_data
from trial.keys import key_fingerprints_adopt
from trial.models import Trial

ROOT = Path(__file__).resolve().parents[2]
OTHER_SECRET = "another-secret-key-" + "y" * 40


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _url(database: str) -> str:
    db = connection.settings_dict
    host = quote(db["HOST"], safe="") if db["HOST"].startswith("/") else f"{db['HOST']}:{db.get('PORT') or 5432}"
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}/{database}"


def _keys_env() -> dict[str, str]:
    """This test process's keys, as the environment a restored server is given (kept apart from the archive)."""
    ring = ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in settings.LOCK_SIGNING_KEYS.items())
    return {
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "LOCK_SIGNING_KEYS": ring,
        "LOCK_SIGNING_KEY_ID": settings.LOCK_SIGNING_KEY_ID,
    }


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def new_database() -> Iterator[str]:
    name = f"restore_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _refused(conn: psycopg.Connection[Any], sql: str) -> str:
    """The error ``sql`` raises (rolled back), or '' when it was allowed."""
    try:
        with conn.transaction():
            conn.execute(sql)
    except psycopg.Error as error:
        return str(error)
    return ""


VERIFY = """
import json, os
from django.core.management import call_command
call_command("check")  # the system checks, the keys' among them, as the web process's start runs them
from closeout.datalock.services import lock_current, lock_signature_check
from participants.links import access_link_participant, access_link_tokens
from participants.models import Participant
from trial.models import Trial
tokens = json.loads(os.environ["RESTORE_TEST_TOKENS"])
trial = Trial.objects.get()
owners = {token: getattr(access_link_participant(token=token), "study_id", None) for token in tokens}
participants = list(Participant.objects.filter(study_id__in=tokens.values()))
derived = {p.study_id: t for p, t in ((p, access_link_tokens(participants=[p])[p.pk]) for p in participants)}
print(json.dumps({"lock": lock_signature_check(lock=lock_current(trial=trial)).valid, "owners": owners, "derived": derived}))
"""


@pytest.mark.migrations  # a few restores' worth of subprocesses and a flushed database: CI runs it once
@pytest.mark.django_db(transaction=True)
def test_a_backup_restores_into_a_new_database_with_triggers_signature_and_links_intact(
    walkback: Trial, enrol: Any, investigator: Any, password: str, tmp_path: Path, new_database: str
) -> None:
    participants = [enrol(site="SYD"), enrol(site="NCL")]
    tokens = {access_link_issue(participant=p): p.study_id for p in participants}
    database_lock(trial=walkback, user=investigator, password=password, open_items_note="Kept open for the test")
    lock = walkback.locks.get()
    releases = Path(settings.VAR_DIR) / "releases"
    releases.mkdir(parents=True, exist_ok=True)
    (releases / "walkback-release-001-blinded.zip").write_bytes(b"release bytes")
    Release.objects.create(
        trial=walkback, lock=lock, number=1, variant=ReleaseVariant.BLINDED, created_by=investigator,
        status=ReleaseStatus.READY, zip_name="walkback-release-001-blinded.zip",
    )  # fmt: skip

    archive = tmp_path / "walkback.tar"
    call_command("backup", output=archive, stdout=io.StringIO())
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile(MANIFEST))  # type: ignore[arg-type]
        names = set(tar.getnames())
    assert names == {MANIFEST, DUMP, "releases/walkback-release-001-blinded.zip"}
    (trial,) = manifest["trials"]
    assert (trial["code"], trial["participants"], trial["data_locked_at"] is not None) == ("walkback", 2, True)
    latest = max(name for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations if app == "trial")
    assert manifest["database"]["migrations"]["trial"] == latest
    assert manifest["key_fingerprints"]["secret_key"] == signing.secret_key_fingerprint()
    assert settings.SECRET_KEY not in archive.read_bytes().decode("latin-1")
    assert manifest["audit_chain_heads"]["trial_siteevent"]  # the chain heads, to keep outside the database

    restored_var = tmp_path / "restored-var"
    env = {**os.environ, **_keys_env(), "DATABASE_URL": _url(new_database), "WALKBACK_VAR_DIR": str(restored_var)}
    result = _manage("restore", str(archive), env=env)
    assert result.returncode == 0, result.stderr
    assert "walkback: 2 participants (as in the manifest)" in result.stdout
    assert (restored_var / "releases" / "walkback-release-001-blinded.zip").read_bytes() == b"release bytes"

    verified = _manage("shell", "-c", VERIFY, env={**env, "RESTORE_TEST_TOKENS": json.dumps(tokens)})
    assert verified.returncode == 0, verified.stderr
    found = json.loads(verified.stdout.strip().splitlines()[-1])
    assert found["lock"] is True
    assert found["owners"] == tokens  # every link already sent opens the same participant's page
    assert found["derived"] == {study_id: token for token, study_id in tokens.items()}  # and is not reissued

    heads = tmp_path / "manifest.json"
    heads.write_text(json.dumps(manifest))
    chain = _manage("verify_audit", "--heads", str(heads), "--chains-only", env=env)
    assert chain.returncode == 0, chain.stdout + chain.stderr  # the restored audit chain holds the exported heads

    site_events = apps.get_model("trial", "SiteEvent")._meta.db_table
    with psycopg.connect(_url(new_database).replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        before = conn.execute(f"SELECT count(*) FROM {site_events}").fetchone()[0]  # type: ignore[index]
        conn.execute("UPDATE trial_site SET name = name || ' (restored)' WHERE code = 'SYD'")
        assert conn.execute(f"SELECT count(*) FROM {site_events}").fetchone()[0] == before + 1  # type: ignore[index]
        assert "Cannot update or delete" in _refused(conn, f"UPDATE {site_events} SET name = 'x'")
        assert "Cannot update or delete" in _refused(conn, "UPDATE trial_databaselockevent SET meaning = 'x'")
        assert "database is locked" in _refused(conn, "UPDATE participants_participant SET study_id = study_id")

    wrong_key = _manage("check", env={**env, "DJANGO_SECRET_KEY": OTHER_SECRET})
    assert wrong_key.returncode != 0 and KEYS_MISMATCH in wrong_key.stderr


# --- Refusals, without a database server's round trip --------------------------------------------


def _archive(path: Path, *, key_fingerprints: dict[str, Any], tamper: bool = False) -> Path:
    dump = b"not really a dump"
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": "2026-03-02T00:00:00+00:00",
        "database": {"server_version": "16.0", "server_version_num": 160000, "pg_dump_major": 16, "migrations": {}},
        "trials": [],
        "key_fingerprints": key_fingerprints,
        "members": [{"name": DUMP, "sha256": hashlib.sha256(dump).hexdigest(), "bytes": len(dump)}],
    }
    with tarfile.open(path, "w") as tar:
        for name, data in ((MANIFEST, json.dumps(manifest).encode()), (DUMP, dump + (b"!" if tamper else b""))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _these_keys() -> dict[str, Any]:
    return {"secret_key": signing.secret_key_fingerprint(), "lock_signing_keys": signing.lock_key_fingerprints()}


@pytest.mark.django_db
def test_restore_refuses_an_archive_that_does_not_match_its_manifest(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"database.dump: checksum or size differs from the manifest.*Nothing was restored"):
        call_command("restore", str(_archive(tmp_path / "b.tar", key_fingerprints=_these_keys(), tamper=True)))
    (tmp_path / "junk.tar").write_bytes(b"junk")
    with pytest.raises(CommandError, match="not a readable backup archive"):
        call_command("restore", str(tmp_path / "junk.tar"))


@pytest.mark.django_db
def test_restore_refuses_other_keys_unless_forced_and_never_a_database_with_tables(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "b.tar", key_fingerprints=_these_keys())
    key_id = settings.LOCK_SIGNING_KEY_ID
    with (
        override_settings(SECRET_KEY=OTHER_SECRET),
        pytest.raises(CommandError, match=r"DJANGO_SECRET_KEY .* not the key the backup was made with"),
    ):
        call_command("restore", str(archive))
    with (
        override_settings(LOCK_SIGNING_KEYS={"other": b"o" * 32}, LOCK_SIGNING_KEY_ID="other"),
        pytest.raises(CommandError, match=f"does not hold key '{key_id}'"),
    ):
        call_command("restore", str(archive))
    # Forced past the keys, the test database's tables still refuse it.
    with override_settings(SECRET_KEY=OTHER_SECRET), pytest.raises(CommandError, match=r"is not empty .*Nothing was restored"):
        call_command("restore", str(archive), force_keys=True)


@pytest.mark.django_db
def test_the_server_refuses_to_start_with_a_key_the_data_was_not_made_with(
    walkback: Trial, enrol: Any, investigator: Any, password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "close_all", lambda: None)  # the worker's start closes them; here, the test's own
    access_link_issue(participant=enrol())
    database_lock(trial=walkback, user=investigator, password=password, open_items_note="Kept open for the test")
    assert keys_match_data() == []

    with override_settings(SECRET_KEY=OTHER_SECRET):
        (error,) = keys_match_data()
        assert error.id == KEYS_MISMATCH and "participants' links" in error.msg
        from trial.celery import _refuse_keys_that_do_not_match_the_data

        with pytest.raises(SystemExit, match="Refusing to start"):
            _refuse_keys_that_do_not_match_the_data()
    same_id = {settings.LOCK_SIGNING_KEY_ID: b"z" * 32}
    with override_settings(LOCK_SIGNING_KEYS=same_id):
        (error,) = keys_match_data()
        assert "is not the key of that id" in error.msg
    with override_settings(LOCK_SIGNING_KEYS={"new": b"n" * 32}, LOCK_SIGNING_KEY_ID="new"):
        (error,) = keys_match_data()
        assert "holds none of the keys" in error.msg
        # Changed on purpose: adopting the new keys is recorded, and the server starts.
        key_fingerprints_adopt()
        assert keys_match_data() == []


def test_tools_of_another_major_than_the_server_are_refused_naming_the_versions() -> None:
    from closeout.backups import BackupError, pg_tool

    with pytest.raises(BackupError, match=r"No pg_dump of PostgreSQL 99, the server's version .*postgresql-client-99"):
        pg_tool("pg_dump", server_major=99)
