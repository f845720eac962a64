"""Staff forms for the participant journey. They parse input; the services decide."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Field, Fieldset, Layout, Submit
from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from participants.models import (
    Channel,
    ConsentDocument,
    ConsentMethod,
    ParticipantStatus,
    Screening,
    ScreeningOutcome,
    WithdrawalScope,
)
from participants.services import ConsentInput, ContactInput
from trial.errors import ApplicationError
from trial.models import Site, Trial, default_language, language_choices

BUTTONS = "participants/field_buttons.html"
YES_NO = [("yes", "Yes"), ("no", "No")]


def date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")  # the format <input type=date> reads


def local_today(zone: str) -> dt.date:
    return timezone.localdate(timezone=zoneinfo.ZoneInfo(zone))


class ButtonChoiceField(forms.ChoiceField):
    """Radio choices drawn as large buttons (``BUTTONS``): easy to hit on a phone."""

    widget = forms.RadioSelect

    def __init__(self, *args: Any, stacked: bool = False, kind: str = "", kind_label: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stacked = stacked
        self.kind = kind
        self.kind_label = kind_label


class ServiceForm(forms.Form):
    """A form that shows a service's refusal: its message above the form, field errors by the fields."""

    submit_label: Any = _("Save")  # lazy: in the language of the request
    submit_class = "btn-primary"

    def __init__(self, *args: Any, action: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_action = action
        submit = Submit("submit", self.submit_label)
        submit.field_classes = f"btn {self.submit_class} btn-lg"
        self.helper.add_input(submit)

    def field_for(self, key: str) -> str | None:
        """The form field that shows the service's error ``key`` (None: above the form)."""
        return key

    def show_error(self, exc: ApplicationError) -> None:
        self.add_error(None, exc.message)
        for key, messages in exc.errors.items():
            name = self.field_for(key)
            self.add_error(name if name in self.fields else None, messages)


class ScreeningForm(ServiceForm):
    submit_label = _("Record screening")

    site = forms.ModelChoiceField(
        queryset=Site.objects.none(), error_messages={"invalid_choice": _("Choose one of the sites you work at.")}
    )
    screened_on = forms.DateField(label=_("Screened on"), widget=date_input())

    def __init__(self, *args: Any, trial: Trial, sites: QuerySet[Site], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        site_list = list(sites)
        site_field = self.fields["site"]
        assert isinstance(site_field, forms.ModelChoiceField)
        site_field.queryset = sites
        if len(site_list) == 1:
            site_field.initial = site_list[0].pk
            site_field.empty_label = None
        # The earliest "today" among the user's sites: never a day the service calls the future.
        self.fields["screened_on"].initial = min(
            (local_today(s.timezone) for s in site_list), default=local_today(trial.timezone)
        )
        fields: list[Any] = ["site", "screened_on"]
        factor = trial.referral_factor
        if factor is not None:
            self.fields["referral"] = forms.ChoiceField(
                label=factor.label,
                required=False,
                choices=[("", _("Not recorded")), *((lv.code, lv.label) for lv in factor.levels.all())],
            )
            fields.append("referral")
        self.criteria = list(trial.eligibility.filter(active=True).order_by("order", "code"))
        for criterion in self.criteria:
            self.fields[f"answer_{criterion.code}"] = ButtonChoiceField(
                label=criterion.text,
                choices=YES_NO,
                kind=criterion.kind,
                kind_label=criterion.get_kind_display(),
                error_messages={"required": _("Answer yes or no.")},
            )
        self.helper.layout = Layout(
            *fields,
            Fieldset("Eligibility checklist", *(Field(f"answer_{c.code}", template=BUTTONS) for c in self.criteria)),
        )

    def field_for(self, key: str) -> str | None:
        return f"answer_{key.removeprefix('answers.')}" if key.startswith("answers.") else key

    def answers(self) -> dict[str, bool]:
        return {c.code: self.cleaned_data[f"answer_{c.code}"] == "yes" for c in self.criteria}


class DeclineForm(ServiceForm):
    submit_label = _("Record declined")

    reason = forms.CharField(
        label=_("Why did they decline? (optional)"), required=False, max_length=300, widget=forms.Textarea(attrs={"rows": 2})
    )


def consent_fields() -> dict[str, forms.Field]:
    return {
        "method": ButtonChoiceField(label=_("How consent was taken"), choices=ConsentMethod.choices),
        "signed_name": forms.CharField(
            label=_("Name, typed by the participant as their signature"),
            max_length=200,
            error_messages={"required": _("The participant types their name to sign.")},
        ),
    }


def _zone_choices() -> list[tuple[str, str]]:
    return [(z, z) for z in sorted(zoneinfo.available_timezones())]


class EnrolForm(ServiceForm):
    submit_label = _("Enrol")

    version = forms.ChoiceField(label=_("Consent form version"))
    email = forms.EmailField(label=_("E-mail"), required=False)
    mobile = forms.CharField(label=_("Mobile"), required=False, max_length=30, widget=forms.TextInput(attrs={"type": "tel"}))
    preferred_channel = ButtonChoiceField(label=_("Send questionnaires by"), choices=Channel.choices, initial=Channel.EMAIL)
    timezone = forms.ChoiceField(label=_("Participant's time zone"), choices=_zone_choices)
    language = forms.ChoiceField(
        label=_("Language"),
        choices=language_choices,
        initial=default_language,
        required=False,  # blank: the site's language
        help_text=_("Their pages and messages are in it."),
    )

    def __init__(
        self,
        *args: Any,
        screening: Screening,
        documents: Iterable[ConsentDocument],
        current: ConsentDocument | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        site, trial = screening.site, screening.site.trial
        self.fields.update(consent_fields())
        version = self.fields["version"]
        assert isinstance(version, forms.ChoiceField)
        version.choices = [
            (d.version, f"v{d.version}: {d.title}{' (current)' if current and d.pk == current.pk else ''}") for d in documents
        ]
        version.initial = current.version if current else None
        self.fields["timezone"].initial = site.timezone
        self.factors = list(trial.strata.prefetch_related("levels").order_by("order", "code"))
        for factor in self.factors:
            self.fields[f"stratum_{factor.code}"] = forms.ChoiceField(
                label=factor.label,
                choices=[("", _("Choose…")), *((lv.code, lv.label) for lv in factor.levels.all())],
                initial=screening.referral if factor.pk == trial.referral_factor_id else None,
            )
        self.helper.layout = Layout(
            Fieldset("Consent", "version", Field("method", template=BUTTONS), "signed_name"),
            Fieldset("Stratification", *(f"stratum_{f.code}" for f in self.factors)),
            Fieldset(
                "Contact details",
                HTML('<p class="form-text">An e-mail address, a mobile number, or both.</p>'),
                "email",
                "mobile",
                Field("preferred_channel", template=BUTTONS),
                "timezone",
                "language",
            ),
        )

    def field_for(self, key: str) -> str | None:
        if key == "contact":
            return "email"
        if key.startswith("strata."):
            return f"stratum_{key.removeprefix('strata.')}"
        return key.split(".", 1)[-1]

    def consent(self) -> ConsentInput:
        data = self.cleaned_data
        return ConsentInput(method=data["method"], signed_name=data["signed_name"], version=data["version"] or None)

    def strata(self) -> dict[str, str]:
        return {
            f.code: self.cleaned_data[f"stratum_{f.code}"] for f in self.factors if self.cleaned_data.get(f"stratum_{f.code}")
        }

    def contact(self) -> ContactInput:
        data = self.cleaned_data
        return ContactInput(
            email=data["email"],
            mobile=data["mobile"],
            timezone=data["timezone"],
            preferred_channel=data["preferred_channel"],
            language=data["language"],
        )


class ReconsentForm(ServiceForm):
    submit_label = _("Record re-consent")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(consent_fields())
        self.helper.layout = Layout(Field("method", template=BUTTONS), "signed_name")

    def field_for(self, key: str) -> str | None:
        return key.split(".", 1)[-1]

    def consent(self) -> ConsentInput:
        return ConsentInput(method=self.cleaned_data["method"], signed_name=self.cleaned_data["signed_name"])


class WithdrawForm(ServiceForm):
    submit_label = _("Record withdrawal")

    scope = ButtonChoiceField(label=_("The participant withdraws from"), choices=WithdrawalScope.choices, stacked=True)
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    withdrawn_on = forms.DateField(label=_("Date of withdrawal"), widget=date_input())

    def __init__(self, *args: Any, zone: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["withdrawn_on"].initial = local_today(zone)
        self.helper.layout = Layout(Field("scope", template=BUTTONS), "reason", "withdrawn_on")


class UnblindForm(ServiceForm):
    submit_label = _("Unblind this participant")
    submit_class = "btn-danger"

    reason = forms.CharField(label=_("Clinical reason for unblinding"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    password = forms.CharField(
        label=_("Your password, to confirm"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class ScreeningFilterForm(forms.Form):
    site = forms.ChoiceField(label=_("Site"), required=False)
    outcome = forms.ChoiceField(label=_("Outcome"), required=False, choices=[("", _("Any outcome")), *ScreeningOutcome.choices])
    date_from = forms.DateField(label=_("From"), required=False, widget=date_input())
    date_to = forms.DateField(label=_("To"), required=False, widget=date_input())

    def __init__(self, *args: Any, sites: Iterable[Site], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        site = self.fields["site"]
        assert isinstance(site, forms.ChoiceField)
        site.choices = [("", _("All your sites")), *((s.code, f"{s.code} {s.name}") for s in sites)]

    def filters(self) -> dict[str, Any]:
        self.is_valid()  # invalid fields are left out of cleaned_data, so they do not filter
        return {k: v for k, v in self.cleaned_data.items() if v}


class ParticipantFilterForm(ScreeningFilterForm):
    status = forms.ChoiceField(label=_("Status"), required=False, choices=[("", _("Any status")), *ParticipantStatus.choices])
    q = forms.CharField(label=_("Study id"), required=False, max_length=30)  # part of a study id (older links)
    search = forms.CharField(label=_("Search"), required=False, max_length=100)

    def __init__(self, *args: Any, sites: Iterable[Site], contacts: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, sites=sites, **kwargs)
        for name in ("outcome", "date_from", "date_to"):
            del self.fields[name]
        self.fields["search"].help_text = (
            _("A study id, or a name, e-mail address or phone number.") if contacts else _("A study id, or its start.")
        )
