"""The form a data manager adjudicates an outcome with. It parses input; the service decides."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crispy_forms.layout import Field, Layout
from django import forms
from django.utils.translation import gettext_lazy as _

from participants.forms import BUTTONS, ButtonChoiceField, ServiceForm, date_input


class AdjudicateForm(ServiceForm):
    submit_label = _("Save the adjudication")

    event = ButtonChoiceField(
        label=_("Adjudicated value"),
        choices=[("yes", "An event"), ("no", "No event")],
        error_messages={"required": _("Event or no event?")},
    )
    event_date = forms.DateField(label=_("Event date"), required=False, widget=date_input())
    reason = forms.CharField(label=_("Reason (why the derived value is overridden)"), max_length=300)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper.layout = Layout(Field("event", template=BUTTONS), "event_date", "reason")

    def values(self) -> dict[str, Any]:
        event = self.cleaned_data["event"] == "yes"
        event_date: dt.date | None = self.cleaned_data["event_date"]
        return {"event": event, "event_date": event_date, "reason": self.cleaned_data["reason"]}
