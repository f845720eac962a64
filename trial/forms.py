from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from trial import signin
from trial.errors import ApplicationError, NotAuthenticated


class LoginForm(AuthenticationForm):
    """Username, password and, for staff who have set up two-factor authentication, the code."""

    otp_token = forms.CharField(
        label=_("Authentication code"),
        required=False,
        max_length=40,
        strip=True,
        help_text=_(
            "From your authenticator app, or a recovery code. Leave empty if you have not set up two-factor authentication."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autocapitalize": "none"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.otp_device: Any = None
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Log in", css_class="btn-lg w-100"))

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return self.cleaned_data  # the missing field already has its error
        if self.request is None:  # the lockout counts by the request's address
            raise forms.ValidationError("Sign in from the login page.")
        try:
            result = signin.sign_in_check(
                request=self.request, username=username, password=password, otp_token=self.cleaned_data.get("otp_token")
            )
        except NotAuthenticated as exc:
            raise forms.ValidationError({"otp_token": exc.message}) from exc
        except ApplicationError as exc:
            raise forms.ValidationError(exc.errors.get("non_field_errors", [exc.message])[0], code="invalid_login") from exc
        self.confirm_login_allowed(result.user)
        self.user_cache = result.user
        self.otp_device = result.device
        return self.cleaned_data


class OtpTokenForm(forms.Form):
    otp_token = forms.CharField(
        label=_("Code"),
        max_length=40,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


class TwoFactorRemoveForm(forms.Form):
    credential = forms.CharField(
        label=_("Your password or a current code"),
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
