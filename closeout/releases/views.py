"""The releases page: the trial's releases with their lock, variant, creator, status and checksums;
a form to create one; progress while one builds (the page polls the API); download links. And the
analysis page: the newest release's statistical analysis, as the release itself holds it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from closeout.datalock.services import lock_current
from closeout.models import ReleaseStatus, ReleaseVariant
from closeout.releases import selectors, services
from trial import access
from trial.access import Perm
from trial.errors import ApplicationError, NotAllowed, NotFound
from trial.models import Trial


def _trial(request: HttpRequest) -> Trial:
    return access.page_trial(
        request, Perm.CREATE_RELEASE, message="Only investigators and statisticians work with dataset releases."
    )


@login_required
def release_page(request: HttpRequest) -> HttpResponse:
    trial = _trial(request)
    if request.method == "POST":
        variant = request.POST.get("variant", "")
        try:
            release = services.release_create(trial=trial, variant=variant, by=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                gettext("Release %(number)s (%(variant)s) is queued; it builds in the background.")
                % {"number": release.number, "variant": release.variant},
            )
        return redirect("releases")
    variants = [(ReleaseVariant.BLINDED.value, ReleaseVariant.BLINDED.label)]
    if trial.data_locked_at is not None and access.can_see_allocation(request.user, trial=trial):
        variants.append((ReleaseVariant.UNBLINDED.value, ReleaseVariant.UNBLINDED.label))
    releases = list(selectors.release_list(trial=trial))
    return render(
        request,
        "closeout/releases.html",
        {
            "trial": trial,
            "lock": lock_current(trial=trial) if trial.data_locked_at else None,
            "variants": variants,
            "releases": releases,
            "building": [r.pk for r in releases if r.status in (ReleaseStatus.QUEUED, ReleaseStatus.BUILDING)],
            "not_locked": services.NOT_LOCKED,
        },
    )


@login_required
@require_POST
def release_retry_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The Retry button of a failed release: a new release of the same lock and variant."""
    trial = _trial(request)
    release = selectors.release_get(trial=trial, pk=pk)
    if release is None:
        raise Http404(gettext("No such release."))
    try:
        retry = services.release_retry(release=release, by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            gettext("Release %(failed)s is built again as release %(number)s; it builds in the background.")
            % {"failed": release.number, "number": retry.number},
        )
    return redirect("releases")


def _number(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "—" if value is None else ("<0.001" if value < 0.001 else f"{value:.3f}")


def _median(summary: dict[str, Any]) -> str:
    if summary["median_days"] is None:
        return gettext("not reached")
    low, high = summary["median_ci"]
    return gettext("%(median)s (%(low)s to %(high)s)") % {
        "median": _number(summary["median_days"], 0),
        "low": _number(low, 0),
        "high": gettext("not reached") if high is None else _number(high, 0),
    }


def _analysis_context(results: dict[str, Any], figures: dict[str, str]) -> dict[str, Any]:
    """results.json as rows for the template: one column per arm and one overall (pooled only when blinded)."""
    arm = results.get("arm")
    groups = [(code, arm["labels"][code]) for code in arm["codes"]] if arm else []
    groups.append(("pooled", gettext("Overall") if arm else gettext("All participants")))
    outcomes = []
    for code, outcome in results["outcomes"].items():
        summaries = [(label, outcome["pooled"] if key == "pooled" else outcome["arms"][key]) for key, label in groups]
        outcomes.append(
            {
                "code": code,
                "label": outcome["label"],
                "primary": outcome["primary"],
                "hazard_ratio": _number(outcome.get("hazard_ratio")),
                "ci": [_number(v) for v in outcome.get("ci", [None, None])],
                "p": _p(outcome.get("p")),
                "stratified_hazard_ratio": _number(outcome.get("stratified_hazard_ratio")),
                "stratified_ci": [_number(v) for v in outcome.get("stratified_ci", [None, None])],
                "stratified_p": _p(outcome.get("stratified_p")),
                "note": outcome.get("note", ""),
                "rows": [(label, s["n"], s["events"], _median(s)) for label, s in summaries],
                "figure": figures.get(code, ""),
                "alt": results.get("figures", {}).get(code, {}).get("alt", ""),
            }
        )
    adverse = [
        {
            "label": row["label"],
            "cells": [
                gettext("%(participants)s of %(n)s (%(events)s events)")
                % {"participants": row[key]["participants"], "n": row[key]["n"], "events": row[key]["events"]}
                for key, _ in groups
            ],
            "p": _p(row.get("fisher_p")),
        }
        for row in results["adverse_events"]["rows"]
    ]
    baseline = []
    for variable in results["baseline"]["variables"]:
        if variable["kind"] == "continuous":
            baseline.append(
                (
                    gettext("%(label)s, mean (SD)") % {"label": variable["label"]},
                    [f"{_number(variable[key]['mean'])} ({_number(variable[key]['sd'])})" for key, _ in groups],
                )
            )
            baseline.append(
                (
                    gettext("%(label)s, median (IQR)") % {"label": variable["label"]},
                    [
                        f"{_number(variable[key]['median'])} ({_number(variable[key]['iqr'][0])} to {_number(variable[key]['iqr'][1])})"
                        for key, _ in groups
                    ],
                )
            )
        else:
            for index, level in enumerate(variable["pooled"]["levels"]):
                baseline.append(
                    (
                        f"{variable['label']}: {level['label']}",
                        [
                            f"{variable[key]['levels'][index]['n']} ({_number(variable[key]['levels'][index]['percent'], 1)}%)"
                            for key, _ in groups
                        ],
                    )
                )
        baseline.append(
            (gettext("%(label)s: missing") % {"label": variable["label"]}, [str(variable[key]["missing"]) for key, _ in groups])
        )
    repeated = [
        {
            "label": measure["label"],
            "effect": _number(measure["model"]["effect"]),
            "ci": [_number(v) for v in measure["model"]["ci"]],
            "p": _p(measure["model"]["p"]),
            "note": measure["model"].get("note", ""),
        }
        for measure in results["repeated"].values()
        if "model" in measure
    ]
    return {
        "arm": arm,
        "intervention": arm["labels"][arm["intervention"]] if arm else "",
        "control": arm["labels"][arm["control"]] if arm else "",
        "groups": [label for _, label in groups],
        "populations": results["populations"],
        "outcomes": outcomes,
        "adverse": adverse,
        "baseline": baseline,
        "baseline_n": [results["baseline"]["n"][key] for key, _ in groups],
        "repeated": repeated,
        "economic": results["economic"]["note"],
    }


@login_required
def release_analysis_page(request: HttpRequest) -> HttpResponse:
    """The analysis of the newest ready release the user may download (the pooled, blinded one for a
    role that does not see arms), read from the release's own results.json and plots."""
    trial = _trial(request)
    try:
        analysis = services.release_analysis_read(trial=trial, by=request.user)
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc
    except NotFound as exc:  # the release's zip is missing from the server
        raise Http404(exc.message) from exc
    context: dict[str, Any] = {"trial": trial, "analysis": analysis}
    if analysis is not None and analysis.results is not None:
        context.update(_analysis_context(analysis.results, analysis.figures))
    return render(request, "closeout/release_analysis.html", context)
