from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext

from trial import access
from trial.access import Perm


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The navigation a user's role allows."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "nav_role": None}
    trial = getattr(request, "trial", None)
    acc = access.access_for(user, trial)
    items = []
    if Perm.VIEW_DASHBOARD in acc.perms:
        items.append((gettext("Dashboard"), reverse("dashboard")))
    if Perm.VIEW_PARTICIPANTS in acc.perms:
        items.append((gettext("Screening"), reverse("screening-log")))
        items.append((gettext("Participants"), reverse("participant-list")))
    if Perm.ENTER_FOLLOWUP in acc.perms:
        items.append((gettext("Worklist"), reverse("followup-worklist")))
    if acc.perms & {Perm.DELIVER_SESSIONS, Perm.BOOK_SESSIONS}:  # coordinators book sessions too
        items.append((gettext("Agenda"), reverse("intervention-agenda")))
    if Perm.REPORT_ADVERSE_EVENTS in acc.perms:
        items.append((gettext("Safety"), reverse("safety-overview")))
    if acc.perms & {Perm.MANAGE_QUERIES, Perm.ENTER_FOLLOWUP}:
        items.append((gettext("Queries"), reverse("query-list")))
    if acc.perms & {Perm.LOCK_DATABASE, Perm.MANAGE_QUERIES}:
        items.append((gettext("Lock"), reverse("lock")))
    if Perm.CREATE_RELEASE in acc.perms:
        items.append((gettext("Releases"), reverse("releases")))
    if Perm.VIEW_AUDIT in acc.perms:
        items.append((gettext("Audit trail"), reverse("audit-log")))
    if Perm.CONFIGURE_TRIAL in acc.perms:
        items.append((gettext("Configuration"), reverse("admin:index")))
    items.append((gettext("API"), reverse("api-docs")))
    role_label = dict(access.RoleCode.choices).get(acc.role or "", None)
    return {"nav_items": items, "nav_role": role_label, "nav_trial": trial}
