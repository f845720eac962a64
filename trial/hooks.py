"""Extension points of the trial core: what features do when the trial's configuration changes.

Follow-up re-plans every schedule when the end of follow-up moves; it registers here from
``console.wiring``. A hook runs inside the change's transaction and returns a line to show the
person who made the change (or '').
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trial.models import Trial

FollowupEndChanged = Callable[["Trial"], str]

_followup_end_changed: list[FollowupEndChanged] = []


def on_followup_end_changed(hook: FollowupEndChanged) -> FollowupEndChanged:
    if hook not in _followup_end_changed:
        _followup_end_changed.append(hook)
    return hook


def run_followup_end_changed(trial: Trial) -> list[str]:
    return [line for hook in _followup_end_changed if (line := hook(trial))]
