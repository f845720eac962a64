"""Adverse-event forms. They parse input; safety.services decides (every field is
checked there, together, so most fields here are optional and the service's messages are shown)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from crispy_forms.layout import Field, Fieldset, Layout
from django import forms
from django.utils.translation import gettext_lazy as _

from participants.forms import BUTTONS, ButtonChoiceField, ServiceForm, date_input
from safety.models import AdverseEvent, AEOutcome, AEStatus, Relatedness, SafetyPolicy, SeriousCriterion, Severity
from safety.services import AEInput
from trial.models import Site

EXPECTED = [("", _("Not assessed")), ("yes", "Expected"), ("no", "Unexpected")]


def _optional(choices: Iterable[tuple[str, Any]], blank: Any) -> list[tuple[str, Any]]:
    return [("", blank), *choices]


class AdverseEventForm(ServiceForm):
    submit_label = _("Record the adverse event")

    onset_date = forms.DateField(label=_("Onset date"), required=False, widget=date_input())
    description = forms.CharField(
        label=_("What happened"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )
    category = forms.ChoiceField(label=_("Category"), required=False)
    severity = ButtonChoiceField(label=_("Severity"), choices=Severity.choices, required=False)
    serious = forms.BooleanField(
        label=_("Serious"), required=False, help_text=_("Tick if it meets any criterion of a serious event.")
    )
    serious_criteria = forms.MultipleChoiceField(
        label=_("Seriousness criteria"), required=False, choices=SeriousCriterion.choices, widget=forms.CheckboxSelectMultiple
    )
    relatedness = forms.ChoiceField(
        label=_("Related to the study"), required=False, choices=_optional(Relatedness.choices, "Not assessed")
    )
    expected = forms.ChoiceField(label=_("Expected"), required=False, choices=EXPECTED)
    action_taken = forms.CharField(label=_("Action taken"), required=False, max_length=300)
    outcome = forms.ChoiceField(label=_("Outcome"), required=False, choices=_optional(AEOutcome.choices, "Not known yet"))
    resolution_date = forms.DateField(label=_("Resolution date"), required=False, widget=date_input())

    def __init__(self, *args: Any, policy: SafetyPolicy, with_reason: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        category = self.fields["category"]
        assert isinstance(category, forms.ChoiceField)
        category.choices = _optional(((code, label) for code, label in policy.categories), "Choose…")
        layout: list[Any] = [
            Fieldset(
                "The event",
                "onset_date",
                "description",
                "category",
                Field("severity", template=BUTTONS),
                "serious",
                "serious_criteria",
            ),
            Fieldset("Assessment", "relatedness", "expected", "action_taken", "outcome", "resolution_date"),
        ]
        if with_reason:
            self.fields["reason"] = forms.CharField(label=with_reason, max_length=300, widget=forms.Textarea(attrs={"rows": 2}))
            layout.append(Fieldset("Why", "reason"))
        self.helper.layout = Layout(*layout)
        self.helper.form_id = "adverse-event-form"

    @staticmethod
    def initial_for(event: AdverseEvent) -> dict[str, Any]:
        expected = "" if event.expected is None else ("yes" if event.expected else "no")
        return {
            "onset_date": event.onset_date,
            "description": event.description or event.reported_text,
            "category": event.category,
            "severity": event.severity,
            "serious": event.serious,
            "serious_criteria": list(event.serious_criteria or []),
            "relatedness": event.relatedness,
            "expected": expected,
            "action_taken": event.action_taken,
            "outcome": event.outcome,
            "resolution_date": event.resolution_date,
        }

    def data_input(self) -> AEInput:
        data = self.cleaned_data
        expected: bool | None = None if not data["expected"] else data["expected"] == "yes"
        resolution_date: dt.date | None = data["resolution_date"]
        return AEInput(
            onset_date=data["onset_date"],
            description=data["description"],
            category=data["category"],
            severity=data["severity"] or "",
            serious=data["serious"],
            serious_criteria=list(data["serious_criteria"]),
            relatedness=data["relatedness"],
            expected=expected,
            action_taken=data["action_taken"],
            outcome=data["outcome"],
            resolution_date=resolution_date,
        )


class FollowUpForm(ServiceForm):
    submit_label = _("Add the follow-up")

    note = forms.CharField(
        label=_("News of the event"), max_length=5000, widget=forms.Textarea(attrs={"rows": 2}), required=False
    )
    outcome = forms.ChoiceField(label=_("Outcome now"), required=False, choices=_optional(AEOutcome.choices, "Unchanged"))
    resolution_date = forms.DateField(label=_("Resolution date"), required=False, widget=date_input())


class DismissForm(ServiceForm):
    submit_label = _("Dismiss: not an adverse event")
    submit_class = "btn-outline-danger"

    reason = forms.CharField(label=_("Why it is not an adverse event"), max_length=300, required=False)


class AEFilterForm(forms.Form):
    participant = forms.CharField(label=_("Study id"), required=False, max_length=30)
    site = forms.ChoiceField(label=_("Site"), required=False)
    serious = forms.ChoiceField(
        label=_("Serious"),
        required=False,
        choices=[("", _("Serious or not")), ("true", _("Serious")), ("false", _("Not serious"))],
    )
    category = forms.ChoiceField(label=_("Category"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False, choices=_optional(AEStatus.choices, _("Any status")))

    def __init__(self, *args: Any, sites: Iterable[Site], policy: SafetyPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        site = self.fields["site"]
        assert isinstance(site, forms.ChoiceField)
        site.choices = _optional(((s.code, f"{s.code} {s.name}") for s in sites), "All your sites")
        category = self.fields["category"]
        assert isinstance(category, forms.ChoiceField)
        category.choices = _optional(((code, label) for code, label in policy.categories), "Any category")

    def clean_participant(self) -> str:
        value: str = self.cleaned_data["participant"].strip()
        if value.isdigit() and len(value) > 18:
            raise forms.ValidationError("A study id.")
        return value

    def filters(self) -> dict[str, str]:
        self.is_valid()  # invalid fields are left out of cleaned_data, so they do not filter
        return {k: v for k, v in self.cleaned_data.items() if v}
