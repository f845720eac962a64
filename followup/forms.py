"""Staff forms for follow-up. They parse input; the services decide."""

from __future__ import annotations

from typing import Any

from crispy_forms.layout import Field, Layout
from django import forms
from django.db.models import QuerySet

from followup.models import CallOutcome, Occurrence
from participants.forms import BUTTONS, ButtonChoiceField, ServiceForm


class OccurrenceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.label}, due {obj.due_date:%d %b %Y} ({obj.get_status_display().lower()})"


class CallForm(ServiceForm):
    submit_label = "Record call"

    outcome = ButtonChoiceField(
        label="Outcome", choices=CallOutcome.choices, stacked=True, error_messages={"required": "Choose the outcome of the call."}
    )
    occurrence = OccurrenceChoiceField(
        label="About the questionnaire",
        queryset=Occurrence.objects.none(),
        required=False,
        empty_label="None in particular",
        error_messages={"invalid_choice": "Choose one of this participant's questionnaires."},
    )
    note = forms.CharField(label="Note (optional)", required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, occurrences: QuerySet[Occurrence], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        occurrence = self.fields["occurrence"]
        assert isinstance(occurrence, forms.ModelChoiceField)
        occurrence.queryset = occurrences
        self.helper.layout = Layout(Field("outcome", template=BUTTONS), "occurrence", "note", "next")
