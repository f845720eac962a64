from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def _env_file_values() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _database_url() -> str:
    from tests.integration.test_stack import _database_url

    return _database_url()


def test_check_deploy_is_clean_with_the_documented_production_values(db) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({k: v for k, v in _env_file_values().items() if v})
    env.update(
        DJANGO_SECRET_KEY="x" * 20 + "-production-like-secret-key-with-enough-entropy-0123456789",
        DATABASE_URL=_database_url(),
        CELERY_BROKER_URL="",
        CACHE_URL="locmemcache://",
        WALKBACK_VAR_DIR=str(settings.VAR_DIR),
    )
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_every_setting_read_from_the_environment_is_documented() -> None:
    documented = set(_env_file_values())
    source = (ROOT / "trial" / "settings.py").read_text() + (ROOT / "docker" / "entrypoint.sh").read_text()
    import re

    read = set(re.findall(r'env\.\w+\("([A-Z_]+)"', source)) | set(re.findall(r"\$\{([A-Z_]+):-", source))
    read -= {"BIND", "FORWARDED_ALLOW_IPS", "WEB_TIMEOUT"}  # process wiring, set by dev.py or the proxy
    assert read - documented == set()


def test_a_database_other_than_postgresql_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "WALKBACK_VAR_DIR": str(tmp_path)}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "must point at PostgreSQL" in result.stderr


def test_the_filesystem_broker_keeps_every_folder_under_var(tmp_path: Path) -> None:
    # kombu's default control folder is ./control: it used to appear (and be committed) at the
    # repository root. Every folder of the broker, its exchange bindings included, lives in var/.
    code = "from django.conf import settings; import json; print(json.dumps(settings.CELERY_BROKER_TRANSPORT_OPTIONS))"
    env = {**os.environ, "CELERY_BROKER_URL": "", "DATABASE_URL": _database_url(), "WALKBACK_VAR_DIR": str(tmp_path)}
    env.setdefault("DJANGO_SETTINGS_MODULE", "trial.settings")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout)
    folders = {key: Path(value) for key, value in options.items() if key.endswith(("_folder", "_folder_in", "_folder_out"))}
    assert set(folders) >= {"data_folder_in", "data_folder_out", "processed_folder", "control_folder"}
    for folder in folders.values():
        assert folder.is_relative_to(tmp_path)
        assert folder.is_dir()


def test_models_and_migrations_agree(db) -> None:
    from django.core.management import call_command

    # Exits non-zero (SystemExit) when a model change has no migration, including in other apps.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_importing_the_settings_starts_no_database_and_check_needs_none(tmp_path: Path) -> None:
    """mypy, `manage.py check` and `makemigrations` import the settings: with DATABASE_URL unset they
    point at the embedded server's socket and neither start it nor need it."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env["WALKBACK_VAR_DIR"] = str(tmp_path)
    script = "import trial.settings as s; print(s.DATABASES['default']['HOST'])"
    imported = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == str(tmp_path / "pgdata")  # where the embedded server's socket would be
    assert not (tmp_path / "pgdata").exists() and not (tmp_path / "run").exists()  # no initdb, no server

    checked = _manage("check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout
    migrations = _manage("makemigrations", "--check", "--dry-run", env=env)
    assert migrations.returncode == 0, migrations.stdout + migrations.stderr
    assert not (tmp_path / "pgdata").exists()  # so no postmaster either: it cannot run without its data directory


def test_connections_are_kept_by_default_on_the_backend_whose_health_check_cannot_hang(tmp_path: Path) -> None:
    """Kept connections (bench_http: 2-3x the submits per second), checked by trial.dbbackend, whose
    check of a connection to a frozen database gives up (tests/faults/test_database_down.py)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DATABASE_CONN_MAX_AGE"}}
    env["WALKBACK_VAR_DIR"] = str(tmp_path)
    script = (
        "import trial.settings as s; d = s.DATABASES['default']; print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], d['ENGINE'])"
    )
    imported = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["60", "True", "trial.dbbackend"]
    assert _env_file_values()["DATABASE_CONN_MAX_AGE"] == "60"
