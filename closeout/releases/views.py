"""The releases page: the trial's releases with their lock, variant, creator, status and checksums;
a form to create one; progress while one builds (the page polls the API); download links."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from closeout.datalock.services import lock_current
from closeout.models import ReleaseStatus, ReleaseVariant
from closeout.releases import selectors, services
from trial import access
from trial.access import Perm
from trial.errors import ApplicationError
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
            messages.success(request, f"Release {release.number} ({release.variant}) is queued; it builds in the background.")
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
