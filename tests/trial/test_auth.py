"""Sign-in as an attacker meets it: the second factor, the lockout, throttled password checks, and
API tokens that expire and can be revoked."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from closeout.datalock.services import database_lock
from tests.conftest import verify_session
from trial import services
from trial.audit import client_ip
from trial.errors import NotAllowed, TooManyAttempts
from trial.models import ApiToken, SecurityEvent, SecurityEventKind, Trial

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def code(device_or_secret: Any) -> str:
    """The device's current TOTP code."""
    key = base64.b32decode(device_or_secret) if isinstance(device_or_secret, str) else device_or_secret.bin_key
    return f"{TOTP(key).token():06d}"


@pytest.fixture
def clock() -> Any:
    """A clock the test moves on (codes are single-use per 30-second step; failures back off)."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def later(clock: Any, seconds: int = 60) -> None:
    clock.shift(dt.timedelta(seconds=seconds))


@pytest.fixture
def ivy(make_staff: Any) -> Any:
    return make_staff("investigator", username="ivy")


@pytest.fixture
def ivy_device(ivy: Any) -> TOTPDevice:
    return services.totp_device_provision(user=ivy, secret=SECRET)


def login(client: Any, username: str, password: str, otp_token: str = "", **extra: Any) -> Any:
    data = {"username": username, "password": password, "otp_token": otp_token}
    return client.post(reverse("login"), data, **extra)


# --- Two-factor: required per role -------------------------------------------------------------


def test_walkback_requires_a_second_factor_of_the_roles_that_read_blinded_data_trial_wide(walkback: Trial) -> None:
    required = set(walkback.roles.filter(requires_two_factor=True).values_list("code", flat=True))
    assert required == {"investigator", "data_manager", "statistician", "admin"}


def test_without_a_device_a_required_role_sees_only_the_set_up_page_and_logout(client, ivy, first_factor_login) -> None:
    first_factor_login(client, ivy)
    response = client.get("/participants/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/?next=")
    page = client.get("/accounts/two-factor/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Your role requires two-factor authentication" in body
    assert "otpauth://totp/" in body and "<svg" in body
    secret = re.search(r'data-testid="otp-secret">([A-Z2-7]+)<', body)
    assert secret and len(secret.group(1)) == 32
    api = client.get("/api/v1/me/")
    assert api.status_code == 403
    assert "two-factor" in api.json()["detail"]
    assert client.post(reverse("logout")).status_code == 302


def test_a_role_that_does_not_require_it_is_not_held_up(client, make_staff, first_factor_login) -> None:
    first_factor_login(client, make_staff("coordinator", sites=["SYD"]))
    assert client.get("/participants/").status_code == 200


def test_a_token_of_a_required_role_without_a_device_gets_403_saying_so(api: APIClient, ivy, password) -> None:
    token = api.post("/api/v1/auth/token/", {"username": "ivy", "password": password}, format="json").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.get("/api/v1/me/")
    assert response.status_code == 403
    assert response.json()["detail"].startswith("Your role requires two-factor authentication")


def test_setting_up_confirms_with_a_code_shows_recovery_codes_once_and_opens_the_site(
    client, ivy, first_factor_login, clock
) -> None:
    first_factor_login(client, ivy)
    client.get("/accounts/two-factor/")
    pending = TOTPDevice.objects.get(user=ivy, confirmed=False)
    wrong = client.post("/accounts/two-factor/", {"action": "confirm", "otp_token": "000000"})
    assert wrong.status_code == 200 and "That code is not right" in wrong.content.decode()
    later(clock)
    done = client.post("/accounts/two-factor/", {"action": "confirm", "otp_token": code(pending), "next": "/participants/"})
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", done.content.decode())
    assert len(codes) == 10
    assert client.get("/participants/").status_code == 200  # this session passed the second factor
    again = client.get("/accounts/two-factor/").content.decode()
    assert "two-factor authentication is <strong>on</strong>" in again.lower() or "is <strong>on</strong>" in again
    assert not any(c in again for c in codes)  # shown once only
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.TWO_FACTOR_ENABLED, user=ivy).exists()


def test_a_session_without_the_second_factor_is_asked_for_a_code(client, ivy, ivy_device, first_factor_login, clock) -> None:
    first_factor_login(client, ivy)
    assert client.get("/participants/")["Location"].startswith("/accounts/two-factor/")
    response = client.post("/accounts/two-factor/", {"action": "verify", "otp_token": code(ivy_device), "next": "/participants/"})
    assert response["Location"] == "/participants/"
    assert client.get("/participants/").status_code == 200


def test_removing_needs_the_password_or_a_code_and_ends_the_tokens(client, ivy, ivy_device, password) -> None:
    client.force_login(ivy)
    ApiToken.objects.create(user=ivy)
    refused = client.post("/accounts/two-factor/", {"action": "remove", "credential": "not-my-password"})
    assert "Enter your password or a current code" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=ivy).exists()
    client.post("/accounts/two-factor/", {"action": "remove", "credential": password})
    assert not TOTPDevice.objects.filter(user=ivy).exists()
    assert not ApiToken.objects.filter(user=ivy).exists()
    assert client.get("/participants/")["Location"].startswith("/accounts/two-factor/")  # required: set it up again


# --- The login form: one form, with otp_token ---------------------------------------------------


def test_login_without_the_code_fails_with_a_clear_message(client, ivy, ivy_device, password) -> None:
    response = login(client, "ivy", password)
    assert response.status_code == 200
    assert "Enter the 6-digit code from your authenticator app" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.LOGIN_FAILED, username="ivy").exists()


def test_login_with_a_wrong_code_fails_and_with_the_right_one_opens_the_site(client, ivy, ivy_device, password, clock) -> None:
    wrong = login(client, "ivy", password, "123456")
    assert "That code is not right" in wrong.content.decode()
    later(clock)
    right = login(client, "ivy", password, code(ivy_device))
    assert right.status_code == 302
    assert client.get("/participants/").status_code == 200


def test_the_code_field_is_ignored_for_staff_without_a_device(client, make_staff, password) -> None:
    make_staff("coordinator", sites=["SYD"], username="cora")
    assert login(client, "cora", password).status_code == 302


def test_a_recovery_code_signs_in_once(client, ivy, ivy_device, password, clock) -> None:
    client.force_login(ivy)
    client.post(reverse("logout"))
    _device, codes = services.two_factor_confirm(user=ivy, token=_pending_code(ivy, clock))
    assert login(client, "ivy", password, codes[0]).status_code == 302
    client.post(reverse("logout"))
    later(clock)
    reused = login(client, "ivy", password, codes[0])
    assert reused.status_code == 200 and "That code is not right" in reused.content.decode()
    assert StaticToken.objects.filter(device__user=ivy).count() == 9


def _pending_code(user: Any, clock: Any) -> str:
    pending = services.two_factor_setup_start(user=user)
    later(clock)
    return code(pending)


def test_the_admin_signs_in_through_the_staff_login(client) -> None:
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- The API token endpoint and the second factor ------------------------------------------------


def test_token_endpoint_asks_a_user_with_a_device_for_the_code(api: APIClient, ivy, ivy_device, password, clock) -> None:
    missing = api.post("/api/v1/auth/token/", {"username": "ivy", "password": password}, format="json")
    assert missing.status_code == 401
    assert "otp" in missing.json()["errors"]
    later(clock)
    wrong = api.post("/api/v1/auth/token/", {"username": "ivy", "password": password, "otp": "999999"}, format="json")
    assert wrong.status_code == 401 and "otp" in wrong.json()["errors"]
    later(clock)
    right = api.post("/api/v1/auth/token/", {"username": "ivy", "password": password, "otp": code(ivy_device)}, format="json")
    assert right.status_code == 200
    body = right.json()
    assert set(body) == {"token", "expiry"}
    api.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert api.get("/api/v1/me/").json()["role"] == "investigator"


def test_create_staff_provisions_a_confirmed_totp_device(walkback: Trial, api: APIClient, capsys, clock) -> None:
    call_command("create_staff", "robot", "--role", "statistician", "--password", "a-long-passphrase", "--otp-secret", SECRET)
    assert "Two-factor authentication is on" in capsys.readouterr().out
    device = TOTPDevice.objects.get(user__username="robot")
    assert device.confirmed and device.bin_key == base64.b32decode(SECRET)
    creds = {"username": "robot", "password": "a-long-passphrase"}
    assert api.post("/api/v1/auth/token/", creds, format="json").status_code == 401
    later(clock)
    assert api.post("/api/v1/auth/token/", {**creds, "otp": code(SECRET)}, format="json").status_code == 200


def test_create_staff_refuses_a_secret_that_is_not_base32_and_creates_nobody(walkback: Trial) -> None:
    with pytest.raises(CommandError, match="base32"):
        call_command(
            "create_staff", "robot", "--role", "statistician", "--password", "a-long-passphrase", "--otp-secret", "not!b32"
        )
    assert not get_user_model().objects.filter(username="robot").exists()


# --- Lockout ---------------------------------------------------------------------------------------


def test_client_address_ignores_x_forwarded_for_unless_proxies_are_configured() -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9")
    assert client_ip(request) == "10.0.0.1"
    with override_settings(NUM_PROXIES=1):
        assert client_ip(request) == "203.0.113.9"  # what our proxy saw, not what the client wrote
    with override_settings(NUM_PROXIES=1):
        assert client_ip(RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="junk")) == "10.0.0.1"


def test_login_locks_after_repeated_failures_whatever_x_forwarded_for_says(client, make_staff, password, settings) -> None:
    make_staff("coordinator", sites=["SYD"], username="cora")
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "cora", "wrong-password", HTTP_X_FORWARDED_FOR=f"198.51.100.{attempt}").status_code == 200
    assert login(client, "cora", "wrong-password", HTTP_X_FORWARDED_FOR="198.51.100.98").status_code == 429
    locked = login(client, "cora", password, HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    event = SecurityEvent.objects.get(kind=SecurityEventKind.LOGIN_LOCKED_OUT)
    assert event.username == "cora" and event.ip_address == "127.0.0.1"


def test_the_token_endpoint_is_locked_too_and_answers_json(api: APIClient, make_staff, password, settings) -> None:
    make_staff("coordinator", sites=["SYD"], username="cora")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        api.post(
            "/api/v1/auth/token/", {"username": "cora", "password": "x"}, format="json", HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}"
        )
    response = api.post("/api/v1/auth/token/", {"username": "cora", "password": password}, format="json")
    assert response.status_code == 429
    assert set(response.json()) == {"detail", "errors"}


def test_wrong_second_factor_codes_count_towards_the_lockout(client, ivy, ivy_device, password, settings, clock) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "ivy", password, "000000")
        later(clock)
    assert login(client, "ivy", password, code(ivy_device)).status_code == 429


def test_an_administrator_unlocks_and_it_is_audited(client, make_staff, password, settings) -> None:
    from axes.models import AccessAttempt

    make_staff("coordinator", sites=["SYD"], username="cora")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "cora", "wrong-password")
    admin_client = client_class_for(make_staff("admin", username="alice"))
    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "cora" in listing.content.decode()
    ids = list(AccessAttempt.objects.values_list("pk", flat=True))
    admin_client.post("/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": ids})
    assert not AccessAttempt.objects.exists()
    event = SecurityEvent.objects.get(kind=SecurityEventKind.LOGIN_UNLOCKED)
    assert event.username == "alice" and event.detail["username"] == "cora"
    assert login(client, "cora", password).status_code == 302


def client_class_for(user: Any) -> Any:
    from django.test import Client

    other = Client()
    other.force_login(user)
    return other


def test_a_failed_login_names_the_username_only_when_the_account_exists(client, make_staff) -> None:
    make_staff("coordinator", sites=["SYD"], username="cora")
    login(client, "cora", "wrong-password")
    login(client, "my-secret-password-typed-in-the-wrong-field", "x")
    usernames = list(SecurityEvent.objects.filter(kind=SecurityEventKind.LOGIN_FAILED).values_list("username", flat=True))
    assert sorted(usernames) == ["", "cora"]


# --- Throttled password checks: unblinding and lock signing --------------------------------------


def test_emergency_unblinding_password_is_throttled(
    api: APIClient, ivy, coordinator, enrol, sealed_list, password, settings
) -> None:
    from participants import services as journey

    participant = enrol()
    journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    api.force_authenticate(ivy)
    url = f"/api/v1/participants/{participant.pk}/unblind/"
    for _ in range(settings.PASSWORD_ATTEMPT_LIMIT):
        assert api.post(url, {"reason": "Hospital admission", "password": "wrong"}, format="json").status_code == 403
    response = api.post(url, {"reason": "Hospital admission", "password": password}, format="json")
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.json()["detail"]


def test_lock_signing_password_is_throttled(walkback: Trial, investigator, password, settings) -> None:
    for _ in range(settings.PASSWORD_ATTEMPT_LIMIT):
        with pytest.raises(NotAllowed):
            database_lock(trial=walkback, user=investigator, password="wrong", meaning="I approve")
    with pytest.raises(TooManyAttempts):
        database_lock(trial=walkback, user=investigator, password=password, meaning="I approve")


# --- API tokens: expiry, revocation, and death on password, role and account changes -------------


def _token(api: APIClient, username: str, password: str) -> str:
    response = api.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["token"]


@pytest.fixture
def cora(make_staff: Any) -> Any:
    return make_staff("coordinator", sites=["SYD"], username="cora")


def test_tokens_are_stored_hashed_and_expire_after_the_configured_hours(api: APIClient, cora, password) -> None:
    with time_machine.travel(START, tick=False) as clock:
        response = api.post("/api/v1/auth/token/", {"username": "cora", "password": password}, format="json")
        token, expiry = response.json()["token"], response.json()["expiry"]
        assert dt.datetime.fromisoformat(expiry.replace("Z", "+00:00")) == START + dt.timedelta(hours=10)
        stored = ApiToken.objects.get(user=cora)
        assert token not in (stored.digest, stored.token_key) and len(stored.digest) == 128
        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        clock.shift(dt.timedelta(hours=9, minutes=59))
        assert api.get("/api/v1/trial/").status_code == 200
        clock.shift(dt.timedelta(minutes=2))
        assert api.get("/api/v1/trial/").status_code == 401


def test_delete_revokes_the_presented_token(api: APIClient, cora, password) -> None:
    token = _token(api, "cora", password)
    other = _token(api, "cora", password)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.delete("/api/v1/auth/token/").status_code == 204
    assert api.get("/api/v1/trial/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Token {other}")
    assert api.get("/api/v1/trial/").status_code == 200  # only the presented one
    api.credentials()
    assert api.delete("/api/v1/auth/token/").status_code == 401


def test_a_password_change_on_the_page_ends_every_token(client, api: APIClient, cora, password) -> None:
    token = _token(api, "cora", password)
    client.force_login(cora)
    response = client.post(
        reverse("password_change"),
        {"old_password": password, "new_password1": "a-brand-new-passphrase", "new_password2": "a-brand-new-passphrase"},
    )
    assert response.status_code == 302
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/trial/").status_code == 401
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.TOKENS_REVOKED, username="cora").exists()


def test_a_password_set_by_any_other_path_ends_every_token_too(api: APIClient, cora, password) -> None:
    token = _token(api, "cora", password)
    cora.set_password("set-by-changepassword-or-admin")
    cora.save()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/trial/").status_code == 401


def test_a_role_change_ends_every_token(api: APIClient, walkback: Trial, cora, password, make_staff) -> None:
    token = _token(api, "cora", password)
    services.staff_change_role(
        trial=walkback, profile=cora.staff, role="physiotherapist", site_codes=["SYD"], reason="New job", by=make_staff("admin")
    )
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/trial/").status_code == 401


def test_deactivation_ends_every_token(api: APIClient, cora, password, make_staff) -> None:
    token = _token(api, "cora", password)
    services.staff_deactivate(user=cora, reason="Left the trial", by=make_staff("admin"))
    assert not ApiToken.objects.filter(user=cora).exists()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/trial/").status_code == 401
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.ACCOUNT_DEACTIVATED, username="cora").exists()


def test_admins_see_who_holds_tokens_and_until_when_never_a_key(client, api: APIClient, cora, password, make_staff) -> None:
    token = _token(api, "cora", password)
    stored = ApiToken.objects.get(user=cora)
    client.force_login(make_staff("admin", username="alice"))
    listing = client.get("/admin/trial/apitoken/")
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "cora" in body
    assert token not in body and stored.digest not in body and stored.token_key not in body
    assert client.get(f"/admin/trial/apitoken/{stored.pk}/change/").status_code == 403
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 404  # no admin page shows TOTP secrets


def test_other_staff_cannot_list_tokens_or_lockouts(client, make_staff) -> None:
    client.force_login(make_staff("investigator"))
    assert client.get("/admin/trial/apitoken/").status_code in (302, 403)
    assert client.get("/admin/axes/accessattempt/").status_code in (302, 403)


def test_the_force_login_helper_marks_a_session_verified(client, ivy) -> None:
    client.force_login(ivy)
    assert client.get("/participants/").status_code == 200
    assert verify_session(client, ivy) is not None
    assert timezone.now()


def test_the_schema_documents_the_token_contract(client, walkback: Trial) -> None:
    schema = client.get("/api/schema/?format=json").json()
    operations = schema["paths"]["/api/v1/auth/token/"]
    assert set(operations) >= {"post", "delete"}
    assert {"200", "400", "401", "429"} <= set(operations["post"]["responses"])
    assert "204" in operations["delete"]["responses"]
    body = schema["components"]["schemas"]
    assert "otp" in body["TokenInputRequest"]["properties"] and "expiry" in body["TokenOutput"]["properties"]
    token_auth = schema["components"]["securitySchemes"]["tokenAuth"]
    assert token_auth["name"] == "Authorization" and '"Token"' in token_auth["description"]
