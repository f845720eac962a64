"""Follow-up tasks."""

from __future__ import annotations

from followup import services
from trial.tasking import system_task


@system_task(name="followup.advance_occurrences", time_limit=120)
def advance_occurrences() -> None:
    """Open and close questionnaire windows; beat runs it every few minutes. Safe to run twice."""
    services.occurrences_advance()
