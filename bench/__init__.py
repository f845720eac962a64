"""Benchmarks: commands that build data at scale and print figures (never run by the test suite
beyond a smoke run)."""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection


def statements_unlimited() -> None:
    """Lift the statement time limit (settings) for this command's own connections: building a
    dataset at scale runs statements far longer than any page may."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    options["options"] = (options.get("options", "") + " -c statement_timeout=0").strip()
    connection.close()


@contextmanager
def throwaway_database(prefix: str, *, keep: str = "") -> Iterator[str]:
    """A database of the benchmark's own, created empty and migrated, dropped at the end: a benchmark
    never writes into the trial's data. Yields its name; statements have no time limit there. With
    ``keep``, the database has that name and stays, for a later run to measure again."""
    statements_unlimited()
    connection.settings_dict.setdefault("TEST", {})["NAME"] = keep or f"{prefix}_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield str(connection.settings_dict["NAME"])
    finally:
        connection.close()
        if not keep:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def threads_run(*, clients: int, target: Callable[[], None], name: str = "client") -> float:
    """``clients`` threads running ``target`` at once; the seconds until the last one ends."""
    threads = [threading.Thread(target=target, name=f"{name}-{n}") for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def fresh_process_main(module: str, job: str, args: tuple[Any, ...], results: Any) -> None:  # pragma: no cover - a child process
    """Run ``module.job(*args)`` in a newly spawned interpreter, Django set up first, and put its
    result, or the error, on ``results`` (a child that died unreported would leave its parent waiting)."""
    try:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trial.settings")
        django.setup()
        results.put(getattr(importlib.import_module(module), job)(*args))
    except BaseException as exc:
        results.put(RuntimeError(f"{job}: {type(exc).__name__}: {exc}"))
