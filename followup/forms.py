"""Staff forms for follow-up. They parse input; the services decide."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crispy_forms.layout import Field, Layout
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from followup.models import CallOutcome, Occurrence
from followup.selectors import WorklistFilters
from participants.forms import BUTTONS, ButtonChoiceField, ServiceForm, date_input
from trial.models import Site


class OccurrenceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.label}, due {obj.due_date:%d %b %Y} ({obj.get_status_display().lower()})"


class CallForm(ServiceForm):
    submit_label = _("Record call")

    outcome = ButtonChoiceField(
        label=_("Outcome"),
        choices=CallOutcome.choices,
        stacked=True,
        error_messages={"required": _("Choose the outcome of the call.")},
    )
    occurrence = OccurrenceChoiceField(
        label=_("About the questionnaire"),
        queryset=Occurrence.objects.none(),
        required=False,
        empty_label="None in particular",
        error_messages={"invalid_choice": _("Choose one of this participant's questionnaires.")},
    )
    note = forms.CharField(label=_("Note (optional)"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, occurrences: QuerySet[Occurrence], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        occurrence = self.fields["occurrence"]
        assert isinstance(occurrence, forms.ModelChoiceField)
        occurrence.queryset = occurrences
        self.helper.layout = Layout(Field("outcome", template=BUTTONS), "occurrence", "note", "next")


WORKLIST_KINDS = (
    ("closing_soon", _("Closing soon")),
    ("overdue", _("Overdue")),
    ("due_now", _("Due now")),
    ("lost_to_followup", _("Lost to follow-up?")),
    ("failed_messages", _("Failed messages")),
)


class WorklistFilterForm(forms.Form):
    """The worklist's filters, from the query string. An invalid value does not filter."""

    site = forms.ChoiceField(label=_("Site"), required=False)
    kind = forms.ChoiceField(label=_("Section"), required=False, choices=[("", _("All sections")), *WORKLIST_KINDS])
    due_from = forms.DateField(label=_("Due from"), required=False, widget=date_input())
    due_to = forms.DateField(label=_("Due to"), required=False, widget=date_input())

    def __init__(self, *args: Any, sites: Iterable[Site], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        site = self.fields["site"]
        assert isinstance(site, forms.ChoiceField)
        site.choices = [("", _("All your sites")), *((s.code, f"{s.code} {s.name}") for s in sites)]

    def filters(self) -> WorklistFilters:
        self.is_valid()  # invalid fields are left out of cleaned_data, so they do not filter
        data = self.cleaned_data
        return WorklistFilters(kind=data.get("kind") or "", due_from=data.get("due_from"), due_to=data.get("due_to"))
