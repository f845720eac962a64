"""Close-out tasks. Their names predate this app and never change."""

from __future__ import annotations

from closeout.queries.checks import checks_run_all
from closeout.releases.services import release_build
from trial.tasking import system_task


@system_task(name="trial.run_quality_checks", time_limit=3600)
def run_quality_checks(trial_id: int | None = None) -> int:
    """The data-quality checks (nightly by beat, or on demand); a finding raises its query once, so
    running twice raises nothing new."""
    return checks_run_all(trial_id=trial_id)


@system_task(name="trial.build_release", time_limit=3 * 3600)
def build_release(release_id: int) -> None:
    """Build one dataset release; a second run finds it already claimed and does nothing."""
    release_build(release_id=release_id)
