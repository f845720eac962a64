from __future__ import annotations

import pghistory
import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from participants import blinding
from tests.factories import ParticipantFactory
from trial import audit, services
from trial.models import Arm, ArmEvent, SecurityEvent, SecurityEventKind, Trial, UserEvent


def test_a_service_change_records_who_what_when_and_why(walkback: Trial, make_staff) -> None:
    admin = make_staff("admin")
    arm = walkback.arms.get(code="control")
    with pghistory.context(user=admin.pk):
        services.arm_update(arm=arm, name="Usual care", ratio=1, reason="Protocol v2 wording")

    entries = blinding.record_history(obj=arm, user=admin, trial=walkback)
    last = entries[-1]
    assert last.label == "update"
    assert last.who == admin.username
    assert last.reason == "Protocol v2 wording"
    assert ("name", "No intervention (control)", "Usual care") in last.changes
    assert last.at is not None


def test_bulk_updates_that_bypass_services_are_still_caught(walkback: Trial) -> None:
    before = ArmEvent.objects.count()
    Arm.objects.filter(trial=walkback).update(description="bulk edit")
    assert ArmEvent.objects.count() == before + 2


def test_audit_rows_can_be_neither_changed_nor_deleted(walkback: Trial) -> None:
    with pytest.raises(DatabaseError), transaction.atomic():
        ArmEvent.objects.update(name="rewritten history")
    with pytest.raises(DatabaseError), transaction.atomic():
        ArmEvent.objects.all().delete()
    event = audit.security_event_record(kind=SecurityEventKind.DOWNLOAD, username="x")
    with pytest.raises(DatabaseError), transaction.atomic():
        SecurityEvent.objects.filter(pk=event.pk).update(username="y")
    assert SecurityEvent.objects.get(pk=event.pk).username == "x"


def test_login_logout_and_failed_login_are_in_the_trail(client, make_staff, password) -> None:
    user = make_staff("coordinator", sites=["SYD"])
    client.post(reverse("login"), {"username": user.username, "password": "wrong"})
    client.post(reverse("login"), {"username": user.username, "password": password})
    client.post(reverse("logout"))
    kinds = list(SecurityEvent.objects.order_by("created_at", "id").values_list("kind", "username"))
    assert (SecurityEventKind.LOGIN_FAILED, user.username) in kinds
    assert kinds[-2:] == [(SecurityEventKind.LOGIN, user.username), (SecurityEventKind.LOGOUT, user.username)]
    assert "wrong" not in str(list(SecurityEvent.objects.values_list("detail", flat=True)))


def test_password_hashes_never_enter_the_trail(make_staff) -> None:
    user = make_staff("coordinator", sites=["SYD"])
    user.set_password("another-long-password")
    user.save()
    assert UserEvent.objects.filter(pgh_obj=user).exists()
    assert not hasattr(UserEvent, "password")


def test_role_changes_are_recorded_with_before_after_and_reason(walkback: Trial, make_staff) -> None:
    admin = make_staff("admin")
    user = make_staff("coordinator", sites=["SYD"])
    services.staff_change_role(
        trial=walkback, profile=user.staff, role="physiotherapist", site_codes=["NCL"], reason="Moved clinic", by=admin
    )
    event = SecurityEvent.objects.filter(kind=SecurityEventKind.ROLE_CHANGED, username=user.username).latest("created_at")
    assert event.detail["before"] == {"role": "coordinator", "sites": ["SYD"]}
    assert event.detail["after"] == {"role": "physiotherapist", "sites": ["NCL"]}
    assert event.user == admin


def test_staff_open_the_history_of_a_record_they_can_see(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    here = ParticipantFactory(site=walkback.sites.get(code="SYD"))
    there = ParticipantFactory(site=walkback.sites.get(code="BNE"))
    ok = client.get(reverse("record-history", args=["participants", "participant", here.pk]))
    assert ok.status_code == 200
    assert here.study_id in ok.content.decode()
    hidden = client.get(reverse("record-history", args=["participants", "participant", there.pk]))
    assert hidden.status_code == 404
    assert there.study_id not in hidden.content.decode()


def test_history_hides_the_arm_from_blinded_roles(client, walkback: Trial, make_staff) -> None:
    walking = walkback.arms.get(code="walking")
    participant = ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walking)
    participant_url = reverse("record-history", args=["participants", "participant", participant.pk])
    allocation_url = reverse("record-history", args=["trial", "allocation", participant.allocation.pk])

    client.force_login(make_staff("investigator"))
    assert client.get(participant_url).status_code == 200
    assert "arm" not in client.get(participant_url).content.decode().split('data-testid="history"')[1]
    assert client.get(allocation_url).status_code == 404

    client.force_login(make_staff("coordinator", sites=["SYD"]))
    open_view = client.get(allocation_url)
    assert open_view.status_code == 200
    assert f"<code>arm_id</code>: {walking.pk}<" in open_view.content.decode()


def test_history_of_an_unknown_kind_of_record_is_a_404_not_a_500(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("admin"))
    assert client.get("/history/nope/nothing/1/").status_code == 404
    assert client.get(reverse("record-history", args=["trial", "arm", 999999])).status_code == 404


def test_history_and_the_audit_trail_give_times_in_the_trials_time_zone(client, walkback: Trial, make_staff) -> None:
    import zoneinfo

    participant = ParticipantFactory(site=walkback.sites.get(code="SYD"))
    coordinator = make_staff("coordinator", sites=["SYD"])
    created = blinding.record_history(obj=participant, user=coordinator, trial=walkback)[0].at  # the database's clock
    local = created.astimezone(zoneinfo.ZoneInfo(walkback.timezone))
    assert local.utcoffset() != created.utcoffset()  # the trial's zone is not UTC, or this test would prove nothing
    client.force_login(coordinator)
    page = client.get(reverse("record-history", args=["participants", "participant", participant.pk])).content.decode()
    assert f"When ({walkback.timezone})" in page and local.strftime("%Y-%m-%d %H:%M:%S") in page
    client.force_login(make_staff("data_manager"))
    assert f"When ({walkback.timezone})" in client.get(reverse("audit-log")).content.decode()


def test_the_audit_trail_downloads_as_csv_with_its_filters(client, walkback: Trial, make_staff) -> None:
    import csv
    import io

    manager = make_staff("data_manager")
    make_staff("coordinator", sites=["SYD"])  # staff creation is audited
    client.force_login(manager)
    page = client.get(reverse("audit-log"), {"kind": SecurityEventKind.ROLE_CHANGED}).content.decode()
    assert 'data-testid="csv-download"' in page
    response = client.get(reverse("audit-log"), {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == SecurityEvent.objects.count() > 0
    assert list(rows[0]) == ["when", "event", "user", "from", "detail"]
    assert rows[0]["when"].endswith(("+10:00", "+11:00"))  # the trial's zone (Sydney)
    client.force_login(make_staff("statistician", username="stan"))
    assert client.get(reverse("audit-log"), {"format": "csv"}).status_code == 403
