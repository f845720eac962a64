"""Which records staff may open (their history, ``/history/<app>/<model>/<id>/``) and raise data
queries on, by model label: an allow-list. A model with no rule here is shown to no one and
answers 404, as a record that does not exist does, so an address tells nothing.

The core's and this app's models are declared below; the apps above register theirs in their
``AppConfig.ready`` with ``register``. ``blinding.can_view_record`` applies the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model

from participants.models import WithdrawalScope
from trial.access import Access, Perm


@dataclass(frozen=True)
class RecordRule:
    """``perms``: the reader holds one of them (empty: any staff member). ``clinical``: a record of
    a participant or screening, seen at the reader's sites by roles that see participants.
    ``reveals_arm``: opening it tells the participant's arm (blinded roles may not).
    ``queries``: a data query may be raised on it. ``check``: a further test of the one record."""

    name: str
    perms: frozenset[Perm] = frozenset()
    clinical: bool = False
    reveals_arm: Callable[[Model], bool] | None = None
    queries: bool = False
    check: Callable[[Any, Model, Access], bool] | None = None


def clinical(
    *, reveals_arm: bool | Callable[[Model], bool] = False, queries: bool = True, perms: frozenset[Perm] = frozenset()
) -> RecordRule:
    predicate = reveals_arm if callable(reveals_arm) else ((lambda obj: True) if reveals_arm else None)
    return RecordRule(name="clinical", clinical=True, reveals_arm=predicate, queries=queries, perms=perms)


def about_a_session(obj: Model) -> bool:
    """Only the intervention arm has sessions: a record tied to one tells the arm."""
    return getattr(obj, "session_id", None) is not None


# Withdrawal scopes only the intervention arm can have ("stop the intervention only").
INTERVENTION_ONLY_SCOPES: frozenset[str] = frozenset({WithdrawalScope.INTERVENTION})


def _from_the_intervention_only(obj: Model) -> bool:
    return getattr(obj, "scope", None) in INTERVENTION_ONLY_SCOPES


# Staff accounts, their roles and the security events: for managing staff and reading the audit.
STAFF_ACCOUNTS = RecordRule(name="staff accounts", perms=frozenset({Perm.MANAGE_STAFF, Perm.VIEW_AUDIT}))
# The trial's shape (arms, sites, strata, criteria, roles): every staff member sees it on their pages.
TRIAL_CONFIG = RecordRule(name="trial configuration")
# Settings, contacts and timetables: for whoever configures the trial or reads its audit.
CONFIGURATION = RecordRule(name="configuration", perms=frozenset({Perm.CONFIGURE_TRIAL, Perm.VIEW_AUDIT}))
# Records of the whole trial (the database lock, releases): every staff member.
TRIAL_WIDE = RecordRule(name="trial-wide")


def _addressed_to_reader(user: Any, obj: Model, acc: Access) -> bool:
    email = (getattr(user, "email", "") or "").strip().lower()
    return bool(email) and email in {str(r).strip().lower() for r in getattr(obj, "recipients", [])}


def _addressed_or_auditor(user: Any, obj: Model, acc: Access) -> bool:
    return Perm.VIEW_AUDIT in acc.perms or _addressed_to_reader(user, obj, acc)


# An e-mail to staff (a serious event, an exhausted list): its recipients and auditors only; it
# names no site, so a site-bound reader of another site's alert would learn of that site's events.
NOTIFICATION = RecordRule(name="notification", check=_addressed_or_auditor)

_RULES: dict[str, RecordRule] = {
    "auth.user": STAFF_ACCOUNTS,
    "trial.trackeduser": STAFF_ACCOUNTS,
    "trial.staffprofile": STAFF_ACCOUNTS,
    "trial.securityevent": STAFF_ACCOUNTS,
    "trial.trial": TRIAL_CONFIG,
    "trial.site": TRIAL_CONFIG,
    "trial.arm": TRIAL_CONFIG,
    "trial.stratificationfactor": TRIAL_CONFIG,
    "trial.stratumlevel": TRIAL_CONFIG,
    "trial.eligibilitycriterion": TRIAL_CONFIG,
    "trial.role": TRIAL_CONFIG,
    "trial.trialcontact": CONFIGURATION,
    "trial.notification": NOTIFICATION,
    "trial.allocation": clinical(reveals_arm=True, queries=False),
    # Not listed, so shown to no one: the sealed randomisation list (randomisationlist,
    # randomisationslot, stratumcursor), heartbeats, audit event tables, personal links' hashes.
    "participants.consentdocument": TRIAL_CONFIG,
    "participants.screening": clinical(),
    "participants.participant": clinical(),
    "participants.participantstratum": clinical(),
    "participants.consent": clinical(),
    # A withdrawal from the intervention only: only the intervention arm has one.
    "participants.withdrawal": clinical(reveals_arm=_from_the_intervention_only),
    "participants.contactdetails": clinical(perms=frozenset({Perm.VIEW_CONTACTS}), queries=False),
    "participants.unblinding": clinical(queries=False),
}


def register(rules: Mapping[str, RecordRule]) -> None:
    """Declare the rules of an app's models (from its ``AppConfig.ready``); a label is declared once."""
    for label, rule in rules.items():
        label = label.lower()
        if label in _RULES:
            raise ImproperlyConfigured(f"Record rule for {label} declared twice.")
        _RULES[label] = rule


def rule_for(label: str) -> RecordRule | None:
    return _RULES.get(label.lower())


def rules() -> dict[str, RecordRule]:
    return dict(_RULES)


def may_raise_query(label: str) -> bool:
    rule = rule_for(label)
    return rule is not None and rule.queries
