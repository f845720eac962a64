"""Staff forms of the intervention pages. They parse input; the services decide."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from typing import Any

from crispy_forms.layout import HTML, Field, Fieldset, Layout
from django import forms
from django.utils.translation import gettext_lazy as _

from intervention.models import Attendance, DeliveryMode
from intervention.services import PrescriptionInput
from participants.forms import BUTTONS, ButtonChoiceField, ServiceForm, date_input
from trial.models import Site

DAY, WEEK = "day", "week"
LONGEST_RANGE_DAYS = 62


def time_input() -> forms.TimeInput:
    return forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


def mode_choices(modes: Iterable[str]) -> list[tuple[str, str]]:
    return [(m, str(DeliveryMode(m).label)) for m in modes if m in DeliveryMode.values]


class AgendaForm(forms.Form):
    """The agenda's filters. Invalid values are reported and the defaults used instead."""

    date = forms.DateField(
        label=_("Date"), required=False, widget=date_input(), error_messages={"invalid": _("Give the date as YYYY-MM-DD.")}
    )
    view = forms.ChoiceField(label=_("View"), required=False, choices=[(DAY, _("Day")), (WEEK, _("Week"))])
    physiotherapist = forms.ChoiceField(
        required=False, error_messages={"invalid_choice": _("Choose a physiotherapist at your sites.")}
    )

    def __init__(self, *args: Any, physiotherapists: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["physiotherapist"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(str(p.pk), p.get_full_name() or p.get_username()) for p in physiotherapists]

    def value(self, name: str) -> Any:
        self.is_valid()
        return self.cleaned_data.get(name) or None


class RangeForm(forms.Form):
    """Look for slots between two dates, e.g. outside the session's window."""

    date_from = forms.DateField(
        label=_("From"), widget=date_input(), error_messages={"invalid": _("Give the date as YYYY-MM-DD.")}
    )
    date_to = forms.DateField(label=_("To"), widget=date_input(), error_messages={"invalid": _("Give the date as YYYY-MM-DD.")})

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        if data is not None:  # the query string says ?from=&to=
            data = {"date_from": data.get("from", ""), "date_to": data.get("to", "")}
        super().__init__(data, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if end < start:
                self.add_error("date_to", "The end comes before the start.")
            elif (end - start).days >= LONGEST_RANGE_DAYS:
                self.add_error("date_to", f"Look at most {LONGEST_RANGE_DAYS} days at a time.")
        return data


def parse_instant(value: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class BookForm(ServiceForm):
    """A slot, a mode and, outside the window, a reason. The page draws it by hand: the free slots
    are grouped by day around the mode and reason fields."""

    submit_label = _("Book this slot")
    slot_taken = False  # set when the service found the chosen slot taken meanwhile

    slot = forms.CharField(error_messages={"required": _("Choose a free slot.")})
    mode = ButtonChoiceField(label=_("How"), error_messages={"required": _("Choose how the session is held.")})
    reason = forms.CharField(
        label=_("Reason (required outside the session's window)"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, modes: Iterable[str], rescheduling: bool = False, **kwargs: Any) -> None:
        if rescheduling:
            self.submit_label = _("Move the booking to this slot")
        super().__init__(*args, **kwargs)
        mode = self.fields["mode"]
        assert isinstance(mode, forms.ChoiceField)
        mode.choices = mode_choices(modes)
        if len(mode.choices) == 1:
            mode.initial = mode.choices[0][0]

    def field_for(self, key: str) -> str | None:
        return "slot" if key == "starts_at" else key

    def clean_slot(self) -> dt.datetime:
        moment = parse_instant(self.cleaned_data["slot"])
        if moment is None:
            raise forms.ValidationError("Choose one of the free slots shown.")
        return moment


class CancelForm(ServiceForm):
    submit_label = _("Cancel the booking")
    submit_class = "btn-outline-danger"

    reason = forms.CharField(
        label=_("Why is the booking cancelled?"),
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": _("Say why the booking is cancelled.")},
    )


class RecordForm(ServiceForm):
    submit_label = _("Save the record")

    attendance = ButtonChoiceField(
        label=_("Attendance"), choices=Attendance.choices, error_messages={"required": _("Choose one.")}
    )
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"), required=False, min_value=1, max_value=300, help_text=_("Required when attended.")
    )
    topics = forms.MultipleChoiceField(label=_("Topics covered"), required=False, widget=forms.CheckboxSelectMultiple)
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(
        self, *args: Any, topics: Iterable[Sequence[str]], sets_prescription: bool, correcting: bool, **kwargs: Any
    ) -> None:
        if correcting:
            self.submit_label = _("Save the correction")
        super().__init__(*args, **kwargs)
        field = self.fields["topics"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(code, label) for code, label in topics]
        self.sets_prescription = sets_prescription
        parts: list[Any] = [Field("attendance", template=BUTTONS), "duration_minutes", "topics", "notes"]
        if sets_prescription:
            self.fields["walks_per_week"] = forms.IntegerField(
                label=_("Walks per week"), required=False, min_value=1, max_value=14
            )
            self.fields["minutes_per_walk"] = forms.IntegerField(
                label=_("Minutes per walk"), required=False, min_value=1, max_value=300
            )
            self.fields["progression"] = forms.CharField(
                label=_("Progression"), required=False, widget=forms.Textarea(attrs={"rows": 2})
            )
            parts.append(
                Fieldset(
                    "Walking prescription",
                    HTML('<p class="form-text">This session sets the walking prescription: required when attended.</p>'),
                    "walks_per_week",
                    "minutes_per_walk",
                    "progression",
                )
            )
        if correcting:
            self.fields["reason"] = forms.CharField(
                label=_("Reason for the correction"),
                max_length=300,
                error_messages={"required": _("This session was already recorded: say why it is corrected.")},
            )
            parts.append("reason")
        self.helper.layout = Layout(*parts)

    def field_for(self, key: str) -> str | None:
        return "walks_per_week" if key == "prescription" else key

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.sets_prescription:
            walks, minutes = data.get("walks_per_week"), data.get("minutes_per_walk")
            if (walks is None) != (minutes is None):
                missing = "minutes_per_walk" if minutes is None else "walks_per_week"
                if missing not in self.errors:
                    self.add_error(missing, "Give both walks per week and minutes per walk.")
        return data

    def prescription(self) -> PrescriptionInput | None:
        data = self.cleaned_data
        if not self.sets_prescription or data.get("walks_per_week") is None or data.get("minutes_per_walk") is None:
            return None
        return PrescriptionInput(
            walks_per_week=data["walks_per_week"], minutes_per_walk=data["minutes_per_walk"], progression=data["progression"]
        )


class LeaveForm(ServiceForm):
    """Leave in the physiotherapist's time zone: whole days unless times are given."""

    submit_label = _("Add leave")

    starts_on = forms.DateField(label=_("From"), widget=date_input())
    starts_time = forms.TimeField(label=_("From time"), required=False, widget=time_input(), help_text=_("Empty: start of day."))
    ends_on = forms.DateField(label=_("To"), widget=date_input())
    ends_time = forms.TimeField(label=_("To time"), required=False, widget=time_input(), help_text=_("Empty: end of day."))
    reason = forms.CharField(label=_("Note (optional)"), required=False, max_length=200)
    what = forms.CharField(widget=forms.HiddenInput, initial="leave")

    def __init__(self, *args: Any, zone: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zoneinfo.ZoneInfo(zone)

    def field_for(self, key: str) -> str | None:
        return {"starts_at": "starts_on", "ends_at": "ends_on"}.get(key, key)

    def period(self) -> tuple[dt.datetime, dt.datetime]:
        data = self.cleaned_data
        starts_at = dt.datetime.combine(data["starts_on"], data["starts_time"] or dt.time(0), tzinfo=self.zone)
        if data["ends_time"] is not None:
            ends_at = dt.datetime.combine(data["ends_on"], data["ends_time"], tzinfo=self.zone)
        else:
            ends_at = dt.datetime.combine(data["ends_on"] + dt.timedelta(days=1), dt.time(0), tzinfo=self.zone)
        return starts_at.astimezone(dt.UTC), ends_at.astimezone(dt.UTC)


class SiteChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.code} {obj.name}"


class ExtraSlotForm(ServiceForm):
    """One-off time at a clinic, in the clinic's wall-clock time."""

    submit_label = _("Add extra time")

    site = SiteChoiceField(label=_("Clinic"), queryset=Site.objects.none(), empty_label=None)
    day = forms.DateField(label=_("Day"), widget=date_input())
    start = forms.TimeField(label=_("From"), widget=time_input())
    end = forms.TimeField(label=_("To"), widget=time_input())
    modes = forms.MultipleChoiceField(
        label=_("Modes"), required=False, widget=forms.CheckboxSelectMultiple, help_text=_("None ticked: every mode you offer.")
    )
    what = forms.CharField(widget=forms.HiddenInput, initial="extra")

    def __init__(self, *args: Any, sites: Any, modes: Iterable[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        site = self.fields["site"]
        assert isinstance(site, forms.ModelChoiceField)
        site.queryset = sites
        field = self.fields["modes"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = mode_choices(modes)

    def field_for(self, key: str) -> str | None:
        return {"starts_at": "start", "ends_at": "end"}.get(key, key)

    def period(self) -> tuple[dt.datetime, dt.datetime]:
        data = self.cleaned_data
        zone = zoneinfo.ZoneInfo(data["site"].timezone)
        starts_at = dt.datetime.combine(data["day"], data["start"], tzinfo=zone)
        ends_at = dt.datetime.combine(data["day"], data["end"], tzinfo=zone)
        return starts_at.astimezone(dt.UTC), ends_at.astimezone(dt.UTC)
