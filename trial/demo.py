"""Demo data: the WalkBack configuration and one staff member per role."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from trial import services
from trial.models import RoleCode
from trial.presets import WALKBACK

DEMO_PASSWORD_SUFFIX = "-walkback-demo"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    sites: str


DEMO_STAFF: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("coordinator", RoleCode.COORDINATOR, ("SYD", "NCL")),
    ("physio", RoleCode.PHYSIOTHERAPIST, ("SYD",)),
    ("investigator", RoleCode.INVESTIGATOR, ()),
    ("datamanager", RoleCode.DATA_MANAGER, ()),
    ("statistician", RoleCode.STATISTICIAN, ()),
    ("admin", RoleCode.ADMIN, ()),
)


@transaction.atomic
def demo_load() -> list[DemoLogin]:
    trial = services.trial_apply_preset(preset=WALKBACK)
    logins = []
    existing = set(get_user_model().objects.values_list("username", flat=True))
    for username, role, sites in DEMO_STAFF:
        password = f"{username}{DEMO_PASSWORD_SUFFIX}"
        if username not in existing:
            services.staff_create(trial=trial, username=username, role=role, password=password, site_codes=sites)
        logins.append(DemoLogin(username, password, role, f" at {', '.join(sites)}" if sites else " (all sites)"))
    return logins
