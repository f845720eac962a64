"""Periodic work, kept as rows in django-celery-beat's tables (visible and editable in admin).

Work that is due later lives in the database and a sweep below finds it; nothing is queued
days ahead with countdown/eta.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicSpec:
    name: str
    task: str
    every_seconds: int
    kwargs: str = "{}"


PERIODIC_TASKS: tuple[PeriodicSpec, ...] = (
    PeriodicSpec(name="Heartbeat (worker and beat alive)", task="trial.heartbeat", every_seconds=60),
    PeriodicSpec(name="Send staff notifications left pending", task="trial.send_pending_notifications", every_seconds=60),
    PeriodicSpec(name="Open and close questionnaire windows", task="followup.advance_occurrences", every_seconds=300),
    PeriodicSpec(name="Send due invitations and reminders", task="followup.send_due_messages", every_seconds=120),
    PeriodicSpec(name="Physiotherapists' daily agenda", task="participants.send_agendas", every_seconds=900),
    PeriodicSpec(name="Data-quality checks (nightly)", task="trial.run_quality_checks", every_seconds=86400),
    PeriodicSpec(name="Audit trail tamper check (nightly)", task="trial.verify_audit", every_seconds=86400),
    PeriodicSpec(name="Fail release builds whose worker stopped", task="closeout.sweep_release_builds", every_seconds=60),
)
