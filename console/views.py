"""Staff pages that combine features: the dashboard and a record's history (with its data queries)."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from closeout.queries.selectors import queries_for_record
from console import charts, progress
from console import selectors as console_selectors
from followup import instruments
from followup.models import QuestionnaireResponse
from participants import blinding, records
from trial import access, selectors
from trial.access import Perm


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    trial = getattr(request, "trial", None)
    if not trial:
        return render(request, "trial/no_trial.html", status=503)
    acc = access.access_for(request.user, trial)
    if Perm.VIEW_DASHBOARD not in acc.perms:
        raise PermissionDenied("Your account has no role on this trial.")
    config = selectors.trial_configuration(trial=trial)
    counts = console_selectors.site_counts(trial=trial, user=request.user)
    totals = {
        "participants": sum(c.participants for c in counts),
        "randomised": sum(c.randomised for c in counts),
        "withdrawn": sum(c.withdrawn for c in counts),
    }
    months = progress.recruitment_by_month(trial=trial, user=request.user)
    funnel = progress.screening_funnel(trial=trial, user=request.user)
    completion = progress.followup_completion(trial=trial, user=request.user)
    return render(
        request,
        "trial/dashboard.html",
        {
            "recruitment": months,
            "recruitment_chart": charts.recruitment_chart(months, target=trial.recruitment_target),
            "funnel": funnel,
            "funnel_chart": charts.funnel_chart(funnel),
            "completion": completion,
            "completion_chart": charts.completion_chart(completion),
            "attention": progress.needs_attention(trial=trial, user=request.user),
            "sees_participants": Perm.VIEW_PARTICIPANTS in acc.perms,
            "trial": config,
            "access": acc,
            "counts": counts,
            "totals": totals,
            "sees_allocation": acc.sees_allocation,
            "arm_names": [arm.name for arm in config.arms.all()],
        },
    )


# Records whose model moved to another app keep their old history addresses: they redirect.
MOVED_RECORDS = {
    **{
        f"participants.{name}": f"intervention.{name}"
        for name in (
            "interventionpolicy",
            "sessionplan",
            "workinghours",
            "extraslot",
            "leave",
            "holiday",
            "session",
            "sessionrecord",
            "prescription",
            "walk",
        )
    },
    **{f"participants.{name}": f"safety.{name}" for name in ("safetypolicy", "adverseevent", "aefollowup")},
    **{f"trial.{name}": f"closeout.{name}" for name in ("databaselock", "release", "dataquery")},
    **{f"followup.{name}": f"messaging.{name}" for name in ("message", "messagetemplate", "messagepolicy")},
    "followup.accesslink": "participants.accesslink",
}


def _answers_redacted(entries: list[blinding.HistoryEntry], *, definition: Any) -> list[blinding.HistoryEntry]:
    """The history of a questionnaire's answers with identifying answers (a date of birth) hidden."""

    def redact(value: Any) -> Any:
        return instruments.answers_redact(definition=definition, answers=value) if isinstance(value, dict) else value

    return [
        dataclasses.replace(
            entry,
            changes=[
                (field, redact(old), redact(new)) if field == "answers" else (field, old, new)
                for field, old, new in entry.changes
            ],
            data={k: redact(v) if k == "answers" else v for k, v in entry.data.items()},
        )
        for entry in entries
    ]


@login_required
def record_history(request: HttpRequest, app_label: str, model_name: str, pk: int) -> HttpResponse:
    if moved := MOVED_RECORDS.get(f"{app_label}.{model_name}".lower()):
        new_app, new_model = moved.split(".")
        return redirect("record-history", app_label=new_app, model_name=new_model, pk=pk, permanent=True)
    trial = access.page_trial(request)
    # Only kinds of record with a rule are looked up at all; any other answers as a missing record.
    if records.rule_for(f"{app_label}.{model_name}") is None:
        raise Http404("No such record, or not one you can see.")
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError as exc:
        raise Http404("No such record, or not one you can see.") from exc
    obj = model._default_manager.filter(pk=pk).first()
    # A record the user may not see is reported as missing, not as forbidden.
    if obj is None or not blinding.can_view_record(request.user, obj, trial=trial):
        raise Http404("No such record, or not one you can see.")
    entries = blinding.record_history(obj=obj, user=request.user, trial=trial)
    if isinstance(obj, QuestionnaireResponse) and not access.has_perm(request.user, Perm.VIEW_CONTACTS, trial=trial):
        entries = _answers_redacted(entries, definition=obj.instrument_version.definition)

    record_type = obj._meta.label_lower
    clinical = records.may_raise_query(record_type)
    return render(
        request,
        "trial/history.html",
        {
            "object": obj,
            "verbose_name": model._meta.verbose_name,
            "tz": trial.timezone or "UTC",
            "entries": entries,
            "queries": list(queries_for_record(record_type=record_type, record_id=pk)) if clinical else [],
            "raise_query_url": f"{reverse('query-new')}?record={record_type}:{pk}"
            if clinical and access.has_perm(request.user, Perm.MANAGE_QUERIES, trial=trial)
            else "",
        },
    )
