"""Data-query and lock forms. They parse input; closeout.queries.services and closeout.datalock.services decide."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crispy_forms.layout import Layout
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _

from closeout.datalock.services import DEFAULT_MEANING
from closeout.models import QueryStatus
from closeout.queries.checks import CHECK_LABELS
from participants.forms import ServiceForm
from trial.models import Site


def _password(label: str) -> forms.CharField:
    return forms.CharField(
        label=label, strip=False, required=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class QueryFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", _("Any status")), *QueryStatus.choices])
    site = forms.ChoiceField(required=False)
    check = forms.ChoiceField(
        label=_("Raised by"), required=False, choices=[("", _("Anyone or any check")), *CHECK_LABELS.items()]
    )
    record = forms.CharField(label=_("Record"), required=False, max_length=120, help_text=_("app.model:id"))
    mine = forms.BooleanField(label=_("Only mine to answer"), required=False)

    def __init__(self, *args: Any, sites: Iterable[Site], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        site = self.fields["site"]
        assert isinstance(site, forms.ChoiceField)
        site.choices = [("", _("All your sites")), *((s.code, f"{s.code} {s.name}") for s in sites)]

    def filters(self) -> dict[str, Any]:
        self.is_valid()  # invalid fields are left out of cleaned_data, so they do not filter
        return {k: v for k, v in self.cleaned_data.items() if v}


def field_choices(record: Model, definition: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """The record's own fields, and for a questionnaire response each of its items."""
    choices: list[tuple[str, str]] = [("", str(_("The whole record")))]
    for f in record._meta.concrete_fields:
        if not f.primary_key:
            choices.append((f.name, str(f.verbose_name).capitalize()))
    for item in (definition or {}).get("items", []):
        choices.append((f"answers.{item['code']}", str(_("Answer: %(question)s")) % {"question": item["text"][:80]}))
    return choices


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.get_full_name() or obj.get_username())


class QueryRaiseForm(ServiceForm):
    submit_label = _("Raise the query")

    field = forms.ChoiceField(label=_("Field"), required=False)
    text = forms.CharField(
        label=_("Question for the site"), max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    assignee = StaffChoiceField(
        label=_("Assign to"),
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label="Anyone at the site",
        to_field_name="username",
    )

    def __init__(self, *args: Any, fields: list[tuple[str, str]], assignees: QuerySet[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["field"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = fields
        assignee = self.fields["assignee"]
        assert isinstance(assignee, forms.ModelChoiceField)
        assignee.queryset = assignees
        self.helper.layout = Layout("field", "text", "assignee")
        self.helper.form_id = "query-raise-form"


class AnswerForm(ServiceForm):
    submit_label = _("Answer")

    answer = forms.CharField(
        label=_("Your answer: what was checked or corrected"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class CloseForm(ServiceForm):
    submit_label = _("Close the query")
    submit_class = "btn-success"

    note = forms.CharField(label=_("Note (required if it has no answer)"), max_length=300, required=False)


class ReopenForm(ServiceForm):
    submit_label = _("Re-open")
    submit_class = "btn-outline-danger"

    reason = forms.CharField(label=_("Why it is re-opened"), max_length=300, required=False)


class LockForm(ServiceForm):
    submit_label = _("Sign the lock")
    submit_class = "btn-danger"

    meaning = forms.CharField(label=_("Meaning of your signature"), max_length=300, required=False)
    password = _password("Your password, to sign")
    open_items_note = forms.CharField(
        label=_("Why the open items stay open"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed only while queries, reports or questionnaires are open."),
    )

    def __init__(self, *args: Any, trial_name: str, with_note: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["meaning"].initial = DEFAULT_MEANING.format(trial=trial_name)
        if not with_note:
            del self.fields["open_items_note"]
        self.helper.form_id = "lock-form"


class UnlockForm(ServiceForm):
    submit_label = _("Unlock the database")
    submit_class = "btn-outline-danger"

    reason = forms.CharField(
        label=_("Why the database is unlocked"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    password = _password("Your password, to sign")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper.form_id = "unlock-form"
