"""How every task in this product is declared: a stable name, time limits, JSON arguments,
and an audit context naming the task as the actor of whatever it writes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction

from trial.audit import audit_context
from trial.celery import app

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT = 300


def system_task(
    *, name: str, time_limit: int = DEFAULT_TIME_LIMIT, idempotent: bool = True, **options: Any
) -> Callable[[F], Any]:
    """Register ``func`` as Celery task ``name``. The name is a contract: never change it.

    ``idempotent`` (the default, and every task today): the task is safe to run twice, so it is
    acknowledged only once it has run (``acks_late``) and handed back to the broker if the worker
    running it dies (``reject_on_worker_lost``): a worker killed mid-task loses no work, another
    runs it again. Pass ``idempotent=False`` for a task that must not run twice: it is then
    acknowledged when received, and lost with a worker that dies running it (at most once).
    """

    def decorator(func: F) -> Any:
        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with audit_context(actor=f"task:{name}"):
                return func(*args, **kwargs)

        return app.task(
            name=name,
            time_limit=time_limit,
            soft_time_limit=max(1, time_limit - 30),
            serializer="json",
            ignore_result=True,
            acks_late=idempotent,
            reject_on_worker_lost=idempotent,
            **options,
        )(run)

    return decorator


def queue_on_commit(name: str, *args: Any, **kwargs: Any) -> None:
    """Queue task ``name`` once the current transaction commits (at once outside one).

    Services queue tasks by their stable name rather than importing the task modules, which import
    the services: the dependency points one way only. The task modules are imported on first use
    (Celery's autodiscovery), as a worker does at start.
    """

    def send() -> None:
        if name not in app.tasks:
            app.loader.import_default_modules()
        try:
            app.tasks[name].delay(*args, **kwargs)
        except Exception:
            # The action is saved and its work is a row with a status: a sweep finds it (staff
            # notifications, releases) or the nightly run does. A broker that is down must not turn
            # a committed action into an error page, nor tempt the user to do it twice.
            logger.warning("Could not queue task %s after commit; its sweep will pick the work up.", name, exc_info=True)

    transaction.on_commit(send)
