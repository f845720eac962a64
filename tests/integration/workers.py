"""Celery workers the integration tests start as ``docker/entrypoint.sh`` runs them, each in its own
process group (the pool's children die with it), and stop at the end whatever happened."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def processes_stop(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each process still running, then SIGKILL to the group of any that has not left
    within 20 s."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def celery_workers(tmp_path: Path, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """``start()`` runs one more worker with ``env``; ``dump()`` is the tail of every worker's log.
    This process sends its tasks through the broker meanwhile (not in process)."""
    from trial.celery import app

    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    app.conf.task_always_eager = False

    def start() -> subprocess.Popen[bytes]:
        log = tmp_path / f"worker-{len(procs) + 1}.log"
        proc = subprocess.Popen(
            ["bash", str(ROOT / "docker" / "entrypoint.sh"), "worker"],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        logs.append(log)
        return proc

    def dump() -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)

    try:
        yield {"start": start, "dump": dump}
    finally:
        app.conf.task_always_eager = True
        processes_stop(procs)
