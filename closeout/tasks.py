"""Close-out tasks. Their names predate this app and never change."""

from __future__ import annotations

from closeout.queries.checks import checks_run_all
from closeout.releases.services import release_build, release_builds_sweep
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


@system_task(name="closeout.sweep_release_builds", time_limit=120)
def sweep_release_builds() -> dict[str, int]:
    """Fail the builds whose worker died (no heartbeat for a lease) and queue again the releases
    left queued; beat runs it every minute. Safe to run twice: each change is conditional."""
    return release_builds_sweep()
