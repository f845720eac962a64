"""Extension points of the participant's journey.

Features above this app (follow-up, intervention) act when a participant is enrolled, randomised
or withdraws; they register here from ``console.wiring``, and this app never imports them. Hooks run
inside the caller's transaction, in registration order, so a failure rolls the whole step back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from participants.models import Participant
    from trial.models import Allocation

# After an enrolment is recorded (participant, consent and contact details saved).
Enrolled = Callable[["Participant"], None]
# Before the stratum is claimed: work that does not depend on the arm (so the claim is held
# briefly). It may return what to do once the allocation is known.
AfterAllocation = Callable[["Allocation"], None]
Randomising = Callable[["Participant", dt.datetime], AfterAllocation | None]
# After a withdrawal is recorded and the participant saved: (participant, scope, withdrawn on).
Withdrawn = Callable[["Participant", str, dt.date], None]

# On the participant's own home page: a feature may add a section (a template included with
# ``token`` and ``participant``) for a participant it concerns; None adds nothing.
HomeSection = Callable[["Participant"], str | None]

_enrolled: list[Enrolled] = []
_randomising: list[Randomising] = []
_home_sections: list[HomeSection] = []
_withdrawn: list[Withdrawn] = []


def on_enrolled(hook: Enrolled) -> Enrolled:
    if hook not in _enrolled:
        _enrolled.append(hook)
    return hook


def on_randomising(hook: Randomising) -> Randomising:
    if hook not in _randomising:
        _randomising.append(hook)
    return hook


def on_withdrawn(hook: Withdrawn) -> Withdrawn:
    if hook not in _withdrawn:
        _withdrawn.append(hook)
    return hook


def run_enrolled(participant: Participant) -> None:
    for hook in _enrolled:
        hook(participant)


def run_randomising(participant: Participant, at: dt.datetime) -> list[AfterAllocation]:
    return [after for hook in _randomising if (after := hook(participant, at)) is not None]


def run_withdrawn(participant: Participant, scope: str, withdrawn_on: dt.date) -> None:
    for hook in _withdrawn:
        hook(participant, scope, withdrawn_on)


def on_home_section(hook: HomeSection) -> HomeSection:
    if hook not in _home_sections:
        _home_sections.append(hook)
    return hook


def home_sections(participant: Participant) -> list[str]:
    return [template for hook in _home_sections if (template := hook(participant))]
