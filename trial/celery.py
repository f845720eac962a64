"""The Celery app. Tasks take ids, call a service, and are safe to run twice."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trial.settings")

app = Celery("trial")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _refuse_keys_that_do_not_match_the_data(**kwargs: Any) -> None:
    """A worker sends participants' links and signs nothing with a key other than the data's: the
    same check as the web process's start (trial.checks), and the same refusal."""
    from django.db import connections

    from trial.checks import keys_match_data

    errors = keys_match_data()
    connections.close_all()  # the pool's processes fork from this one: none may inherit its connection
    if errors:
        raise SystemExit("Refusing to start: " + " ".join(f"{e.msg} ({e.id}) {e.hint}" for e in errors))
