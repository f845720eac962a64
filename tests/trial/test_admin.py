"""Django admin is a configuration tool for the admin role, gated by ``trial.access``: no superuser
flag, no clinical record, no audit browser, no account passwords or API tokens, no free-form task
scheduling, no self-promotion; the real superuser (createsuperuser) is an audited emergency account."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.factories import PASSWORD, UserFactory
from trial import services
from trial.adminsite import AccessModelAdmin
from trial.errors import NotAllowed
from trial.models import SecurityEvent, SecurityEventKind, StaffProfile, Trial

# What admin offers: the trial's configuration and staff roles, and beat's schedule. Nothing else.
CONFIGURATION_MODELS = {
    "trial.trial",
    "trial.site",
    "trial.arm",
    "trial.stratificationfactor",
    "trial.eligibilitycriterion",
    "trial.role",
    "trial.staffprofile",
    "trial.trialcontact",
    "participants.consentdocument",
    "followup.schedulerule",
    "followup.instrumentversion",
    "followup.outcomepolicy",
    "closeout.economicpolicy",
    "messaging.messagepolicy",
    "messaging.messagetemplate",
    "safety.safetypolicy",
    "intervention.interventionpolicy",
    "intervention.sessionplan",
    "intervention.workinghours",
    "intervention.extraslot",
    "intervention.leave",
    "intervention.holiday",
    "django_celery_beat.periodictask",
    "django_celery_beat.intervalschedule",
    "django_celery_beat.crontabschedule",
}
# Read-only lists for staff managers: who holds API tokens (never a key) and sign-in lockouts.
STAFF_MANAGEMENT_LISTS = {"trial.apitoken", "axes.accessattempt"}


@pytest.fixture
def admin_client(client: Client, make_staff: Any) -> Client:
    client.force_login(make_staff("admin"))
    return client


@pytest.fixture
def superuser(db: Any) -> Any:
    """The emergency account, as ``createsuperuser`` makes it: no staff profile."""
    return get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)


def test_the_admin_role_is_staff_but_never_a_superuser(make_staff: Any, walkback: Trial) -> None:
    user = make_staff("admin")
    assert (user.is_staff, user.is_superuser) == (True, False)
    physio = make_staff("physiotherapist", sites=["SYD"])
    services.staff_change_role(trial=walkback, profile=physio.staff, role="admin", site_codes=[], reason="Runs it", by=user)
    physio.refresh_from_db()
    assert (physio.is_staff, physio.is_superuser) == (True, False)


def test_admin_lists_configuration_models_only(admin_client: Client) -> None:
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == CONFIGURATION_MODELS | STAFF_MANAGEMENT_LISTS
    assert all(isinstance(model_admin, AccessModelAdmin) for model_admin in admin.site._registry.values())
    index = admin_client.get("/admin/").content.decode()
    for absent in ("/admin/auth/", "/admin/pghistory/", "/admin/authtoken/", "/admin/trial/securityevent/"):
        assert f'href="{absent}' not in index


@pytest.mark.parametrize(
    "url",
    [
        "/admin/pghistory/events/",
        "/admin/pghistory/",
        "/admin/auth/user/",
        "/admin/auth/group/",
        "/admin/authtoken/tokenproxy/",
        "/admin/trial/securityevent/",
        "/admin/trial/allocation/",
        "/admin/intervention/session/",
        "/admin/django_celery_beat/clockedschedule/",
        "/admin/django_celery_beat/periodictask/add/",
    ],
)
def test_audit_accounts_tokens_and_clinical_records_are_not_in_admin(admin_client: Client, url: str) -> None:
    assert admin_client.get(url).status_code in (403, 404)


def test_no_admin_page_sets_a_password_or_shows_a_secret(admin_client: Client, make_staff: Any) -> None:
    physio = make_staff("physiotherapist", sites=["SYD"])
    assert admin_client.get(f"/admin/auth/user/{physio.pk}/password/").status_code == 404
    # Admin's own password page is ours: it asks for the old password and is audited.
    assert admin_client.get("/admin/password_change/")["Location"] == "/accounts/password/"
    secrets = [physio.password]
    if "rest_framework.authtoken" in settings.INSTALLED_APPS:
        from rest_framework.authtoken.models import Token

        secrets.append(Token.objects.create(user=physio).key)
    pages = ["/admin/"] + [f"/admin/{model._meta.app_label}/{model._meta.model_name}/" for model in admin.site._registry]
    pages.append(f"/admin/trial/staffprofile/{physio.staff.pk}/change/")
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert not any(secret in response.content.decode() for secret in secrets), url


def test_admin_is_refused_to_every_other_role(client: Client, make_staff: Any) -> None:
    for role, sites in [("coordinator", ["SYD"]), ("investigator", []), ("data_manager", []), ("statistician", [])]:
        client.force_login(make_staff(role, sites=sites))
        assert client.get("/admin/").status_code == 302, role  # to admin's login: no permission
        assert client.get("/admin/trial/site/").status_code == 302, role


def test_a_django_staff_flag_alone_opens_nothing(client: Client, walkback: Trial) -> None:
    client.force_login(UserFactory(is_staff=True))
    assert client.get("/admin/").status_code == 302


# --- Configuration of the features ------------------------------------------------------------


def test_publishing_a_wording_adds_a_version_and_never_edits_one(admin_client: Client, walkback: Trial) -> None:
    from messaging.models import MessageTemplate

    first = MessageTemplate.objects.filter(trial=walkback, code="invitation", channel="email").get()
    response = admin_client.post(
        "/admin/messaging/messagetemplate/add/",
        {"trial": walkback.pk, "code": "invitation", "channel": "email", "subject": "New", "body": "Hello {{ link }}"},
    )
    assert response.status_code == 302
    assert list(
        MessageTemplate.objects.filter(trial=walkback, code="invitation", channel="email").values_list("version", "subject")
    ) == [(2, "New"), (1, first.subject)]
    admin_client.post(f"/admin/messaging/messagetemplate/{first.pk}/change/", {"subject": "Edited"})
    first.refresh_from_db()
    assert first.subject != "Edited"
    broken = admin_client.post(
        "/admin/messaging/messagetemplate/add/",
        {"trial": walkback.pk, "code": "invitation", "channel": "email", "subject": "x", "body": "{% if %}"},
        follow=True,
    )
    assert "not valid" in broken.content.decode()


def test_a_change_to_an_untracked_policy_is_in_the_audit_trail(admin_client: Client, walkback: Trial) -> None:
    from messaging.models import MessagePolicy

    policy = MessagePolicy.objects.get(trial=walkback)
    data = {
        "trial": walkback.pk,
        "send_hour": 11,
        "quiet_start": policy.quiet_start,
        "quiet_end": policy.quiet_end,
        "channels": policy.channels,
        "max_attempts": policy.max_attempts,
        "lost_to_followup_missed": policy.lost_to_followup_missed,
        "closing_soon_days": policy.closing_soon_days,
        "link_requests_per_day": policy.link_requests_per_day,
        **({"welcome_message": "on"} if policy.welcome_message else {}),
    }
    assert admin_client.post(f"/admin/messaging/messagepolicy/{policy.pk}/change/", data).status_code == 302
    event = SecurityEvent.objects.filter(kind=SecurityEventKind.CONFIGURATION, detail__record="messaging.messagepolicy").get()
    assert (event.username, event.detail["before"], event.detail["after"]) == (
        "admin-all",
        {"send_hour": "10"},
        {"send_hour": "11"},
    )


# --- Periodic tasks ----------------------------------------------------------------------------


@pytest.fixture
def heartbeat_task(walkback: Trial) -> PeriodicTask:
    services.periodic_tasks_sync()
    return PeriodicTask.objects.get(task="trial.heartbeat")


def test_a_periodic_task_cannot_be_added_or_deleted(admin_client: Client, heartbeat_task: PeriodicTask) -> None:
    assert admin_client.get("/admin/django_celery_beat/periodictask/add/").status_code == 403
    url = f"/admin/django_celery_beat/periodictask/{heartbeat_task.pk}/delete/"
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert PeriodicTask.objects.filter(pk=heartbeat_task.pk).exists()


def test_a_periodic_task_is_paused_and_re_timed_but_what_it_runs_is_fixed(
    admin_client: Client, heartbeat_task: PeriodicTask
) -> None:
    IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)  # an equal one added in admin
    every_five = IntervalSchedule.objects.create(every=300, period=IntervalSchedule.SECONDS)
    url = f"/admin/django_celery_beat/periodictask/{heartbeat_task.pk}/change/"
    response = admin_client.post(
        url,
        {"interval": every_five.pk, "crontab": "", "task": "trial.run_quality_checks", "args": '["x"]', "name": "Evil"},
    )
    assert response.status_code == 302
    heartbeat_task.refresh_from_db()
    assert (heartbeat_task.enabled, heartbeat_task.interval_id) == (False, every_five.pk)
    assert (heartbeat_task.task, heartbeat_task.args, heartbeat_task.name) == (
        "trial.heartbeat",
        "[]",
        "Heartbeat (worker and beat alive)",
    )
    event = SecurityEvent.objects.filter(kind=SecurityEventKind.CONFIGURATION).latest("created_at")
    assert event.detail["task"] == heartbeat_task.name
    assert event.detail["before"]["enabled"] is True and event.detail["after"]["enabled"] is False
    # The next deploy's sync keeps the admin's choice of when (and whether) it runs.
    services.periodic_tasks_sync()
    heartbeat_task.refresh_from_db()
    assert (heartbeat_task.enabled, heartbeat_task.interval_id) == (False, every_five.pk)


def test_a_periodic_task_needs_exactly_one_schedule(admin_client: Client, heartbeat_task: PeriodicTask) -> None:
    url = f"/admin/django_celery_beat/periodictask/{heartbeat_task.pk}/change/"
    response = admin_client.post(url, {"enabled": "on", "interval": "", "crontab": ""})
    assert response.status_code == 200  # the form says why
    heartbeat_task.refresh_from_db()
    assert heartbeat_task.interval is not None


# --- Staff management --------------------------------------------------------------------------


def test_an_admin_cannot_change_their_own_role(admin_client: Client, make_staff: Any, walkback: Trial) -> None:
    me = StaffProfile.objects.get(user__username="admin-all")
    with pytest.raises(NotAllowed, match="your own role"):
        services.staff_change_role(trial=walkback, profile=me, role="investigator", site_codes=[], reason="x", by=me.user)
    url = f"/admin/trial/staffprofile/{me.pk}/change/"
    response = admin_client.post(url, {"role": "investigator", "sites": [], "timezone": "", "reason": "Promote me"})
    assert response.status_code == 403
    me.refresh_from_db()
    assert me.role == "admin"


def test_the_staff_page_changes_another_members_role_sites_and_time_zone(admin_client: Client, make_staff: Any) -> None:
    physio = make_staff("physiotherapist", sites=["SYD"])
    sites = dict(physio.staff.sites.model.objects.values_list("code", "pk"))
    url = f"/admin/trial/staffprofile/{physio.staff.pk}/change/"
    response = admin_client.post(
        url, {"role": "coordinator", "sites": [sites["BNE"]], "timezone": "Australia/Brisbane", "reason": "Moved to Brisbane"}
    )
    assert response.status_code == 302
    physio.staff.refresh_from_db()
    assert (physio.staff.role, physio.staff.timezone) == ("coordinator", "Australia/Brisbane")
    assert list(physio.staff.sites.values_list("code", flat=True)) == ["BNE"]


def test_only_a_staff_manager_changes_roles(make_staff: Any, walkback: Trial) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    physio = make_staff("physiotherapist", sites=["SYD"])
    with pytest.raises(NotAllowed):
        services.staff_change_role(trial=walkback, profile=physio.staff, role="admin", site_codes=[], reason="x", by=coordinator)
    with pytest.raises(NotAllowed):
        services.staff_create(trial=walkback, username="new", role="admin", password=PASSWORD, by=coordinator)
    physio.staff.refresh_from_db()
    assert physio.staff.role == "physiotherapist"


# --- The emergency superuser ---------------------------------------------------------------------


def test_a_superuser_login_is_audited(client: Client, superuser: Any, walkback: Trial) -> None:
    response = client.post("/accounts/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302
    event = SecurityEvent.objects.get(kind=SecurityEventKind.SUPERUSER, detail__action="login")
    assert (event.user, event.detail["path"]) == (superuser, "/accounts/login/")
    request = SecurityEvent.objects.get(kind=SecurityEventKind.SUPERUSER, detail__action="request")
    assert (request.detail["method"], request.detail["status"]) == ("POST", 302)


def test_every_request_of_the_superuser_is_audited_page_and_api(client: Client, superuser: Any, walkback: Trial) -> None:
    from rest_framework.test import APIClient

    client.force_login(superuser)
    client.get("/admin/trial/site/")
    api = APIClient()
    api.force_authenticate(superuser)
    api.get("/api/v1/me/")
    requests = SecurityEvent.objects.filter(kind=SecurityEventKind.SUPERUSER, detail__action="request").order_by("pk")
    assert [(e.detail["method"], e.detail["path"], e.detail["status"]) for e in requests] == [
        ("GET", "/admin/trial/site/", 200),
        ("GET", "/api/v1/me/", 200),
    ]


def test_a_staff_login_is_not_a_superuser_use(client: Client, make_staff: Any) -> None:
    make_staff("admin")
    client.post("/accounts/login/", {"username": "admin-all", "password": PASSWORD})
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.LOGIN).exists()
    assert not SecurityEvent.objects.filter(kind=SecurityEventKind.SUPERUSER).exists()


def test_a_superusers_admin_change_is_audited_and_sees_configuration_only(
    client: Client, superuser: Any, walkback: Trial
) -> None:
    client.force_login(superuser)
    for url in ("/admin/auth/user/", "/admin/pghistory/events/", "/admin/trial/securityevent/"):
        assert client.get(url).status_code == 404, url
    site = walkback.sites.get(code="SYD")
    response = client.post(
        f"/admin/trial/site/{site.pk}/change/",
        {"trial": walkback.pk, "code": "SYD", "name": "Sydney (renamed)", "timezone": site.timezone, "active": "on"},
    )
    assert response.status_code == 302
    event = SecurityEvent.objects.get(kind=SecurityEventKind.SUPERUSER, detail__action="admin: changed")
    assert (event.user, event.detail["action"], event.detail["record"], event.detail["id"]) == (
        superuser,
        "admin: changed",
        "trial.site",
        site.pk,
    )


def test_the_migration_demotes_admin_role_users_and_keeps_real_superusers(make_staff: Any, superuser: Any) -> None:
    migration = importlib.import_module("trial.migrations.0007_admins_are_not_superusers")
    admin_user = make_staff("admin")
    coordinator = make_staff("coordinator", sites=["SYD"])
    get_user_model().objects.filter(pk=admin_user.pk).update(is_superuser=True)  # as the old services made it
    migration.admins_are_not_superusers(apps, None)
    flags = dict(get_user_model().objects.values_list("username", "is_superuser"))
    assert flags == {admin_user.username: False, coordinator.username: False, "root": True}
