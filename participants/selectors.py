"""Reads about participants, scoped to what the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, QuerySet, Subquery

from participants.models import Consent, ConsentDocument, Participant, ParticipantStratum, Screening
from trial import access
from trial.models import StratificationFactor, Trial


def consent_document_current(*, trial: Trial) -> ConsentDocument | None:
    return ConsentDocument.objects.filter(trial=trial).order_by("-published_at", "-id").first()


def stratification_answers(*, participant: Participant, trial: Trial) -> dict[str, tuple[str, str | None]]:
    """Every stratification factor of the trial -> (label, the participant's level code or None), in one query."""
    level = ParticipantStratum.objects.filter(participant=participant, factor=OuterRef("pk")).values("level__code")[:1]
    rows = (
        StratificationFactor.objects.filter(trial=trial)
        .order_by("order", "code")
        .annotate(level_code=Subquery(level))
        .values_list("code", "label", "level_code")
    )
    return {code: (label, level_code) for code, label, level_code in rows}


def randomisation_missing(
    *, participant: Participant, trial: Trial, answers: dict[str, tuple[str, str | None]] | None = None
) -> list[str]:
    """What stands in the way of randomising, in words a coordinator acts on. Empty when ready."""
    missing = []
    screening = participant.screening
    if screening is None or not screening.eligible:
        missing.append("eligibility is not confirmed")
    has_consent = getattr(participant, "has_consent", None)
    if has_consent is None:
        has_consent = Consent.objects.filter(participant=participant).exists()
    if not has_consent:
        missing.append("consent is not recorded")
    answers = answers if answers is not None else stratification_answers(participant=participant, trial=trial)
    for label, level in answers.values():
        if level is None:
            missing.append(f"the stratification answer '{label}' is missing")
    if participant.withdrawn_from_followup:
        missing.append("the participant has withdrawn")
    return missing


def _latest_consent_version() -> Subquery:
    return Subquery(
        Consent.objects.filter(participant=OuterRef("pk")).order_by("-consented_at", "-id").values("document__version")[:1]
    )


def participant_list(*, user: Any, trial: Trial, filters: dict[str, Any] | None = None) -> QuerySet[Participant]:
    """Participants at the sites the user may see, with what list pages show, in constant queries."""
    filters = filters or {}
    sites = access.visible_sites(user, trial=trial)
    current = consent_document_current(trial=trial)
    qs = (
        Participant.objects.filter(site__in=sites)
        .select_related("site", "allocation__arm")
        .prefetch_related(Prefetch("strata", queryset=ParticipantStratum.objects.select_related("factor", "level")))
        .annotate(consent_version=_latest_consent_version())
    )
    if current is not None:
        qs = qs.annotate(has_current_consent=Exists(Consent.objects.filter(participant=OuterRef("pk"), document=current)))
    if site := filters.get("site"):
        qs = qs.filter(site__code=site)
    if status := filters.get("status"):
        qs = qs.filter(status=status)
    if q := filters.get("q"):
        qs = qs.filter(study_id__icontains=q)
    return qs.order_by("study_id")


def participant_get(*, user: Any, trial: Trial, pk: int) -> Participant | None:
    return participant_list(user=user, trial=trial).filter(pk=pk).first()


def screening_list(*, user: Any, trial: Trial, filters: dict[str, Any] | None = None) -> QuerySet[Screening]:
    filters = filters or {}
    qs = Screening.objects.filter(site__in=access.visible_sites(user, trial=trial)).select_related("site", "participant")
    if site := filters.get("site"):
        qs = qs.filter(site__code=site)
    if outcome := filters.get("outcome"):
        qs = qs.filter(outcome=outcome)
    if date_from := filters.get("date_from"):
        qs = qs.filter(screened_on__gte=date_from)
    if date_to := filters.get("date_to"):
        qs = qs.filter(screened_on__lte=date_to)
    return qs.order_by("-screened_on", "-id")
