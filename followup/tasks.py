"""Follow-up tasks."""

from __future__ import annotations

from followup import services
from messaging import services as messaging
from trial.tasking import system_task


@system_task(name="followup.advance_occurrences", time_limit=120)
def advance_occurrences() -> None:
    """Open and close questionnaire windows; beat runs it every few minutes. Safe to run twice."""
    services.occurrences_advance()


@system_task(name="followup.send_due_messages", time_limit=900)
def send_due_messages() -> dict[str, int]:
    """Open due windows, plan their messages and send every due message; beat runs it every
    two minutes. Two runs at once share the work; a run stops claiming after ten minutes."""
    services.occurrences_advance()
    result = messaging.messages_send_due(max_seconds=600)
    return vars(result)


@system_task(name="followup.derive_outcomes", time_limit=1800)
def derive_outcomes(trial_id: int) -> int:
    """Derive every randomised participant's outcomes again, after the trial's outcome rules
    changed. Safe to run twice: the second run finds nothing to change."""
    return services.outcomes_derive_trial(trial_id=trial_id)
