"""Benchmarks: commands that build data at scale and print figures (never run by the test suite
beyond a smoke run)."""

from __future__ import annotations

from django.db import connection


def statements_unlimited() -> None:
    """Lift the statement time limit (settings) for this command's own connections: building a
    dataset at scale runs statements far longer than any page may."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    options["options"] = (options.get("options", "") + " -c statement_timeout=0").strip()
    connection.close()
