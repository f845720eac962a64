"""Signing in: password, second factor and lockout, for the login page, the admin and the API token;
and the throttle on password checks made outside the login (unblinding, lock signatures).

The lockout is django-axes (its backend runs first in ``AUTHENTICATION_BACKENDS``); each failure,
a wrong second factor included, is a ``user_login_failed`` signal that axes counts and
``trial.audit`` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import django_otp
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import authenticate, user_login_failed
from django.core.cache import cache
from django.http import HttpRequest
from django_otp.models import Device

from trial import access
from trial.errors import ApplicationError, NotAllowed, NotAuthenticated, TooManyAttempts
from trial.models import Trial

INVALID_CREDENTIALS = "Invalid username or password."
LOCKED_OUT = "Too many failed sign-ins: this account or address is locked. Ask an administrator to unlock it, or try again later."
OTP_MISSING = "Enter the 6-digit code from your authenticator app, or a recovery code."
OTP_WRONG = "That code is not right (or was already used): enter the current code from your authenticator app, or an unused recovery code."
SETUP_NEEDED = "Your role requires two-factor authentication: set it up on your account page (/accounts/two-factor/) first."
VERIFY_NEEDED = "Confirm this session with a code from your authenticator app on your account page (/accounts/two-factor/)."


@dataclass(frozen=True)
class SignIn:
    user: Any
    device: Device | None  # the second factor that was checked, if the user has one


def has_confirmed_device(user: Any) -> bool:
    return bool(getattr(user, "pk", None)) and django_otp.user_has_device(user, confirmed=True)


def two_factor_required(user: Any, trial: Trial | None) -> bool:
    return access.access_for(user, trial).requires_two_factor


def second_factor_refusal(user: Any, trial: Trial | None, *, verified: bool) -> str | None:
    """Why ``user`` may not go on (a message), or None. ``verified``: this session or token passed
    the second factor. A user whose role requires it must have a device and have used it."""
    if not two_factor_required(user, trial):
        return None
    if not has_confirmed_device(user):
        return SETUP_NEEDED
    if not verified:
        return VERIFY_NEEDED
    return None


def _normalise(token: str | None) -> str:
    return "".join((token or "").split())


def _failed(request: HttpRequest, username: str, reason: str) -> None:
    # Counted by the lockout like a wrong password, and recorded in the audit trail.
    user_login_failed.send(sender=__name__, credentials={"username": username, "reason": reason}, request=request)


def sign_in_check(*, request: HttpRequest, username: str, password: str, otp_token: str | None) -> SignIn:
    """The user, if the password (and, when they have a device, the code) is right.

    Raises ``TooManyAttempts`` when locked out, ``ApplicationError`` for a wrong username or
    password, ``NotAuthenticated`` (``errors["otp"]``) for a missing or wrong second factor.
    """
    credentials = {"username": username}
    if not AxesProxyHandler.is_allowed(request, credentials):
        # The lockout page (or JSON) replaces the response: see ``trial.views.lockout_response``.
        request.axes_locked_out = True  # type: ignore[attr-defined]
        request.axes_credentials = credentials  # type: ignore[attr-defined]
        raise TooManyAttempts(LOCKED_OUT, errors={"non_field_errors": [LOCKED_OUT]})
    user = authenticate(request, username=username, password=password)
    if user is None:
        if getattr(request, "axes_locked_out", False):
            raise TooManyAttempts(LOCKED_OUT, errors={"non_field_errors": [LOCKED_OUT]})
        raise ApplicationError("Unable to log in with those credentials.", errors={"non_field_errors": [INVALID_CREDENTIALS]})
    device = None
    if has_confirmed_device(user):
        token = _normalise(otp_token)
        device = django_otp.match_token(user, token) if token else None
        if device is None:
            _failed(request, username, "second factor missing" if not token else "second factor wrong")
            if getattr(request, "axes_locked_out", False):
                raise TooManyAttempts(LOCKED_OUT, errors={"non_field_errors": [LOCKED_OUT]})
            message = OTP_WRONG if token else OTP_MISSING
            raise NotAuthenticated(message, errors={"otp": [message]})
    return SignIn(user=user, device=device)


# --- Password checks outside the login --------------------------------------------------------


def _attempts_key(user: Any, purpose: str) -> str:
    return f"password-attempts:{purpose}:{user.pk}"


def password_attempt_check(*, user: Any, purpose: str) -> None:
    """Refuse (429) when ``user`` has failed this password check too often in the window."""
    if cache.get(_attempts_key(user, purpose), 0) >= settings.PASSWORD_ATTEMPT_LIMIT:
        minutes = settings.PASSWORD_ATTEMPT_WINDOW_MINUTES
        raise TooManyAttempts(
            f"Too many wrong passwords: try again in {minutes} minutes, or ask an administrator.",
            errors={"password": ["Too many wrong passwords."]},
        )


def password_attempt_failed(*, user: Any, purpose: str) -> int:
    """Count one failure (in the shared cache, so every worker sees it); returns the count."""
    key = _attempts_key(user, purpose)
    cache.add(key, 0, timeout=settings.PASSWORD_ATTEMPT_WINDOW_MINUTES * 60)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.PASSWORD_ATTEMPT_WINDOW_MINUTES * 60)
        return 1


def password_confirm(*, user: Any, password: str, purpose: str, message: str) -> None:
    """Check ``user``'s password for a signed or sensitive action, throttled per user and purpose:
    ``NotAllowed`` (403) when wrong, ``TooManyAttempts`` (429) after too many failures."""
    password_attempt_check(user=user, purpose=purpose)
    if not password or not user.check_password(password):
        password_attempt_failed(user=user, purpose=purpose)
        raise NotAllowed(message, errors={"password": ["Not right."]})
    cache.delete(_attempts_key(user, purpose))
