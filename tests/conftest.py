from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from messaging.models import MessagePolicy
from participants import services as journey
from participants.models import Participant
from presets.services import preset_apply
from presets.walkback import WALKBACK
from tests.caches import cache_clear_own
from tests.factories import ELIGIBLE, PASSWORD, SEED, baseline_complete
from trial import services
from trial.models import Trial

IN_CI = bool(os.environ.get("CI"))


# Tests that run only when ``-m`` names them: the fuzzing (minutes) and the fault injection
# (processes killed mid-work), as CI's PostgreSQL pass does; `dev.py test` and the first pass leave them out.
ONLY_WHEN_NAMED = ("fuzz", "faults")


# The slow crawls and round trips run for many minutes on a busy 2-core machine (the arm-swap crawl
# about 23 minutes, the simulated trial 13): they get a longer limit than pyproject's per-test one.
SLOW_MARKERS = ("armswap", "simulation", "accessibility", "migrations")
SLOW_TIMEOUT_SECONDS = 2700


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(m) for m in SLOW_MARKERS) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_SECONDS))
    named = config.getoption("markexpr") or ""
    for marker in ONLY_WHEN_NAMED:
        if marker in named:
            continue
        skipped = [item for item in items if item.get_closest_marker(marker)]
        if skipped:
            config.hook.pytest_deselected(items=skipped)
            items[:] = [item for item in items if not item.get_closest_marker(marker)]


def require_service(condition: bool, reason: str) -> None:
    """Skip on a developer's machine when a service is missing; fail in CI, never skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI requires it: {reason}")
    pytest.skip(reason)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures of the security, fault and accessibility tests, also under xdist (their reports
    carry them to this process)."""
    totals: dict[str, float] = {}
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        if getattr(report, "when", "") != "call":
            continue
        for name, value in getattr(report, "user_properties", []):
            if isinstance(value, int | float) and name.startswith(("fuzzed_", "matrix_", "faults_", "axe_", "phone_")):
                totals[name] = totals.get(name, 0) + value
    if totals:
        terminalreporter.write_sep("-", "security, fault and accessibility tests")
        for name, value in sorted(totals.items()):
            terminalreporter.write_line(f"{name.replace('_', ' ')}: {value}")


@pytest.fixture(autouse=True)
def _integration_tests_one_at_a_time(request: pytest.FixtureRequest) -> Any:
    """Under xdist the integration tests take turns (a lock shared by the run's workers): their Celery
    workers and beat would otherwise take each other's tasks from the shared broker (Redis in CI).
    (xdist_group/--dist loadgroup would say it, but pytest-xdist 3.8 cannot rename node ids on pytest 9.2.)"""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None or request.node.get_closest_marker("integration") is None:
        yield
        return
    import fcntl
    import tempfile
    from pathlib import Path

    with (Path(tempfile.gettempdir()) / f"walkback-integration-{run}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(autouse=True, scope="session")
def _static_files_from_finders() -> Any:
    """Pages under test link plain static names (no collectstatic manifest needed)."""
    with override_settings(
        STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    ):
        yield


@pytest.fixture(autouse=True, scope="session")
def _tasks_run_in_process() -> Any:
    """Work queued on commit runs in the test's process; the integration tests use a real worker."""
    from trial.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _releases_validate(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every release a test builds must be a valid Frictionless data package (CI validates them all)."""
    from closeout.releases import export
    from tests.releases import release_validate

    write = export.release_zip_write

    def write_and_validate(**kwargs: Any) -> Any:
        built = write(**kwargs)
        kwargs["target"].seek(0)
        release_validate(kwargs["target"])
        kwargs["target"].seek(0)
        return built

    monkeypatch.setattr(export, "release_zip_write", write_and_validate)
    yield


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    """Counters in the cache (password-check throttle, API throttle) start at zero in every test."""
    cache_clear_own()
    yield


@pytest.fixture(autouse=True)
def _force_login_includes_the_second_factor(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``client.force_login(user)`` stands for a completed sign-in. For staff whose role requires a
    second factor that includes the code: the session is marked verified, as the login form does
    (with a confirmed TOTP device, created when the user has none). Tests of the second factor
    itself sign in with the ``first_factor_login`` fixture instead."""
    from django.test import Client

    original = Client.force_login

    def force_login(self: Client, user: Any, backend: str | None = None) -> None:
        original(self, user, backend)
        verify_session(self, user)

    force_login.first_factor_only = original  # type: ignore[attr-defined]
    monkeypatch.setattr(Client, "force_login", force_login)
    yield


def verify_session(client: Any, user: Any) -> Any:
    """Mark ``client``'s session as having passed the second factor (when ``user``'s role needs it);
    returns the device used, or None."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from trial import signin
    from trial.selectors import trial_get_current_or_none

    fresh = type(user).objects.filter(pk=user.pk).first()  # not the caller's object: access is cached on it
    if fresh is None or not signin.two_factor_required(fresh, trial_get_current_or_none()):
        return None
    device = TOTPDevice.objects.filter(user=fresh, confirmed=True).first() or TOTPDevice.objects.create(
        user=fresh, name="Test authenticator", confirmed=True
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


@pytest.fixture
def first_factor_login(_force_login_includes_the_second_factor: Any) -> Callable[[Any, Any], None]:
    """first_factor_login(client, user): a session that passed the password only."""
    from django.test import Client

    return lambda client, user: Client.force_login.first_factor_only(client, user)  # type: ignore[attr-defined]


@pytest.fixture
def walkback(db: Any) -> Trial:
    """The WalkBack configuration, as `setup_walkback` creates it, on a fixed day; without the
    welcome message at enrolment, so tests of questionnaire and session messages count only those
    (tests/messaging/test_link_messages.py turns it on)."""
    trial = preset_apply(preset=WALKBACK, today=dt.date(2026, 3, 2))
    MessagePolicy.objects.filter(trial=trial).update(welcome_message=False)
    return trial


@pytest.fixture
def make_staff(walkback: Trial) -> Callable[..., Any]:
    """make_staff("coordinator", sites=["SYD"]) -> a user with that role."""

    def make(role: str, *, sites: tuple[str, ...] | list[str] = (), username: str | None = None) -> Any:
        return services.staff_create(
            trial=walkback,
            username=username or f"{role}-{'-'.join(sites) or 'all'}",
            role=role,
            password=PASSWORD,
            site_codes=sites,
        )

    return make


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def password() -> str:
    return PASSWORD


# --- The participant journey: a coordinator, a sealed list, an enrolled participant --------


@pytest.fixture
def coordinator(make_staff) -> Any:
    return make_staff("coordinator", sites=["SYD", "NCL", "BNE"], username="coord")


@pytest.fixture
def investigator(make_staff: Callable[..., Any]) -> Any:
    """The investigator who signs locks and builds releases (with a full name, as signatures show it)."""
    user = make_staff("investigator", username="ivy")
    user.first_name, user.last_name = "Ivy", "Investigator"
    user.save()
    return user


@pytest.fixture
def sealed_list(walkback: Trial) -> Any:
    return services.randomisation_list_generate(trial=walkback, seed=SEED, per_stratum=40, by="statistician")


@pytest.fixture
def enrol(walkback: Trial, coordinator: Any) -> Callable[..., Participant]:
    """enrol(site="SYD", prior="yes", referral="community") -> an eligible, consented participant
    whose baseline questionnaire is complete (entered by staff at enrolment), ready to randomise;
    ``baseline=False`` leaves it open."""

    def make(
        site: str = "SYD", prior: str | None = "yes", referral: str = "community", by: Any = None, baseline: bool = True
    ) -> Participant:
        by = by or coordinator
        screening = journey.screening_record(site=walkback.sites.get(code=site), answers=ELIGIBLE, by=by, referral=referral)
        strata = {"prior_episodes_gt2": prior} if prior else {}
        participant = journey.participant_enrol(
            screening=screening,
            consent=journey.ConsentInput(method="in_person", signed_name="Pat Example"),
            strata=strata,
            contact=journey.ContactInput(email="pat@example.org", mobile="+61400000000"),
            by=by,
        )
        if baseline:
            baseline_complete(participant, by=by)
        return participant

    return make
