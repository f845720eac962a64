"""Loaded first by pytest (``-p trial.pytest_plugin`` in pyproject's addopts), before pytest-django
reads the settings: ``python -m pytest`` with ``DATABASE_URL`` unset starts the embedded PostgreSQL
here, in the main process, and its xdist workers inherit the URL (a test database each)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from trial import embedded


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: Any, args: list[str]) -> None:
    embedded.ensure_database_url()  # in an xdist worker, already set by the main process
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # Each worker keeps its local state (filesystem broker, outboxes, secret key, static files)
        # in a directory of its own.
        os.environ["WALKBACK_VAR_DIR"] = str(embedded.default_var_dir() / "xdist" / worker)
        # Workers share Redis when CACHE_URL is set, and their test databases reuse the same ids:
        # per-user counters (password attempts) must not meet another worker's user of the same id.
        os.environ.setdefault("CACHE_KEY_PREFIX", worker)
