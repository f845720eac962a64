from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from trial import services
from trial.models import StaffProfile, Trial


def test_create_staff_makes_a_user_with_role_and_sites(walkback: Trial, capsys) -> None:
    call_command(
        "create_staff", "maria", "--role", "coordinator", "--site", "SYD", "--site", "ncl", "--password", "a-long-passphrase"
    )
    profile = StaffProfile.objects.get(user__username="maria")
    assert profile.role == "coordinator"
    assert sorted(profile.sites.values_list("code", flat=True)) == ["NCL", "SYD"]
    assert profile.user.check_password("a-long-passphrase")
    assert "Created maria as coordinator (NCL, SYD)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "coordinator", "--site", "XXX", "--password", "a-long-passphrase"], "Unknown site code(s): XXX"),
        (["--role", "coordinator", "--password", "a-long-passphrase"], "give at least one --site"),
        (["--role", "investigator", "--password", "short"], "too weak"),
    ],
)
def test_create_staff_refuses_bad_input_with_a_clear_message(walkback: Trial, args, message) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("create_staff", "bob", *args)
    assert not get_user_model().objects.filter(username="bob").exists()


def test_create_staff_refuses_a_duplicate_username(walkback: Trial) -> None:
    call_command("create_staff", "ann", "--role", "statistician", "--password", "a-long-passphrase")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_staff", "ANN", "--role", "statistician", "--password", "a-long-passphrase")


def test_demo_creates_one_login_per_role_and_can_run_again(db, capsys) -> None:
    call_command("demo")
    call_command("demo")
    out = capsys.readouterr().out
    assert get_user_model().objects.count() == 6
    roles = set(StaffProfile.objects.values_list("role", flat=True))
    assert roles == {"coordinator", "physiotherapist", "investigator", "data_manager", "statistician", "admin"}
    assert "coordinator-walkback-demo" in out
    user = get_user_model().objects.get(username="physio")
    assert user.check_password("physio-walkback-demo")


def test_demo_prints_a_totp_secret_and_uri_for_each_role_that_needs_a_second_factor(db, capsys) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from presets.demo import demo_totp_secret

    call_command("demo")
    call_command("demo")  # the same secrets again: nothing to re-enter in an authenticator app
    out = capsys.readouterr().out
    for username in ("investigator", "datamanager", "statistician", "admin"):
        assert f"TOTP secret {demo_totp_secret(username)}" in out
        assert f"otpauth://totp/WalkBack%20trial%3A{username}?secret={demo_totp_secret(username)}" in out
        assert TOTPDevice.objects.filter(user__username=username, confirmed=True).count() == 1
    for username in ("coordinator", "physio"):
        assert f"TOTP secret {demo_totp_secret(username)}" not in out
        assert not TOTPDevice.objects.filter(user__username=username).exists()


def test_demo_has_people_at_every_stage(db) -> None:
    from participants.models import Participant, Screening
    from trial.models import Allocation

    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    outcomes = set(Screening.objects.values_list("outcome", flat=True))
    assert outcomes == {"ineligible", "eligible", "declined", "enrolled"}
    assert set(Participant.objects.values_list("status", flat=True)) == {"enrolled", "randomised", "withdrawn"}
    assert set(Allocation.objects.values_list("arm__code", flat=True)) == {"walking", "control"}
    assert Participant.objects.count() == 7


def test_demo_has_follow_up_under_way_with_messages_sent(db) -> None:
    from django.core import mail

    from followup.models import Occurrence
    from messaging.models import Message

    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    open_ = Occurrence.objects.filter(status="open").values_list("instrument", "month")
    assert set(open_) == {("timepoint", 3), ("baseline", 0)}  # the baseline of the one waiting to be randomised
    answered = Occurrence.objects.filter(status="completed").values_list("instrument", "month")
    assert set(answered) == {("monthly", 1), ("monthly", 3), ("baseline", 0)}
    assert Occurrence.objects.filter(instrument="baseline", status="completed").count() == 6  # everyone randomised
    assert Occurrence.objects.filter(status="missed").count() == 2  # months 1 and 2 of the earlier of the two
    sent = Message.objects.filter(status="sent")
    assert sent.filter(occurrence__isnull=False).exists() and sent.filter(session__isnull=False).exists()
    assert len([m for m in mail.outbox if m.to[0].endswith("@example.org")]) == sent.filter(channel="email").count()


def test_demo_has_intervention_sessions_at_every_stage_and_a_diary(db) -> None:
    from intervention.models import Prescription, Session, Walk, WorkingHours

    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert WorkingHours.objects.filter(physiotherapist=None).count() == 5 * 5 * 2
    statuses = set(Session.objects.values_list("status", flat=True))
    assert {"planned", "booked", "attended", "no_show"} <= statuses
    assert Prescription.objects.exists() and Walk.objects.count() >= 5
    assert not Session.objects.filter(participant__allocation__arm__code="control").exists()


def test_demo_has_adverse_events_at_every_status_and_each_outcome_state(db, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from django.core import mail

    from followup.models import Outcome
    from safety.models import AdverseEvent

    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert set(AdverseEvent.objects.values_list("status", flat=True)) == {"pending", "open", "resolved", "dismissed"}
    assert AdverseEvent.objects.filter(serious=True).count() == 1
    assert any(m.to == ["safety@walkback.test"] for m in mail.outbox)
    primary = Outcome.objects.filter(code="activity_limiting")
    assert primary.filter(event=True).exists()
    assert {"last_questionnaire", "withdrawal"} <= set(primary.filter(event=False).values_list("censor_reason", flat=True))


def test_check_heartbeat_fails_until_the_pipeline_has_run(db) -> None:
    with pytest.raises(CommandError, match="No heartbeat recorded yet"):
        call_command("check_heartbeat")
    services.heartbeat_record(name="worker", at=timezone.now() - dt.timedelta(minutes=10))
    with pytest.raises(CommandError, match="limit 180"):
        call_command("check_heartbeat")
    services.heartbeat_record(name="worker")
    call_command("check_heartbeat")
