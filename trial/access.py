"""The one place that decides "may this user see / do this", for pages, API and admin alike.

What a role may do is the matrix below (documented in the README). Whether a role sees
allocations and whether it sees every site are trial configuration (``Role`` rows).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from trial.errors import NotAllowed
from trial.models import Role, RoleCode, Site, StaffProfile, Trial


class Perm(enum.StrEnum):
    VIEW_DASHBOARD = "view_dashboard"
    VIEW_PARTICIPANTS = "view_participants"
    VIEW_CONTACTS = "view_contacts"
    SCREEN_ENROL = "screen_enrol"
    RANDOMISE = "randomise"
    WITHDRAW = "withdraw"
    DELIVER_SESSIONS = "deliver_sessions"
    BOOK_SESSIONS = "book_sessions"
    ENTER_FOLLOWUP = "enter_followup"
    REPORT_ADVERSE_EVENTS = "report_adverse_events"
    MANAGE_QUERIES = "manage_queries"
    VIEW_AUDIT = "view_audit"
    CONFIGURE_TRIAL = "configure_trial"
    MANAGE_STAFF = "manage_staff"
    MANAGE_RANDOMISATION_LIST = "manage_randomisation_list"
    EMERGENCY_UNBLIND = "emergency_unblind"
    LOCK_DATABASE = "lock_database"
    CREATE_RELEASE = "create_release"


_ALL = frozenset(Perm)
ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    RoleCode.COORDINATOR: frozenset(
        {
            Perm.VIEW_DASHBOARD,
            Perm.VIEW_PARTICIPANTS,
            Perm.VIEW_CONTACTS,
            Perm.SCREEN_ENROL,
            Perm.RANDOMISE,
            Perm.WITHDRAW,
            Perm.ENTER_FOLLOWUP,
            Perm.REPORT_ADVERSE_EVENTS,
            Perm.BOOK_SESSIONS,
        }
    ),
    RoleCode.PHYSIOTHERAPIST: frozenset(
        {
            Perm.VIEW_DASHBOARD,
            Perm.VIEW_PARTICIPANTS,
            Perm.VIEW_CONTACTS,
            Perm.DELIVER_SESSIONS,
            Perm.BOOK_SESSIONS,
            Perm.REPORT_ADVERSE_EVENTS,
        }
    ),
    RoleCode.INVESTIGATOR: frozenset(
        {
            Perm.VIEW_DASHBOARD,
            Perm.VIEW_PARTICIPANTS,
            Perm.REPORT_ADVERSE_EVENTS,
            Perm.VIEW_AUDIT,
            Perm.EMERGENCY_UNBLIND,
            Perm.LOCK_DATABASE,
            Perm.CREATE_RELEASE,
        }
    ),
    RoleCode.DATA_MANAGER: frozenset(
        {Perm.VIEW_DASHBOARD, Perm.VIEW_PARTICIPANTS, Perm.MANAGE_QUERIES, Perm.VIEW_AUDIT, Perm.REPORT_ADVERSE_EVENTS}
    ),
    RoleCode.STATISTICIAN: frozenset(
        {Perm.VIEW_DASHBOARD, Perm.VIEW_PARTICIPANTS, Perm.MANAGE_RANDOMISATION_LIST, Perm.CREATE_RELEASE}
    ),
    RoleCode.ADMIN: frozenset({Perm.VIEW_DASHBOARD, Perm.VIEW_AUDIT, Perm.CONFIGURE_TRIAL, Perm.MANAGE_STAFF}),
}

# Shipped defaults for the per-trial Role rows (WalkBack's: coordinators and physiotherapists
# see arms; investigators, data managers and statisticians are blinded until lock). Whether a role
# needs a second factor is the preset's choice (WalkBack's in presets/walkback.py).
DEFAULT_ROLE_SETTINGS: dict[str, dict[str, bool]] = {
    RoleCode.COORDINATOR: {
        "sees_allocation": True,
        "sees_allocation_after_lock": True,
        "trial_wide": False,
        "requires_two_factor": False,
    },
    RoleCode.PHYSIOTHERAPIST: {
        "sees_allocation": True,
        "sees_allocation_after_lock": True,
        "trial_wide": False,
        "requires_two_factor": False,
    },
    RoleCode.INVESTIGATOR: {
        "sees_allocation": False,
        "sees_allocation_after_lock": True,
        "trial_wide": True,
        "requires_two_factor": False,
    },
    RoleCode.DATA_MANAGER: {
        "sees_allocation": False,
        "sees_allocation_after_lock": False,
        "trial_wide": True,
        "requires_two_factor": False,
    },
    RoleCode.STATISTICIAN: {
        "sees_allocation": False,
        "sees_allocation_after_lock": True,
        "trial_wide": True,
        "requires_two_factor": False,
    },
    RoleCode.ADMIN: {
        "sees_allocation": False,
        "sees_allocation_after_lock": False,
        "trial_wide": True,
        "requires_two_factor": False,
    },
}


@dataclass(frozen=True)
class Access:
    """What one user may do in one trial, computed once per request."""

    role: str | None
    perms: frozenset[Perm]
    trial_wide: bool
    sees_allocation: bool
    site_ids: frozenset[int]
    requires_two_factor: bool = False

    @property
    def is_staff_member(self) -> bool:
        return self.role is not None


NO_ACCESS = Access(role=None, perms=frozenset(), trial_wide=False, sees_allocation=False, site_ids=frozenset())
_CACHE_ATTR = "_trial_access"


def access_for(user: Any, trial: Trial | None) -> Access:
    """Compute (and cache on the user object) what ``user`` may do in ``trial``.

    The cache is keyed by the trial and its lock state as the given trial object has it: whether
    a role sees arms changes with the lock, so an answer worked out from a trial loaded before the
    lock is never handed out for one loaded after it (one process that locks and then releases)."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return NO_ACCESS
    cache: dict[tuple[int, dt.datetime | None] | None, Access] = user.__dict__.setdefault(_CACHE_ATTR, {})
    key = (trial.pk, trial.data_locked_at) if trial else None
    if key in cache:
        return cache[key]
    profile = StaffProfile.objects.filter(user_id=user.pk).prefetch_related("sites").first()
    if profile is None:
        access = _superuser_access(trial) if getattr(user, "is_superuser", False) else NO_ACCESS
    else:
        role_row = Role.objects.filter(trial=trial, code=profile.role).first() if trial else None
        defaults = DEFAULT_ROLE_SETTINGS[profile.role]
        locked = bool(trial and trial.data_locked_at)
        if role_row is not None:
            sees = role_row.sees_allocation_after_lock if locked else role_row.sees_allocation
            trial_wide = role_row.trial_wide
            two_factor = role_row.requires_two_factor
        else:
            sees = defaults["sees_allocation_after_lock"] if locked else defaults["sees_allocation"]
            trial_wide = defaults["trial_wide"]
            two_factor = defaults["requires_two_factor"]
        site_ids = frozenset(s.pk for s in profile.sites.all() if trial is None or s.trial_id == trial.pk)
        access = Access(
            role=profile.role,
            perms=ROLE_PERMISSIONS[profile.role],
            trial_wide=trial_wide,
            sees_allocation=sees,
            site_ids=site_ids,
            requires_two_factor=two_factor,
        )
    cache[key] = access
    return access


def _superuser_access(trial: Trial | None) -> Access:
    # The emergency account (createsuperuser on the server, no staff profile) acts as an
    # administrator: configuration, staff and the audit, blinded, no participant data. Its
    # superuser flag opens nothing more: admin holds configuration only (trial.adminsite), and its
    # logins and admin changes are security events of their own.
    defaults = DEFAULT_ROLE_SETTINGS[RoleCode.ADMIN]
    role_row = Role.objects.filter(trial=trial, code=RoleCode.ADMIN).first() if trial else None
    return Access(
        role=RoleCode.ADMIN,
        perms=ROLE_PERMISSIONS[RoleCode.ADMIN],
        trial_wide=True,
        sees_allocation=defaults["sees_allocation"],
        site_ids=frozenset(),
        requires_two_factor=role_row.requires_two_factor if role_row else defaults["requires_two_factor"],
    )


def forget(user: Any) -> None:
    """Drop the cached access (after a role or site change in the same request)."""
    user.__dict__.pop(_CACHE_ATTR, None)


def has_perm(user: Any, perm: Perm, *, trial: Trial | None) -> bool:
    return perm in access_for(user, trial).perms


def can_see_allocation(user: Any, *, trial: Trial | None) -> bool:
    return access_for(user, trial).sees_allocation


def visible_sites(user: Any, *, trial: Trial) -> QuerySet[Site]:
    access = access_for(user, trial)
    sites = Site.objects.filter(trial=trial)
    if not access.is_staff_member:
        return sites.none()
    if access.trial_wide:
        return sites
    return sites.filter(pk__in=access.site_ids)


def may_see_site(user: Any, *, trial: Trial, site_id: int | None) -> bool:
    access = access_for(user, trial)
    if not access.is_staff_member:
        return False
    return access.trial_wide or site_id in access.site_ids


# --- The checks every service and page makes -------------------------------------------------

NOT_YOUR_SITE = "This participant is at a site you do not work at."


def require(
    user: Any, *perms: Perm, trial: Trial, site_id: int | None = None, message: str = "Your role may not do this."
) -> None:
    """Refuse (``NotAllowed``, a 403 on pages and in the API) unless ``user`` holds one of ``perms``
    on ``trial`` and, when ``site_id`` is given, works at that site. Services call this."""
    held = access_for(user, trial).perms
    if not any(perm in held for perm in perms):
        raise NotAllowed(message)
    if site_id is not None and not may_see_site(user, trial=trial, site_id=site_id):
        raise NotAllowed(NOT_YOUR_SITE)


def page_trial(request: HttpRequest, *perms: Perm, message: str = "Your role may not do this.") -> Trial:
    """The trial of a staff page, if the user holds one of ``perms`` (any role, with none given):
    404 when no trial is configured, 403 otherwise. Views call this."""
    trial = getattr(request, "trial", None)
    if not trial:
        raise Http404("No trial is configured yet.")
    if perms and not any(perm in access_for(request.user, trial).perms for perm in perms):
        raise PermissionDenied(message)
    return trial
