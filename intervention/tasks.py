"""Intervention tasks. The name predates this app and never changes."""

from __future__ import annotations

from intervention import messages
from trial.tasking import system_task


@system_task(name="participants.send_agendas", time_limit=300)
def send_agendas() -> int:
    """Each physiotherapist's agenda for the day, once, at the configured local hour; beat runs it
    every 15 minutes. Safe to run twice (one notification per physiotherapist and day)."""
    return messages.agendas_send()
