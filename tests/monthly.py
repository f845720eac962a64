"""Answers to WalkBack's monthly questionnaire (version 2: one set of questions per episode), as a
form posts them: strings, and ``ep{n}_more`` chaining the episodes."""

from __future__ import annotations

from typing import Any

NO_PAIN: dict[str, Any] = {"lbp_any": "no", "new_health_problem": "no"}


def episode(
    start: str,
    *,
    lasted_24h: bool = True,
    interference: int = 2,
    pain_avg: int = 4,
    pain_worst: int = 6,
    care_from: tuple[str, ...] = (),
    work_days_missed: int = 2,
    recovered_on: str | None = None,
) -> dict[str, Any]:
    """One episode's answers, without the ``ep{n}_`` prefix."""
    answers: dict[str, Any] = {
        "start": start,
        "24h": "yes" if lasted_24h else "no",
        "interference": str(interference),
        "pain_avg": str(pain_avg),
        "pain_worst": str(pain_worst),
        "care_sought": "yes" if care_from else "no",
        "work_days_missed": str(work_days_missed),
    }
    if care_from:
        answers["care_from"] = list(care_from)
    if recovered_on:
        answers["recovered_on"] = recovered_on
    return answers


def monthly(*episodes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A complete monthly questionnaire reporting ``episodes`` (none: no back pain)."""
    if not episodes:
        return {**NO_PAIN, **extra}
    raw: dict[str, Any] = {"lbp_any": "yes", "new_health_problem": "no"}
    for number, answers in enumerate(episodes, start=1):
        raw.update({f"ep{number}_{name}": value for name, value in answers.items()})
        raw[f"ep{number}_more"] = "yes" if number < len(episodes) else "no"
    raw.update(extra)
    return raw
