from __future__ import annotations

from typing import Any

from django_celery_beat.models import PeriodicTask

from trial import services, tasks
from trial.celery import app
from trial.models import Heartbeat

# Task names are a contract with queued messages and beat rows: renaming one strands its work.
STABLE_TASK_NAMES = {
    "trial.heartbeat",
    "trial.send_pending_notifications",
    "trial.send_notification",
    "followup.advance_occurrences",
    "followup.derive_outcomes",
    "followup.send_due_messages",
    "participants.send_agendas",
    "trial.run_quality_checks",
    "trial.build_release",
    "closeout.sweep_release_builds",
}


def test_task_names_never_change(db: Any) -> None:  # importing the tasks runs the system checks, one reads the keys' rows
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert ours >= STABLE_TASK_NAMES


def test_tasks_have_time_limits_and_json_arguments() -> None:
    task = app.tasks["trial.heartbeat"]
    assert task.time_limit == 30
    assert task.soft_time_limit is not None and task.soft_time_limit < task.time_limit
    assert task.serializer == "json"


def test_every_task_is_acknowledged_after_it_ran_and_handed_back_if_its_worker_dies(db: Any) -> None:
    """All our tasks are safe to run twice, so a worker killed mid-task loses none (acks_late,
    reject_on_worker_lost); the opt-out acknowledges on receipt, for a task that must not run twice."""
    from trial.tasking import system_task

    app.loader.import_default_modules()
    ours = [task for name, task in app.tasks.items() if name in STABLE_TASK_NAMES]
    assert len(ours) == len(STABLE_TASK_NAMES)
    assert all(task.acks_late and task.reject_on_worker_lost for task in ours), [
        task.name for task in ours if not (task.acks_late and task.reject_on_worker_lost)
    ]

    def at_most_once() -> None:
        pass

    task = system_task(name="tests.at_most_once", idempotent=False)(at_most_once)
    assert task.acks_late is False and task.reject_on_worker_lost is False


def test_heartbeat_task_is_safe_to_run_twice(db) -> None:
    tasks.heartbeat.apply(kwargs={"name": "worker"})
    tasks.heartbeat.apply(kwargs={"name": "worker"})
    beat = Heartbeat.objects.get(name="worker")
    assert Heartbeat.objects.count() == 1
    assert beat.runs == 2


def test_periodic_tasks_are_rows_beat_reads_and_sync_is_idempotent(db) -> None:
    services.periodic_tasks_sync()
    services.periodic_tasks_sync()
    rows = PeriodicTask.objects.filter(task="trial.heartbeat")
    assert rows.count() == 1
    assert rows.get().interval.every == 60


def test_an_admin_disabling_a_periodic_task_is_respected_by_sync(db) -> None:
    services.periodic_tasks_sync()
    PeriodicTask.objects.filter(task="trial.heartbeat").update(enabled=False)
    services.periodic_tasks_sync()
    assert PeriodicTask.objects.get(task="trial.heartbeat").enabled is False


def test_the_window_sweep_task_is_safe_to_run_twice(db) -> None:
    from followup.tasks import advance_occurrences

    advance_occurrences.apply()
    advance_occurrences.apply()
    assert app.tasks["followup.advance_occurrences"].time_limit == 120
