"""Blinding: who may see a participant's arm, which records reveal it, and the history of a
record as a blinded role may see it (arm-revealing fields hidden)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pghistory.models
from django.contrib.auth import get_user_model
from django.db.models import Model

from participants import records
from participants.models import ALLOCATION_FIELDS, Unblinding
from trial import access
from trial.access import Perm
from trial.models import Trial


def can_see_arm(user: Any, *, trial: Trial, participant_id: int) -> bool:
    """Whether ``user`` may see this participant's arm: an unblinded role, or an emergency
    unblinding of this participant by this user."""
    if access.access_for(user, trial).sees_allocation:
        return True
    return Unblinding.objects.filter(participant_id=participant_id, user_id=user.pk).exists()


def unblinded_participant_ids(user: Any, *, trial: Trial) -> frozenset[int] | None:
    """None when the user sees every arm; else the participants they were unblinded to."""
    if access.access_for(user, trial).sees_allocation:
        return None
    return frozenset(Unblinding.objects.filter(user_id=user.pk).values_list("participant_id", flat=True))


def can_view_record(user: Any, obj: Model, *, trial: Trial) -> bool:
    """Whether ``user`` may open ``obj`` (and so its history): by the rule of its model
    (``participants.records``); a model without one is open to no one."""
    acc = access.access_for(user, trial)
    rule = records.rule_for(obj._meta.label_lower)
    if rule is None or not acc.is_staff_member:
        return False
    if rule.perms and not rule.perms & acc.perms:
        return False
    if rule.check is not None and not rule.check(user, obj, acc):
        return False
    if not rule.clinical:
        return True
    site_id = _site_id_of(obj)
    if site_id is None or Perm.VIEW_PARTICIPANTS not in acc.perms or not access.may_see_site(user, trial=trial, site_id=site_id):
        return False
    return not (
        rule.reveals_arm is not None
        and rule.reveals_arm(obj)
        and not can_see_arm(user, trial=trial, participant_id=_participant_id_of(obj))
    )


def _participant_id_of(obj: Model) -> int:
    """The participant a clinical record belongs to, directly or through its session."""
    participant_id = getattr(obj, "participant_id", None)
    if participant_id is None:
        participant_id = obj.session.participant_id  # type: ignore[attr-defined]
    return int(participant_id)


def _site_id_of(obj: Model) -> int | None:
    """A clinical record names its site directly or through its participant."""
    if hasattr(obj, "site_for_access"):
        value = obj.site_for_access()
        return int(value) if value is not None else None
    return None


REDACTED = "(hidden: blinded role)"


@dataclass(frozen=True)
class HistoryEntry:
    at: Any
    label: str
    who: str
    reason: str
    changes: list[tuple[str, Any, Any]]
    data: dict[str, Any]


def _allocation_fields(obj: Model) -> frozenset[str]:
    return ALLOCATION_FIELDS.get(obj._meta.label_lower, frozenset())


def record_history(*, obj: Model, user: Any, trial: Trial) -> list[HistoryEntry]:
    """Every event of one record, oldest first, with arm-revealing fields hidden from blinded roles."""
    hidden = frozenset() if access.can_see_allocation(user, trial=trial) else _allocation_fields(obj)
    events = list(pghistory.models.Events.objects.tracks(obj).order_by("pgh_created_at", "pgh_id"))
    user_ids = {e.pgh_context.get("user") for e in events if e.pgh_context and e.pgh_context.get("user")}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    entries = []
    for event in events:
        context = event.pgh_context or {}
        user_id = context.get("user")
        who = (names.get(int(user_id)) if user_id else None) or context.get("actor") or "system"
        if context.get("on_behalf_of"):
            who = f"{who} (for {context['on_behalf_of']})"
        diff = event.pgh_diff or {}
        changes = [
            (field, REDACTED if field in hidden else old, REDACTED if field in hidden else new)
            for field, (old, new) in sorted(diff.items())
        ]
        data = {k: (REDACTED if k in hidden else v) for k, v in (event.pgh_data or {}).items()}
        entries.append(
            HistoryEntry(
                at=event.pgh_created_at,
                label=event.pgh_label,
                who=str(who),
                reason=str(context.get("reason", "")),
                changes=changes,
                data=data,
            )
        )
    return entries
