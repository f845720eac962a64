#!/usr/bin/env python3
"""The two commands of the README, for a machine with nothing but Python 3.11+.

    python3 dev.py start   install, set up the database and demo data, run web + worker + beat
    python3 dev.py test    install and run the whole test suite
    python3 dev.py install install only
    python3 dev.py lock    re-resolve requirements/*.txt from pyproject.toml (``--upgrade`` or
                           ``--upgrade-package NAME`` to move pins; otherwise pins are kept)

Both create ``.venv/`` and install into it the hash-pinned requirements/dev.txt, then the project
itself (again only when that lock or pyproject.toml changes).
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
# Hash-pinned locks made by `dev.py lock`: runtime.txt for the Docker image, dev.txt (runtime plus
# the dev and embedded extras) for development and CI.
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
# The locking tool, pinned too: the same uv resolves the same way. Kept apart from the project's
# packages, in .venv/lock-tools.
UV_REQUIREMENT = "uv==0.13.9"


def log(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def ensure_environment() -> None:
    if not PYTHON.exists():
        log(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    digest = hashlib.sha256(DEV_LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    started = time.monotonic()
    log(f"installing {DEV_LOCK.relative_to(ROOT)} and the project (first run takes a minute)")
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    # Exactly the locked versions, each checked against its hash; then the project with no
    # dependencies of its own, so nothing unlocked comes in (see `dev.py lock` after editing them).
    subprocess.run([*pip, "--require-hashes", "-r", str(DEV_LOCK)], check=True, cwd=ROOT)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True, cwd=ROOT)
    check = subprocess.run([str(PYTHON), "-m", "pip", "check", "--disable-pip-version-check"], capture_output=True, text=True)
    if check.returncode != 0:  # e.g. a dependency added to pyproject.toml but not to the lock
        sys.exit(f"{check.stdout}[dev] {DEV_LOCK.relative_to(ROOT)} does not satisfy pyproject.toml: run python3 dev.py lock")
    STAMP.write_text(digest)
    log(f"installed in {time.monotonic() - started:.0f} s")


def lock(args: list[str]) -> int:
    """Write requirements/runtime.txt and requirements/dev.txt from pyproject.toml with uv.

    One universal resolution (every platform, CPython 3.11 and later) with the hashes of every
    file, so plain ``pip install --require-hashes -r`` works on Linux x86_64 and aarch64 alike.
    The dev lock is made first and constrains the runtime one: both hold the same versions.
    """
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    tools = VENV / "lock-tools"
    uv = tools / "bin" / "uv"
    marker = tools / ".requirement"
    if not (uv.exists() and marker.exists() and marker.read_text() == UV_REQUIREMENT):
        log(f"installing {UV_REQUIREMENT} into {tools}")
        pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
        subprocess.run([*pip, "--upgrade", "--target", str(tools), UV_REQUIREMENT], check=True)
        marker.write_text(UV_REQUIREMENT)
    compile_ = [
        *(str(uv), "pip", "compile", "pyproject.toml", "--universal", "--python-version", "3.11"),
        *("--generate-hashes", "--quiet", "--custom-compile-command", "python3 dev.py lock"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}  # no one's local uv settings
    for command in (
        [*compile_, "--extra", "dev", "--extra", "embedded", *args, "-o", str(DEV_LOCK)],
        [*compile_, "-c", str(DEV_LOCK), *args, "-o", str(RUNTIME_LOCK)],
    ):
        if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
            return 1
    log(f"wrote {DEV_LOCK.relative_to(ROOT)} and {RUNTIME_LOCK.relative_to(ROOT)}")
    return 0


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
    return subprocess.run([str(PYTHON), "-m", "pytest", "-n", "auto", "--dist", "worksteal", *args], cwd=ROOT).returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"start", "test", "install", "lock"}:
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "lock":
        return lock(rest)
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
