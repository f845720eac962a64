"""Migrations never import project code: what an old migration does is frozen in its own file, so a
later edit of the project (a renamed helper, a new guarded table, an app that moves) never changes it
or breaks it. They may import Django, pghistory, pgtrigger and the standard library only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"django", "pghistory", "pgtrigger", "__future__"} | set(sys.stdlib_module_names)


def first_party() -> set[str]:
    """Every top-level package of the repository: each app (a directory with an apps.py), so a new
    app is covered without editing this test, and any other package with an __init__.py."""
    return {
        path.name
        for path in ROOT.iterdir()
        if path.is_dir() and not path.name.startswith(".") and ((path / "apps.py").exists() or (path / "__init__.py").exists())
    }


def migration_files() -> list[Path]:
    apps = sorted(path.parent for path in ROOT.glob("*/apps.py"))
    return sorted(file for app in apps for file in (app / "migrations").glob("*.py") if file.name != "__init__.py")


def imported_modules(source: str) -> list[str]:
    """Every module a migration's source imports, anywhere in it (also inside functions, and by
    importlib.import_module / __import__ with a literal name); a relative import is the app's own."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                found.append(node.args[0].value)
    return found


def project_imports(source: str, packages: set[str]) -> list[str]:
    return [m for m in imported_modules(source) if m.startswith(".") or m.split(".")[0] in packages]


def test_the_scan_sees_every_app_and_its_migrations() -> None:
    assert {"trial", "participants", "followup"} <= first_party()
    names = {f"{file.parent.parent.name}/{file.stem}" for file in migration_files()}
    assert {"trial/0004_refuse_writes_when_locked", "participants/0001_initial", "followup/0001_initial"} <= names


def test_the_scan_catches_every_way_of_importing_project_code() -> None:
    source = """
import trial.models
from participants.models import Participant
from . import helpers
import django.db, followup
def forwards(apps, schema_editor):
    from trial.lockguard import create_sql
    importlib.import_module("participants.services")
"""
    assert project_imports(source, {"trial", "participants", "followup"}) == [
        "trial.models",
        "participants.models",
        ".",
        "followup",
        "trial.lockguard",
        "participants.services",
    ]


def test_no_migration_imports_project_code() -> None:
    packages = first_party()
    offenders = {
        str(file.relative_to(ROOT)): found for file in migration_files() if (found := project_imports(file.read_text(), packages))
    }
    assert offenders == {}, "Freeze what these migrations use into the migration file itself."


def test_migrations_import_only_django_pghistory_pgtrigger_and_the_standard_library() -> None:
    offenders = {
        str(file.relative_to(ROOT)): sorted(set(others))
        for file in migration_files()
        if (others := [m for m in imported_modules(file.read_text()) if m.split(".")[0] not in ALLOWED])
    }
    assert offenders == {}


def test_a_time_zone_field_still_checks_the_zone_and_migrations_see_a_char_field() -> None:
    from trial.models import Site, TimezoneField, Trial

    field = Trial._meta.get_field("timezone")
    assert isinstance(field, TimezoneField) and field.deconstruct()[1] == "django.db.models.CharField"
    field.run_validators("Australia/Sydney")
    with pytest.raises(ValidationError, match="not a known time zone"):
        Site._meta.get_field("timezone").run_validators("Mars/Olympus_Mons")


def test_a_language_field_offers_the_installations_languages_and_migrations_see_a_plain_char_field() -> None:
    from django.test import override_settings

    from messaging.models import MessageTemplate
    from participants.models import ContactDetails

    for model in (ContactDetails, MessageTemplate):
        field = model._meta.get_field("language")
        _name, path, _args, kwargs = field.deconstruct()
        assert path == "django.db.models.CharField" and "choices" not in kwargs and "default" not in kwargs
        with override_settings(LANGUAGES=[("en-au", "English"), ("vi", "Tiếng Việt")], LANGUAGE_CODE="vi"):
            assert [code for code, _label in field.choices] == ["en-au", "vi"]
            assert field.get_default() == "vi"
            field.clean("vi", None)
            with pytest.raises(ValidationError):
                field.clean("klingon", None)
