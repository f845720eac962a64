"""Blinding: who may see a participant's arm, which records reveal it, and how records (and their
history) look to a blinded role.

The rule: whatever a blinded role can reach must look the same for two participants who differ
only in arm. So records only the intervention arm has are answered as missing, and fields whose
value differs by arm (``BLINDED_FIELDS``) are shown as they would be in any arm. Pages, the API,
history and exports use the functions here; ``tests/participants/test_arm_swap.py`` proves it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pghistory.models
from django.contrib.auth import get_user_model
from django.db.models import Model

from participants import records
from participants.models import Participant, Unblinding
from participants.records import INTERVENTION_ONLY_SCOPES
from trial import access
from trial.access import Perm
from trial.auditchain import HASH_COLUMNS
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


def reveals_arm(obj: Model) -> bool:
    """Whether a record exists only for the intervention arm (or is the allocation itself), by the
    rule of its model: a blinded role is told it does not exist, as for a record that really does not."""
    rule = records.rule_for(obj._meta.label_lower)
    return rule is not None and rule.reveals_arm is not None and rule.reveals_arm(obj)


def _participant_id_of(obj: Model) -> int:
    """The participant a clinical record belongs to, directly or through its event or session."""
    if isinstance(obj, Participant):
        return int(obj.pk)
    participant_id = getattr(obj, "participant_id", None)
    if participant_id is None:
        owner = getattr(obj, "event", None) or obj.session  # type: ignore[attr-defined]
        participant_id = owner.participant_id
    return int(participant_id)


def _site_id_of(obj: Model) -> int | None:
    """A clinical record names its site directly or through its participant."""
    if hasattr(obj, "site_for_access"):
        value = obj.site_for_access()
        return int(value) if value is not None else None
    return None


REDACTED = "(hidden: blinded role)"


def _hidden(value: Any) -> Any:
    return REDACTED


def _scope_as_blinded(value: Any) -> Any:
    """Stopping the intervention only happens in the intervention arm: to a blinded role such a
    participant is one who has not withdrawn (follow-up goes on alike in both arms)."""
    return "" if value in INTERVENTION_ONLY_SCOPES else value


def _source_as_blinded(value: Any) -> Any:
    return "staff" if value == "session" else value  # a report made at a session reads as entered by staff


# Fields whose value differs by arm on records every role may open, and what a blinded role sees
# instead (keyed by field name and by column name, as the audit trail stores them). Who reported an
# adverse event is one: a physiotherapist reports at sessions, which only the intervention arm has.
BLINDED_FIELDS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "participants.participant": {"physiotherapist": _hidden, "withdrawal_scope": _scope_as_blinded},
    "safety.adverseevent": {"session": _hidden, "source": _source_as_blinded, "reported_by": _hidden},
    "safety.aefollowup": {"recorded_by": _hidden},
}
# Records whose history does not name the staff member who acted, for a blinded role (as above).
BLINDED_ACTORS: frozenset[str] = frozenset({"safety.adverseevent", "safety.aefollowup"})
# How a blinded role sees the staff member behind such a record.
SOME_STAFF = "staff"


def blinded_value(label: str, field: str, value: Any) -> Any:
    """``value`` of ``field`` (or of its column, ``<field>_id``) of a ``label`` record as a blinded role sees it."""
    fields = BLINDED_FIELDS.get(label, {})
    shown = fields.get(field) or (fields.get(field.removesuffix("_id")) if field.endswith("_id") else None)
    return shown(value) if shown is not None else value


M = TypeVar("M", bound=Model)


def as_seen(obj: M, *, visible: bool) -> M:
    """A copy of ``obj`` for display, with arm-revealing fields as a blinded role sees them unless
    ``visible`` (the viewer sees this participant's arm). Never save it."""
    fields = BLINDED_FIELDS.get(obj._meta.label_lower)
    if visible or not fields:
        return obj
    seen = copy.copy(obj)
    seen._state = copy.copy(obj._state)
    seen._state.fields_cache = dict(obj._state.fields_cache)
    for f in obj._meta.concrete_fields:
        if f.name in fields:
            value = blinded_value(obj._meta.label_lower, f.name, getattr(obj, f.attname))
            if f.is_relation:
                value = None  # a hidden relation reads as none, in every arm
                seen._state.fields_cache.pop(f.name, None)
            setattr(seen, f.attname, value)
    return seen


def staff_label(user: Any, *, visible: bool) -> str:
    """Who recorded something, as a viewer may see it: the name, or ``SOME_STAFF`` when blinded."""
    if user is None:
        return "—"
    return str(user.get_full_name() or user.get_username()) if visible else SOME_STAFF


def participants_as_seen(participants: list[Participant], *, user: Any, trial: Trial) -> list[Participant]:
    """The participants as ``user`` may see them (see ``as_seen``)."""
    visible_for = unblinded_participant_ids(user, trial=trial)
    return [as_seen(p, visible=visible_for is None or p.pk in visible_for) for p in participants]


def participant_as_seen(participant: Participant, *, user: Any, trial: Trial) -> Participant:
    return participants_as_seen([participant], user=user, trial=trial)[0]


@dataclass(frozen=True)
class HistoryEntry:
    at: Any
    label: str
    who: str
    reason: str
    changes: list[tuple[str, Any, Any]]
    data: dict[str, Any]


def record_history(*, obj: Model, user: Any, trial: Trial) -> list[HistoryEntry]:
    """Every event of one record, oldest first, as ``user`` may see it: to a blinded role
    arm-revealing fields read as they would in any arm, and a change that only touched them is
    not shown at all (the other arm has no such event)."""
    label = obj._meta.label_lower
    blinded = label in BLINDED_FIELDS and not can_see_arm(user, trial=trial, participant_id=_participant_id_of(obj))

    def shown(field: str, value: Any) -> Any:
        return blinded_value(label, field, value) if blinded else value

    events = list(pghistory.models.Events.objects.tracks(obj).order_by("pgh_created_at", "pgh_id"))
    user_ids = {e.pgh_context.get("user") for e in events if e.pgh_context and e.pgh_context.get("user")}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    entries = []
    for event in events:
        context = event.pgh_context or {}
        user_id = context.get("user")
        who = (names.get(int(user_id)) if user_id else None) or context.get("actor") or "system"
        if user_id and blinded and label in BLINDED_ACTORS:
            who = SOME_STAFF
        if context.get("on_behalf_of"):
            who = f"{who} (for {context['on_behalf_of']})"
        # The audit chain's hashes are not the record's: they seal every earlier event of the table
        # (of any participant, in any arm), so they are never shown.
        diff = {k: v for k, v in (event.pgh_diff or {}).items() if k not in HASH_COLUMNS}
        changes = [
            (field, shown(field, old), shown(field, new))
            for field, (old, new) in sorted(diff.items())
            if shown(field, old) != shown(field, new)
        ]
        if diff and not changes:
            continue
        data = {k: shown(k, v) for k, v in (event.pgh_data or {}).items() if k not in HASH_COLUMNS}
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
