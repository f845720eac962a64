"""Writes to trial configuration, staff and the audit trail. Each is one transaction."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import django_otp
from axes.models import AccessAttempt
from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from trial import access
from trial.audit import audit_context, security_event_record, tracked_models
from trial.errors import ApplicationError, ConfigurationFrozen, NotAllowed
from trial.guard import ensure_writable, hold_exclusive
from trial.models import (
    ApiToken,
    Arm,
    ContactKind,
    EligibilityCriterion,
    Heartbeat,
    ListSource,
    RandomisationList,
    RandomisationSlot,
    Role,
    RoleCode,
    SecurityEvent,
    SecurityEventKind,
    Site,
    StaffProfile,
    StratificationFactor,
    StratumCursor,
    StratumLevel,
    Trial,
)
from trial.presets import TrialPreset
from trial.randomisation import ArmWeight, RandomisationConfigError, permuted_blocks, stratum_key, stratum_rng, validate_blocks
from trial.schedules import PERIODIC_TASKS
from trial.selectors import trial_get_current, trial_has_randomised


def configuration_ensure_mutable(*, trial: Trial, what: str) -> None:
    """Arms, ratios and strata are fixed once anyone is randomised: changing them would break the allocation.

    Holds the write guard exclusively: randomisation holds it shared (``ensure_writable``), so a
    structural change and a first randomisation cannot both commit.
    """
    hold_exclusive(trial=trial)
    if trial_has_randomised(trial=trial):
        raise ConfigurationFrozen(
            f"{what} cannot change: participants have already been randomised in {trial.name}, "
            "and changing arms, ratios or strata now would invalidate their allocation."
        )


def _save_changed(obj: Any, values: dict[str, Any]) -> bool:
    """Assign values; save only what differs. Returns whether anything changed."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    if changed:
        obj.full_clean()
        obj.save(update_fields=changed)
    return bool(changed)


@transaction.atomic
def trial_apply_preset(*, preset: TrialPreset, today: dt.date | None = None) -> Trial:
    """Create or update a trial from a preset; running it again changes nothing.

    Dates are set only when the trial is created, relative to ``today``, keeping the preset's
    shape (recruitment length, follow-up after recruitment).
    """
    today = today or timezone.localdate()
    with audit_context(actor=f"preset:{preset.code}", reason=f"Apply the {preset.name} preset"):
        trial = Trial.objects.select_for_update().filter(code=preset.code).first()
        if trial is None:
            recruitment_end = today + relativedelta(months=preset.recruitment_months)
            trial = Trial(
                code=preset.code,
                recruitment_start=today,
                recruitment_end=recruitment_end,
                followup_end=recruitment_end + relativedelta(months=preset.followup_after_recruitment_months),
                name=preset.name,
                registration=preset.registration,
                timezone=preset.timezone,
                recruitment_target=preset.recruitment_target,
                min_followup_months=preset.min_followup_months,
                max_followup_months=preset.max_followup_months,
                baseline_before_randomisation=preset.baseline_before_randomisation,
                study_id_prefix=preset.study_id_prefix,
                randomisation_method=preset.randomisation_method,
                block_sizes=list(preset.block_sizes),
                minimisation_probability=Decimal(preset.minimisation_probability),
            )
            trial.full_clean()
            trial.save()
        else:
            ensure_writable(trial=trial)
            _save_changed(
                trial,
                {
                    "name": preset.name,
                    "registration": preset.registration,
                    "timezone": preset.timezone,
                    "recruitment_target": preset.recruitment_target,
                },
            )
        _apply_arms(trial=trial, preset=preset)
        _apply_strata(trial=trial, preset=preset)
        for order, spec in enumerate(preset.eligibility):
            criterion = EligibilityCriterion.objects.filter(trial=trial, code=spec.code).first() or EligibilityCriterion(
                trial=trial, code=spec.code
            )
            if criterion.pk is None:
                criterion.text, criterion.kind, criterion.order = spec.text, spec.kind, order
                criterion.full_clean()
                criterion.save()
            else:
                _save_changed(criterion, {"text": spec.text, "kind": spec.kind, "order": order, "active": True})
        for site_spec in preset.sites:
            site = Site.objects.filter(trial=trial, code=site_spec.code).first()
            if site is None:
                site = Site(trial=trial, code=site_spec.code, name=site_spec.name, timezone=site_spec.timezone)
                site.full_clean()
                site.save()
        referral = trial.strata.filter(code=preset.referral_factor).first() if preset.referral_factor else None
        _save_changed(trial, {"referral_factor_id": referral.pk if referral else None})
        for code, defaults in access.DEFAULT_ROLE_SETTINGS.items():
            settings = {**defaults, **preset.role_overrides.get(code, {})}
            Role.objects.get_or_create(trial=trial, code=code, defaults=settings)
    return trial


def _apply_arms(*, trial: Trial, preset: TrialPreset) -> None:
    existing = {arm.code: arm for arm in Arm.objects.filter(trial=trial)}
    wanted = {spec.code for spec in preset.arms}
    structural = set(existing) != wanted or any(existing[s.code].ratio != s.ratio for s in preset.arms if s.code in existing)
    if structural and existing:
        configuration_ensure_mutable(trial=trial, what="The arms and their ratio")
    for order, spec in enumerate(preset.arms):
        arm = existing.get(spec.code)
        values = {"name": spec.name, "ratio": spec.ratio, "description": spec.description, "order": order}
        if arm is None:
            arm = Arm(trial=trial, code=spec.code, **values)
            arm.full_clean()
            arm.save()
        else:
            _save_changed(arm, values)
    Arm.objects.filter(trial=trial).exclude(code__in=wanted).delete()


def _apply_strata(*, trial: Trial, preset: TrialPreset) -> None:
    existing = {f.code: f for f in StratificationFactor.objects.filter(trial=trial).prefetch_related("levels")}
    wanted = {spec.code: spec for spec in preset.strata}
    structural = set(existing) != set(wanted) or any(
        {lv.code for lv in existing[code].levels.all()} != {lv.code for lv in spec.levels}
        for code, spec in wanted.items()
        if code in existing
    )
    if structural and existing:
        configuration_ensure_mutable(trial=trial, what="The stratification factors")
    for order, spec in enumerate(preset.strata):
        factor = existing.get(spec.code)
        if factor is None:
            factor = StratificationFactor.objects.create(trial=trial, code=spec.code, label=spec.label, order=order)
        else:
            _save_changed(factor, {"label": spec.label, "order": order})
        levels = {lv.code: lv for lv in factor.levels.all()}
        for level_order, level_spec in enumerate(spec.levels):
            level = levels.get(level_spec.code)
            if level is None:
                StratumLevel.objects.create(factor=factor, code=level_spec.code, label=level_spec.label, order=level_order)
            else:
                _save_changed(level, {"label": level_spec.label, "order": level_order})
        StratumLevel.objects.filter(factor=factor).exclude(code__in=[lv.code for lv in spec.levels]).delete()
    StratificationFactor.objects.filter(trial=trial).exclude(code__in=list(wanted)).delete()


@transaction.atomic
def arm_update(*, arm: Arm, name: str, ratio: int, description: str = "", reason: str) -> Arm:
    """Rename an arm freely; its ratio only until the first randomisation."""
    trial = arm.trial
    ensure_writable(trial=trial)
    if ratio != arm.ratio:
        configuration_ensure_mutable(trial=trial, what="The allocation ratio")
    with audit_context(reason=reason):
        _save_changed(arm, {"name": name, "ratio": ratio, "description": description})
    return arm


def _trial_of(obj: Any) -> Trial:
    if isinstance(obj, Trial):
        return obj
    if isinstance(obj, StratumLevel):
        return obj.factor.trial
    if getattr(obj, "trial_id", None):
        return obj.trial
    return trial_get_current()


def _plain_fields(obj: Any, names: Iterable[str]) -> list[str]:
    return [f.name for f in obj._meta.concrete_fields if f.name in set(names)]


def _audit_untracked(*, obj: Any, action: str, before: dict[str, Any], after: dict[str, Any], reason: str, by: Any) -> None:
    """A change to a configuration model pghistory does not track (policies) still enters the trail."""
    if obj._meta.label_lower in tracked_models():
        return
    security_event_record(
        kind=SecurityEventKind.CONFIGURATION,
        user=by,
        detail={
            "action": action,
            "record": obj._meta.label_lower,
            "id": obj.pk,
            "before": {k: str(v) for k, v in before.items()},
            "after": {k: str(v) for k, v in after.items()},
            "reason": reason,
        },
    )


@transaction.atomic
def configuration_record_save(
    *, obj: Any, changed_fields: Iterable[str], structural: bool, reason: str = "", by: Any = None
) -> None:
    """Save a configuration row edited in admin, refusing structural edits once anyone is randomised."""
    trial = _trial_of(obj)
    ensure_writable(trial=trial)
    if structural:
        configuration_ensure_mutable(trial=trial, what=f"{obj._meta.verbose_name.capitalize()} '{obj}'")
    fields = _plain_fields(obj, changed_fields)
    before = type(obj)._default_manager.filter(pk=obj.pk).values(*fields).first() if obj.pk and fields else None
    reason = reason or "Edited in admin"
    with audit_context(reason=reason):
        obj.full_clean()
        obj.save()
    if fields:
        after = {name: obj.serializable_value(name) for name in fields}
        _audit_untracked(obj=obj, action="changed" if before else "added", before=before or {}, after=after, reason=reason, by=by)


@transaction.atomic
def configuration_record_delete(*, obj: Any, structural: bool, reason: str = "", by: Any = None) -> None:
    trial = _trial_of(obj)
    ensure_writable(trial=trial)
    if structural:
        configuration_ensure_mutable(trial=trial, what=f"{obj._meta.verbose_name.capitalize()} '{obj}'")
    reason = reason or "Deleted in admin"
    _audit_untracked(obj=obj, action="deleted", before={"object": str(obj)}, after={}, reason=reason, by=by)
    with audit_context(reason=reason):
        obj.delete()


def _sites_from_codes(*, trial: Trial, site_codes: Iterable[str]) -> list[Site]:
    codes = sorted({code.strip().upper() for code in site_codes if code.strip()})
    sites = list(Site.objects.filter(trial=trial, code__in=codes))
    missing = sorted(set(codes) - {site.code for site in sites})
    if missing:
        known = ", ".join(Site.objects.filter(trial=trial).values_list("code", flat=True))
        raise ApplicationError(
            f"Unknown site code(s): {', '.join(missing)}. Known sites: {known}.",
            errors={"sites": [f"Unknown: {', '.join(missing)}"]},
        )
    return sites


def _validate_role(role: str) -> None:
    if role not in RoleCode.values:
        raise ApplicationError(f"Unknown role. Roles: {', '.join(RoleCode.values)}.", errors={"role": ["Unknown role."]})


def _set_admin_flags(user: AbstractUser, role: str) -> None:
    # Django admin is for configuration, by administrators, and what they may do there is decided
    # by trial.access. No role is a superuser: that is only the emergency account made with
    # createsuperuser on the server.
    user.is_staff = role == RoleCode.ADMIN
    user.is_superuser = False


@transaction.atomic
def staff_create(
    *,
    trial: Trial,
    username: str,
    role: str,
    password: str,
    site_codes: Iterable[str] = (),
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    by: AbstractUser | None = None,
    otp_secret: str = "",
) -> AbstractUser:
    """Create a staff member with a role and sites. Site-bound roles need at least one site.

    ``by`` (None from the server's command line) must be allowed to manage staff.
    ``otp_secret`` (base32): provision a confirmed TOTP device, for automation and the demo.
    """
    if by is not None:
        access.require(by, access.Perm.MANAGE_STAFF, trial=trial, message="Your role may not create staff accounts.")
    _validate_role(role)
    otp_key = totp_secret_parse(otp_secret) if otp_secret else b""
    User = get_user_model()
    username = username.strip()
    if not username:
        raise ApplicationError("A username is required.", errors={"username": ["Required."]})
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError("A user with that username already exists.", errors={"username": ["Already taken."]})
    sites = _sites_from_codes(trial=trial, site_codes=site_codes)
    role_row = Role.objects.filter(trial=trial, code=role).first()
    trial_wide = role_row.trial_wide if role_row else access.DEFAULT_ROLE_SETTINGS[role]["trial_wide"]
    if not trial_wide and not sites:
        raise ApplicationError(
            f"A {RoleCode(role).label.lower()} works at named sites: give at least one --site.",
            errors={"sites": ["At least one site is required for this role."]},
        )
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError("The password is too weak: " + " ".join(exc.messages), errors={"password": exc.messages}) from exc
    user.set_password(password)
    _set_admin_flags(user, role)
    with audit_context(reason=f"Create staff member with role {role}"):
        user.save()
        profile = StaffProfile.objects.create(user=user, role=role)
        profile.sites.set(sites)
        security_event_record(
            kind=SecurityEventKind.ROLE_CHANGED,
            user=by,
            username=username,
            detail={"staff": username, "role": role, "sites": [s.code for s in sites], "created": True},
        )
        if otp_key:
            _totp_device_add(user=user, key=otp_key, name="Provisioned authenticator", by=by)
    return user


@transaction.atomic
def staff_change_role(
    *,
    trial: Trial,
    profile: StaffProfile,
    role: str,
    site_codes: Iterable[str],
    reason: str,
    by: AbstractUser | None,
    time_zone: str | None = None,
) -> StaffProfile:
    """Change a staff member's role and sites (and time zone, when given), with a reason. ``by``
    (None from the server's command line) must be allowed to manage staff, and cannot change their
    own role or sites: no one promotes themselves."""
    if by is not None:
        access.require(by, access.Perm.MANAGE_STAFF, trial=trial, message="Your role may not change staff roles.")
        if by.pk == profile.user_id:
            raise NotAllowed("You cannot change your own role or sites: ask another administrator.")
    _validate_role(role)
    if not reason.strip():
        raise ApplicationError("Say why the role or sites change.", errors={"reason": ["Required."]})
    profile = StaffProfile.objects.select_for_update().get(pk=profile.pk)
    sites = _sites_from_codes(trial=trial, site_codes=site_codes)
    before = {"role": profile.role, "sites": sorted(profile.sites.values_list("code", flat=True))}
    with audit_context(reason=reason):
        profile.role = role
        if time_zone is not None:
            profile.timezone = time_zone
        profile.save(update_fields=["role", "timezone"])
        profile.sites.set(sites)
        user = profile.user
        _set_admin_flags(user, role)
        user.save(update_fields=["is_staff", "is_superuser"])
        security_event_record(
            kind=SecurityEventKind.ROLE_CHANGED,
            user=by,
            username=user.get_username(),
            detail={
                "staff": user.get_username(),
                "before": before,
                "after": {"role": role, "sites": [s.code for s in sites]},
                "reason": reason,
            },
        )
        api_tokens_revoke(user=user, reason="role or sites changed", by=by)
    access.forget(user)
    return profile


@transaction.atomic
def staff_deactivate(*, user: AbstractUser, reason: str, by: AbstractUser | None) -> AbstractUser:
    """Close a staff account: it can no longer sign in, and its API tokens die now."""
    if by is not None:
        access.require(by, access.Perm.MANAGE_STAFF, trial=trial_get_current(), message="Your role may not close staff accounts.")
        if by.pk == user.pk:
            raise NotAllowed("You cannot close your own account: ask another administrator.")
    if not reason.strip():
        raise ApplicationError("Say why the account is closed.", errors={"reason": ["Required."]})
    with audit_context(reason=reason):
        user.is_active = False
        user.save(update_fields=["is_active"])
        security_event_record(
            kind=SecurityEventKind.ACCOUNT_DEACTIVATED,
            user=by,
            username=user.get_username(),
            detail={"staff": user.get_username(), "reason": reason},
        )
        api_tokens_revoke(user=user, reason="account deactivated", by=by)
    access.forget(user)
    return user


# --- Sign-in security: API tokens, second factor, lockouts -----------------------------------


@transaction.atomic
def api_token_issue(*, user: Any, ip_address: str | None) -> tuple[ApiToken, str]:
    """A new API token (only its hash is stored), bound to the user's current password."""
    token, key = ApiToken.objects.create(user=user, auth_hash=user.get_session_auth_hash())
    security_event_record(
        kind=SecurityEventKind.TOKEN_ISSUED,
        user=user,
        ip_address=ip_address,
        detail={"expiry": token.expiry.isoformat() if token.expiry else None},
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, token: ApiToken, ip_address: str | None) -> None:
    """The holder revokes the token they present."""
    user = token.user
    ApiToken.objects.filter(pk=token.pk).delete()
    security_event_record(
        kind=SecurityEventKind.TOKENS_REVOKED,
        user=user,
        ip_address=ip_address,
        detail={"tokens": 1, "reason": "revoked by holder"},
    )


@transaction.atomic
def api_tokens_revoke(*, user: Any, reason: str, by: Any = None) -> int:
    """End every API token of ``user`` (password or role change, deactivation, second factor changed)."""
    count, _ = ApiToken.objects.filter(user_id=user.pk).delete()
    if count:
        security_event_record(
            kind=SecurityEventKind.TOKENS_REVOKED,
            user=by,
            username=user.get_username(),
            detail={"staff": user.get_username(), "tokens": count, "reason": reason},
        )
    return count


def totp_secret_parse(secret: str) -> bytes:
    """A base32 TOTP secret (spaces and case ignored) as bytes; at least 80 bits."""
    cleaned = "".join(secret.split()).upper().rstrip("=")
    try:
        key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError) as exc:
        raise ApplicationError(
            "The TOTP secret is not base32 (letters A-Z and digits 2-7).", errors={"otp_secret": ["Not base32."]}
        ) from exc
    if not 10 <= len(key) <= 40:
        raise ApplicationError(
            "The TOTP secret must be 16 to 64 base32 characters (80 to 320 bits).", errors={"otp_secret": ["Wrong length."]}
        )
    return key


def _totp_device_add(*, user: Any, key: bytes, name: str, by: Any) -> TOTPDevice:
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=name, key=key.hex(), confirmed=True)
    security_event_record(
        kind=SecurityEventKind.TWO_FACTOR_ENABLED,
        user=by,
        username=user.get_username(),
        detail={"staff": user.get_username(), "device": name},
    )
    api_tokens_revoke(user=user, reason="second factor set up", by=by)
    return device


@transaction.atomic
def totp_device_provision(*, user: Any, secret: str, by: Any = None) -> TOTPDevice:
    """Give ``user`` a confirmed TOTP device with a known secret (automation, the demo)."""
    return _totp_device_add(user=user, key=totp_secret_parse(secret), name="Provisioned authenticator", by=by)


@transaction.atomic
def two_factor_setup_start(*, user: Any) -> TOTPDevice:
    """The pending (unconfirmed) authenticator of ``user``: shown as a QR code until confirmed."""
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if pending is None:
        pending = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return pending


RECOVERY_CODE_COUNT = 10


@transaction.atomic
def two_factor_confirm(*, user: Any, token: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the pending authenticator with a current code; returns it and new recovery codes
    (shown once). Any earlier authenticator and recovery codes are replaced; API tokens end."""
    pending = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-pk").first()
    if pending is None:
        raise ApplicationError("Start the set-up again: no authenticator is waiting to be confirmed.")
    if not pending.verify_token("".join((token or "").split())):
        raise ApplicationError(
            "That code is not right: enter the 6-digit code your app shows now.", errors={"otp_token": ["Not right."]}
        )
    TOTPDevice.objects.filter(user=user).exclude(pk=pending.pk).delete()
    pending.confirmed = True
    pending.save(update_fields=["confirmed"])
    StaticDevice.objects.filter(user=user).delete()
    recovery = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=recovery, token=code) for code in codes])
    security_event_record(
        kind=SecurityEventKind.TWO_FACTOR_ENABLED,
        user=user,
        detail={"staff": user.get_username(), "device": pending.name, "recovery_codes": len(codes)},
    )
    api_tokens_revoke(user=user, reason="second factor set up", by=user)
    return pending, codes


@transaction.atomic
def two_factor_remove(*, user: Any, credential: str) -> None:
    """Remove ``user``'s authenticator and recovery codes, proven by their password or a current code."""
    credential = credential or ""
    proven = bool(credential) and (
        user.check_password(credential) or django_otp.match_token(user, "".join(credential.split())) is not None
    )
    if not proven:
        raise NotAllowed(
            "Enter your password or a current code to remove two-factor authentication.",
            errors={"credential": ["Not right."]},
        )
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    security_event_record(kind=SecurityEventKind.TWO_FACTOR_REMOVED, user=user, detail={"staff": user.get_username()})
    api_tokens_revoke(user=user, reason="second factor removed", by=user)


@transaction.atomic
def login_lockouts_clear(*, attempts: Iterable[AccessAttempt], by: Any, ip_address: str | None = None) -> int:
    """Unlock sign-in for the given lockout records (an administrator's action), each audited."""
    cleared = 0
    for attempt in attempts:
        security_event_record(
            kind=SecurityEventKind.LOGIN_UNLOCKED,
            user=by,
            ip_address=ip_address,
            detail={
                "username": attempt.username or "",
                "address": attempt.ip_address or "",
                "failures": attempt.failures_since_start,
            },
        )
        AccessAttempt.objects.filter(pk=attempt.pk).delete()
        cleared += 1
    return cleared


@transaction.atomic
def heartbeat_record(*, name: str, at: dt.datetime | None = None) -> Heartbeat:
    """Record that a background process ran; safe to run any number of times."""
    at = at or timezone.now()
    beat, _ = Heartbeat.objects.select_for_update().get_or_create(name=name, defaults={"last_seen": at})
    beat.last_seen = max(beat.last_seen, at)
    beat.runs += 1
    beat.save(update_fields=["last_seen", "runs"])
    return beat


@transaction.atomic
def periodic_tasks_sync() -> int:
    """Make beat's schedule rows match ``trial.schedules``: what each row runs follows the code;
    when it runs and whether it is paused are the admin's (the spec's interval is only the first)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = 0
    for spec in PERIODIC_TASKS:
        # An admin may have added an equal schedule: any one of them will do.
        interval = (
            IntervalSchedule.objects.filter(every=spec.every_seconds, period=IntervalSchedule.SECONDS).order_by("pk").first()
        )
        if interval is None:
            interval = IntervalSchedule.objects.create(every=spec.every_seconds, period=IntervalSchedule.SECONDS)
        task, was_created = PeriodicTask.objects.select_for_update().get_or_create(
            name=spec.name, defaults={"task": spec.task, "interval": interval, "kwargs": spec.kwargs}
        )
        if not was_created and (task.task, task.args, task.kwargs) != (spec.task, "[]", spec.kwargs):
            task.task, task.args, task.kwargs = spec.task, "[]", spec.kwargs
            task.save()
        created += was_created
    return created


@transaction.atomic
def periodic_task_update(*, task_id: int, enabled: bool, interval: Any, crontab: Any, by: AbstractUser) -> Any:
    """Pause, resume or re-time one of beat's rows (never what it runs), audited with before and after."""
    from django_celery_beat.models import PeriodicTask

    trial = trial_get_current()
    access.require(by, access.Perm.CONFIGURE_TRIAL, trial=trial, message="Your role may not change the schedule.")
    if (interval is None) == (crontab is None):
        raise ApplicationError(
            "Give the task either an interval or a crontab schedule.", errors={"interval": ["One of the two."]}
        )
    task = PeriodicTask.objects.select_for_update().get(pk=task_id)
    before = {"enabled": task.enabled, "interval": str(task.interval or ""), "crontab": str(task.crontab or "")}
    task.enabled, task.interval, task.crontab = enabled, interval, crontab
    task.save()  # beat notices the change (its change tracker is bumped on save)
    security_event_record(
        kind=SecurityEventKind.CONFIGURATION,
        user=by,
        detail={
            "action": "periodic task changed",
            "task": task.name,
            "before": before,
            "after": {"enabled": enabled, "interval": str(interval or ""), "crontab": str(crontab or "")},
        },
    )
    return task


# --- Randomisation lists (sealed) ----------------------------------------------------------


def _arm_weights(trial: Trial) -> list[ArmWeight]:
    return [ArmWeight(arm.code, arm.ratio) for arm in trial.arms.order_by("order", "code")]


def trial_strata_keys(*, trial: Trial) -> list[str]:
    """Every combination of stratification levels, as stratum keys."""
    factors = list(trial.strata.prefetch_related("levels").order_by("code"))
    combos: list[dict[str, str]] = [{}]
    for factor in factors:
        combos = [{**combo, factor.code: level.code} for combo in combos for level in factor.levels.all()]
    return [stratum_key(combo) for combo in combos]


@transaction.atomic
def randomisation_list_generate(*, trial: Trial, seed: str, per_stratum: int, by: str) -> RandomisationList:
    """Generate (or extend) every stratum's permuted-block list from a secret seed.

    The seed is not stored; its SHA-256 is, so the statistician can later show which seed was used.
    Extending continues each stratum's positions and blocks; the same seed and sizes give the
    same list.
    """
    ensure_writable(trial=trial)
    if len(seed) < 16:
        raise ApplicationError("The seed must be at least 16 characters: it is what keeps the list unpredictable.")
    if per_stratum < 1:
        raise ApplicationError("Ask for at least one slot per stratum.")
    arms = _arm_weights(trial)
    try:
        validate_blocks(arms, trial.block_sizes)
    except RandomisationConfigError as exc:
        raise ApplicationError(str(exc)) from exc
    arm_ids = {arm.code: arm.pk for arm in trial.arms.all()}
    rows = []
    for key in trial_strata_keys(trial=trial):
        last = RandomisationSlot.objects.filter(trial=trial, stratum_key=key).order_by("-position").first()
        # Each extension draws from its own stream so that extending never changes what was drawn.
        rng = stratum_rng(seed, f"{key}#{last.position if last else 0}")
        slots = permuted_blocks(
            arms=arms,
            block_sizes=trial.block_sizes,
            count=per_stratum,
            rng=rng,
            start_position=(last.position + 1) if last else 1,
            start_block=(last.block + 1) if last else 1,
        )
        rows += [
            RandomisationSlot(
                trial=trial,
                stratum_key=key,
                position=s.position,
                arm_id=arm_ids[s.arm],
                block=s.block,
                block_size=s.block_size,
            )
            for s in slots
        ]
        StratumCursor.objects.bulk_create([StratumCursor(trial=trial, stratum_key=key)], ignore_conflicts=True)
    source = RandomisationList.objects.create(
        trial=trial,
        source=ListSource.GENERATED,
        seed_sha256=hashlib.sha256(seed.encode()).hexdigest(),
        slots_created=len(rows),
        created_by=by,
    )
    for row in rows:
        row.source_list = source
    RandomisationSlot.objects.bulk_create(rows, batch_size=2000)
    security_event_record(
        kind=SecurityEventKind.CONFIGURATION,
        username=by,
        detail={"action": "randomisation list generated", "list": source.pk, "slots": len(rows), "per_stratum": per_stratum},
    )
    return source


@transaction.atomic
def randomisation_list_import(*, trial: Trial, rows: Iterable[dict[str, str]], arm_column: str, by: str) -> RandomisationList:
    """Import an allocation table (REDCap's format: one row per slot, a column for the arm and one
    per stratification factor, in list order). Arms may be given by code or by 1-based number."""
    ensure_writable(trial=trial)
    arms = list(trial.arms.order_by("order", "code"))
    by_code = {arm.code: arm for arm in arms} | {str(i): arm for i, arm in enumerate(arms, start=1)}
    factors = {f.code: {lv.code for lv in f.levels.all()} for f in trial.strata.prefetch_related("levels")}
    next_position: dict[str, int] = {}
    slots: list[RandomisationSlot] = []
    problems: list[str] = []
    for line, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        arm = by_code.get(row.get(arm_column, ""))
        if arm is None:
            problems.append(f"line {line}: arm '{row.get(arm_column, '')}' is not one of {', '.join(a.code for a in arms)}")
            continue
        levels = {}
        for factor, allowed in factors.items():
            value = row.get(factor, "")
            if value not in allowed:
                problems.append(f"line {line}: {factor} '{value}' is not one of {', '.join(sorted(allowed))}")
            levels[factor] = value
        key = stratum_key(levels)
        if key not in next_position:
            last = RandomisationSlot.objects.filter(trial=trial, stratum_key=key).order_by("-position").first()
            next_position[key] = (last.position + 1) if last else 1
        slots.append(RandomisationSlot(trial=trial, stratum_key=key, position=next_position[key], arm=arm))
        next_position[key] += 1
        if len(problems) > 20:
            break
    if problems:
        raise ApplicationError("The allocation table was not imported: " + "; ".join(problems[:20]))
    if not slots:
        raise ApplicationError("The allocation table has no rows.")
    source = RandomisationList.objects.create(trial=trial, source=ListSource.IMPORTED, created_by=by, slots_created=len(slots))
    for slot in slots:
        slot.source_list = source
    RandomisationSlot.objects.bulk_create(slots, batch_size=2000)
    StratumCursor.objects.bulk_create(
        [StratumCursor(trial=trial, stratum_key=key) for key in next_position], ignore_conflicts=True
    )
    security_event_record(
        kind=SecurityEventKind.CONFIGURATION,
        username=by,
        detail={"action": "randomisation list imported", "list": source.pk, "slots": len(slots)},
    )
    return source


def audit_trail_check() -> list[Any]:
    """Verify every audit chain and every tracked row against its latest snapshot; on any break,
    record a security event and alert the administrators and safety contacts, once for the same
    set of breaks (its fingerprint is the event's and the notification's key, so a second run
    writes and sends nothing). The check reads one REPEATABLE READ snapshot, so it runs before,
    not inside, the transaction that records the alert."""
    from trial import auditchain

    findings = auditchain.audit_verify()
    if findings:
        _audit_breaks_record(findings=findings, fingerprint=auditchain.findings_fingerprint(findings))
    return findings


@transaction.atomic
def _audit_breaks_record(*, findings: list[Any], fingerprint: str) -> None:
    from trial import notifications

    listed = [str(finding) for finding in findings[:50]]
    more = len(findings) - len(listed)
    if not SecurityEvent.objects.filter(kind=SecurityEventKind.AUDIT_BROKEN, detail__fingerprint=fingerprint).exists():
        security_event_record(
            kind=SecurityEventKind.AUDIT_BROKEN, detail={"fingerprint": fingerprint, "count": len(findings), "findings": listed}
        )
    body = "\n".join(
        [
            "The nightly audit check found the audit trail and the data disagree (tampering, or a change made with "
            "database triggers off):",
            "",
            *listed,
            *([f"... and {more} more: run 'python manage.py verify_audit' on the server."] if more else []),
            "",
            "Compare the chain heads with those kept outside the database (release and backup manifests).",
        ]
    )
    for trial in Trial.objects.order_by("pk"):
        notifications.notification_queue(
            key=f"audit-broken:{trial.code}:{fingerprint[:40]}",
            kind="audit_broken",
            recipients=notifications.staff_emails(trial=trial, role=RoleCode.ADMIN, contact_kind=ContactKind.SAFETY),
            subject=f"[{trial.name}] Audit trail check failed: {len(findings)} problem(s)",
            body=body,
        )
