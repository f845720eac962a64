#!/usr/bin/env python3
"""The two commands of the README, for a machine with nothing but Python 3.11+.

    python3 dev.py start   install, set up the database and demo data, run web + worker + beat
    python3 dev.py test    install and run the whole test suite

Both create ``.venv/`` and install the project into it (again only when pyproject.toml changes).
With ``DATABASE_URL`` unset they use an embedded PostgreSQL under ``var/``; with
``CELERY_BROKER_URL`` unset, a filesystem broker under ``var/``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PYTHON = BIN / "python"
STAMP = VENV / ".installed-from"


def log(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def ensure_environment() -> None:
    if not PYTHON.exists():
        log(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    started = time.monotonic()
    log("installing the project and its dependencies (first run takes a minute)")
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev,embedded]"], check=True, cwd=ROOT)
    STAMP.write_text(digest)
    log(f"installed in {time.monotonic() - started:.0f} s")


def in_environment() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def manage(*args: str) -> None:
    subprocess.run([str(PYTHON), str(ROOT / "manage.py"), *args], check=True, cwd=ROOT)


def ensure_database() -> None:
    """With DATABASE_URL unset, start the embedded PostgreSQL and export its URL to our children.
    This process holds the server; it stops when we exit."""
    sys.path.insert(0, str(ROOT))
    from trial.embedded import default_var_dir, ensure_database_url

    if ensure_database_url():
        log(f"embedded PostgreSQL running, data in {default_var_dir() / 'pgdata'}")


def start() -> int:
    """Run inside .venv: database, migrations, demo data, then web, worker and beat until Ctrl-C."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trial.settings")
    var_dir = Path(os.environ.get("WALKBACK_VAR_DIR") or ROOT / "var")
    ensure_database()
    manage("migrate", "--noinput", "-v", "0")
    manage("collectstatic", "--noinput", "-v", "0")
    manage("demo")

    port = os.environ.get("PORT", "8000")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "BIND": f"127.0.0.1:{port}"}
    env.setdefault("WEB_CONCURRENCY", "2")
    env.setdefault("CELERY_CONCURRENCY", "2")
    entrypoint = ROOT / "docker" / "entrypoint.sh"
    processes = {
        name: subprocess.Popen(["bash", str(entrypoint), name], cwd=ROOT, env=env, start_new_session=True)
        for name in ("web", "worker", "beat")
    }
    log(f"web, worker and beat started: open http://127.0.0.1:{port}/  (Ctrl-C stops everything)")
    log(f"e-mail is written to {var_dir / 'messages'}")

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, proc in processes.items():
            if proc.poll() is not None:
                log(f"{name} exited with status {proc.returncode}; stopping the rest")
                stopping, exit_code = True, 1
        time.sleep(0.5)
    log("stopping web, worker and beat")
    for proc in processes.values():
        if proc.poll() is None:
            proc.terminate()  # each main process shuts down its own children (warm shutdown)
    deadline = time.monotonic() + 20
    for proc in processes.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log("stopped")
    return exit_code


def test(args: list[str]) -> int:
    """The suite, in parallel (a test database per xdist worker; the integration tests share one worker).
    Arguments given after ``test`` come later and win, e.g. ``-n 0`` for one process."""
    ensure_database()
    return subprocess.run([str(PYTHON), "-m", "pytest", "-n", "auto", *args], cwd=ROOT).returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"start", "test", "install"}:
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    if not in_environment():
        ensure_environment()
        if command == "install":
            return 0
        os.execv(str(PYTHON), [str(PYTHON), __file__, command, *rest])  # noqa: S606
    if command == "start":
        return start()
    if command == "test":
        return test(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
