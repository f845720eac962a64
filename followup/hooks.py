"""Extension points of follow-up: what other features do with a participant's answers.

Safety raises a pending adverse-event report from a "new health problem" answer; it registers here
from ``console.wiring``, and follow-up never imports it. Hooks run inside the answer's
transaction, so a failure rolls the submission back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from followup.models import QuestionnaireResponse

Submitted = Callable[["QuestionnaireResponse"], None]

_submitted: list[Submitted] = []


def on_submitted(hook: Submitted) -> Submitted:
    """After a questionnaire's answers are stored (by the participant or by staff) and its
    outcomes derived."""
    if hook not in _submitted:
        _submitted.append(hook)
    return hook


def run_submitted(response: QuestionnaireResponse) -> None:
    for hook in _submitted:
        hook(response)
