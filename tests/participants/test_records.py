"""Records by allow-list: a record's history (and a data query on it) answers only for a model with
a rule in ``participants.records``; every other model answers 404 to everyone, as a record that
does not exist does."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.test import Client
from django_celery_beat.models import PeriodicTask

from closeout.queries import selectors as query_selectors
from closeout.queries import services as query_services
from participants import blinding, records
from tests.factories import ParticipantFactory
from trial import services
from trial.errors import ApplicationError
from trial.models import Heartbeat, Notification, RoleCode, StaffProfile, TrackedUser, Trial

ROLES: list[tuple[str, list[str]]] = [
    ("coordinator", ["SYD"]),
    ("physiotherapist", ["SYD"]),
    ("investigator", []),
    ("data_manager", []),
    ("statistician", []),
    ("admin", []),
]


@pytest.fixture
def everyone(make_staff: Any) -> list[Any]:
    """One user of each role, and the emergency superuser."""
    users = [make_staff(role, sites=sites) for role, sites in ROLES]
    return [*users, get_user_model().objects.create_superuser("root", "root@example.org", "x-very-long-passphrase")]


def test_every_model_has_a_rule_or_is_refused_to_everyone(walkback: Trial, everyone: list[Any]) -> None:
    labels = {model._meta.label_lower for model in apps.get_models()}
    assert set(records.rules()) <= labels, "a rule names a model that does not exist (moved or renamed?)"
    unlisted = [model for model in apps.get_models() if records.rule_for(model._meta.label_lower) is None]
    assert unlisted, "the sealed list, event tables and sessions have no rule"
    for model in unlisted:
        for user in everyone:
            assert not blinding.can_view_record(user, model(), trial=walkback), (model._meta.label_lower, user.username)


@pytest.mark.parametrize(
    "label",
    [
        "trial.randomisationslot",
        "trial.randomisationlist",
        "trial.stratumcursor",
        "trial.heartbeat",
        "trial.userevent",
        "trial.allocationevent",
        "participants.accesslink",
        "followup.responsedraft",  # a participant's unsent answers: not a record until submitted
        "pghistory.events",
        "pghistory.context",
        "sessions.session",
        "admin.logentry",
        "django_celery_beat.periodictask",
    ],
)
def test_the_sealed_list_the_audit_tables_and_framework_models_have_no_rule(label: str) -> None:
    assert records.rule_for(label) is None


def test_staff_accounts_are_for_staff_managers_and_auditors_only(walkback: Trial, everyone: list[Any]) -> None:
    account = TrackedUser.objects.get(username="coordinator-SYD")
    for user in everyone:
        role = StaffProfile.objects.filter(user=user).values_list("role", flat=True).first() or RoleCode.ADMIN
        expected = role in {RoleCode.ADMIN, RoleCode.INVESTIGATOR, RoleCode.DATA_MANAGER}
        for obj in (account, get_user_model().objects.get(pk=account.pk), StaffProfile.objects.get(user=account)):
            assert blinding.can_view_record(user, obj, trial=walkback) is expected, (obj._meta.label_lower, user.username)


def test_a_physiotherapist_gets_404_for_accounts_and_another_sites_alert(
    client: Client, walkback: Trial, make_staff: Any
) -> None:
    admin = make_staff("admin")
    physio = make_staff("physiotherapist", sites=["SYD"])
    alert = Notification.objects.create(
        key="sae:1", kind="sae", recipients=["safety@example.org"], subject="Serious adverse event at BNE", body="..."
    )
    client.force_login(physio)
    for url in (
        f"/history/trial/trackeduser/{admin.pk}/",
        f"/history/auth/user/{admin.pk}/",
        f"/history/trial/staffprofile/{admin.staff.pk}/",
        f"/history/trial/notification/{alert.pk}/",
        f"/history/trial/trackeduser/{physio.pk}/",  # not even one's own account: the rule is by role
    ):
        assert client.get(url).status_code == 404, url
    # The trial's shape stays open to every staff member.
    assert client.get(f"/history/trial/arm/{walkback.arms.first().pk}/").status_code == 200  # type: ignore[union-attr]

    client.force_login(admin)
    assert client.get(f"/history/trial/trackeduser/{physio.pk}/").status_code == 200


def test_a_notification_is_open_to_its_recipients_and_auditors(walkback: Trial, make_staff: Any) -> None:
    physio = make_staff("physiotherapist", sites=["SYD"])
    physio.email = "physio@example.org"
    physio.save()
    alert = Notification.objects.create(key="k", kind="agenda", recipients=["Physio@example.org"], subject="s", body="b")
    other = Notification.objects.create(key="k2", kind="sae", recipients=["safety@example.org"], subject="s", body="b")
    assert blinding.can_view_record(physio, alert, trial=walkback)
    assert not blinding.can_view_record(physio, other, trial=walkback)
    assert blinding.can_view_record(make_staff("investigator"), other, trial=walkback)


def test_unlisted_rows_that_exist_answer_404_even_to_an_administrator(client: Client, walkback: Trial, make_staff: Any) -> None:
    services.periodic_tasks_sync()
    beat = Heartbeat.objects.create(name="worker", last_seen="2026-03-02T00:00:00Z")
    client.force_login(make_staff("admin"))
    for url in (
        f"/history/trial/heartbeat/{beat.pk}/",
        f"/history/django_celery_beat/periodictask/{PeriodicTask.objects.first().pk}/",  # type: ignore[union-attr]
        f"/history/contenttypes/contenttype/{1}/",
        "/history/trial/randomisationslot/1/",
    ):
        assert client.get(url).status_code == 404, url


def test_moved_addresses_still_redirect_to_records_that_are_allowed(client: Client, walkback: Trial, make_staff: Any) -> None:
    from intervention.models import SessionPlan

    plan = SessionPlan.objects.filter(trial=walkback).first()
    assert plan is not None
    client.force_login(make_staff("admin"))
    moved = client.get(f"/history/participants/sessionplan/{plan.pk}/")
    assert (moved.status_code, moved["Location"]) == (301, f"/history/intervention/sessionplan/{plan.pk}/")
    assert client.get(moved["Location"]).status_code == 200
    client.force_login(make_staff("physiotherapist", sites=["SYD"]))
    assert client.get(moved["Location"]).status_code == 404  # configuration is for configuring and auditing roles


def test_a_data_query_is_raised_only_on_a_record_whose_rule_allows_it(walkback: Trial, make_staff: Any) -> None:
    manager = make_staff("data_manager")
    participant = ParticipantFactory(site=walkback.sites.get(code="SYD"))
    account = TrackedUser.objects.get(username="data_manager-all")
    assert query_selectors.record_get(user=manager, trial=walkback, value=f"participants.participant:{participant.pk}")
    for value in (f"trial.trackeduser:{account.pk}", f"auth.user:{account.pk}", f"trial.arm:{walkback.arms.first().pk}"):  # type: ignore[union-attr]
        assert query_selectors.record_get(user=manager, trial=walkback, value=value) is None, value
    with pytest.raises(ApplicationError, match="clinical records"):
        query_services.query_raise(trial=walkback, record=account, field="email", text="Check?", by=manager)


def test_the_query_api_answers_an_unlisted_record_as_a_missing_one(api: Any, walkback: Trial, make_staff: Any) -> None:
    manager = make_staff("data_manager")
    api.force_authenticate(manager)
    answers = [
        api.post("/api/v1/queries/", {"record": record, "field": "email", "text": "Check?"}, format="json")
        for record in (f"trial.trackeduser:{manager.pk}", f"auth.user:{manager.pk}", "participants.participant:999999")
    ]
    assert [a.status_code for a in answers] == [400, 400, 400]
    assert len({str(a.json()) for a in answers}) == 1  # the same answer: nothing tells them apart
