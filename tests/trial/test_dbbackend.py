"""The database backend's health check of a kept connection: bounded by the connect timeout
against a frozen server (tests/faults/test_database_down.py proves that end to end), and harmless
to a healthy connection (its timer never severs a connection whose check has answered)."""

from __future__ import annotations

import time

import pytest
from django.db import connection


@pytest.mark.django_db
def test_a_healthy_connection_passes_its_check_and_stays_usable_after_the_check_timer_would_have_fired() -> None:
    connection.ensure_connection()
    options = connection.settings_dict["OPTIONS"]
    saved = options.get("connect_timeout")
    options["connect_timeout"] = 0.05
    try:
        assert [connection.is_usable() for _ in range(3)] == [True, True, True]
        time.sleep(0.2)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        assert connection.is_usable()
    finally:
        options["connect_timeout"] = saved


def test_the_project_runs_on_this_backend() -> None:
    assert connection.settings_dict["ENGINE"] == "trial.dbbackend"
    assert connection.vendor == "postgresql"
