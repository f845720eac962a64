"""The baseline questionnaire: asked once, at enrolment, before any follow-up.

It is stored like every questionnaire (an ``Occurrence`` with ``instrument="baseline"`` and
``month=0``, due on the enrolment day in the participant's time zone, and its response), but it is
not follow-up: no reminders, not in the worklist, outcomes, completion counts or re-planning.
A trial has one when it has published an instrument with this code.
"""

from __future__ import annotations

import datetime as dt

BASELINE_INSTRUMENT = "baseline"
BASELINE_MONTH = 0
# How long the participant's link offers it after enrolment; staff may still enter it later.
BASELINE_OPEN_DAYS = 28


def age_in_years(*, born: dt.date, on: dt.date) -> int:
    """Age in whole years on a day: the birthday counts on its date, and a 29 February birthday
    on 1 March in common years (the person is not a year older on 28 February)."""
    before_birthday = (on.month, on.day) < (born.month, born.day)
    return on.year - born.year - int(before_birthday)
