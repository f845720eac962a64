"""Reads about participants, scoped to what the user may see."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import CharField, Exists, F, Func, OuterRef, Prefetch, Q, QuerySet, Subquery, Value

from participants.models import Consent, ConsentDocument, ContactDetails, Participant, ParticipantStratum, Screening
from trial import access
from trial.access import Perm
from trial.models import StratificationFactor, Trial

# The columns a participant list may be sorted by (trial.sorting); "arm" only for roles that see
# every arm (PARTICIPANT_SORTS_WITH_ARM), never for a blinded one: an order would tell the arm.
PARTICIPANT_SORTS: dict[str, tuple[str, ...]] = {
    "study_id": ("study_id",),
    "site": ("site__code",),
    "status": ("status",),
    "randomised": ("randomised_at",),
}
PARTICIPANT_SORTS_WITH_ARM: dict[str, tuple[str, ...]] = {**PARTICIPANT_SORTS, "arm": ("allocation__arm__order",)}
SCREENING_SORTS: dict[str, tuple[str, ...]] = {
    "screened": ("screened_on",),
    "site": ("site__code",),
    "outcome": ("outcome",),
    "referral": ("referral",),
}
SEARCH_MAX = 100
PHONE_MIN_DIGITS = 6


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


def participant_list(
    *, user: Any, trial: Trial, filters: dict[str, Any] | None = None, columns: bool = True
) -> QuerySet[Participant]:
    """Participants at the sites the user may see, by study id. With ``columns``, with what list
    pages show (``participant_columns``), in constant queries; without, only the rows, to choose a
    page of ids from before computing its columns (``participant_page``)."""
    filters = filters or {}
    sites = access.visible_sites(user, trial=trial)
    qs = Participant.objects.filter(site__in=sites)
    if site := filters.get("site"):
        qs = qs.filter(site__code=site)
    if status := filters.get("status"):
        qs = qs.filter(status=status)
    if q := filters.get("q"):
        qs = qs.filter(study_id__icontains=q)
    if search := str(filters.get("search") or "").strip()[:SEARCH_MAX]:
        qs = qs.filter(participant_search(search, contacts=access.has_perm(user, Perm.VIEW_CONTACTS, trial=trial)))
    qs = qs.order_by("study_id")
    return participant_columns(qs, trial=trial) if columns else qs


def participant_columns(qs: QuerySet[Participant], *, trial: Trial) -> QuerySet[Participant]:
    """What list pages and the API show of each participant: site, allocation, strata, the latest
    consent's version (``consent_version``) and whether it is the current document's
    (``has_current_consent``, absent when no document is published)."""
    current = consent_document_current(trial=trial)
    qs = (
        qs.select_related("site", "allocation__arm")
        .prefetch_related(Prefetch("strata", queryset=ParticipantStratum.objects.select_related("factor", "level")))
        .annotate(consent_version=_latest_consent_version())
    )
    if current is not None:
        qs = qs.annotate(has_current_consent=Exists(Consent.objects.filter(participant=OuterRef("pk"), document=current)))
    return qs


def participant_page(*, trial: Trial, ids: Iterable[int]) -> list[Participant]:
    """The participants of one page, in the order of ``ids``, with their columns computed for these
    rows only: a late page costs what the first does, where slicing the annotated list would
    compute every row's columns up to the page."""
    ids = list(ids)
    rows = participant_columns(Participant.objects.filter(pk__in=ids), trial=trial).in_bulk()
    return [rows[pk] for pk in ids if pk in rows]


def participant_sorts(*, user: Any, trial: Trial) -> dict[str, tuple[str, ...]]:
    return PARTICIPANT_SORTS_WITH_ARM if access.can_see_allocation(user, trial=trial) else PARTICIPANT_SORTS


def phone_digits(text: str) -> str:
    """A phone number as the digits that identify it: no spaces, signs or trunk zero
    ("+61 400 000 000" and "0400 000 000" both end in "400000000")."""
    return re.sub(r"\D", "", text).lstrip("0")


def participant_search(text: str, *, contacts: bool) -> Q:
    """Who ``text`` finds: a study id (exact or its start) for everyone; with ``contacts`` (the
    VIEW_CONTACTS permission) also the signed name (every word, any order), the e-mail address and
    the mobile number (its digits). Without it, contact data plays no part in the answer, so a name
    finds exactly what an unknown name finds (nothing, unless it starts a study id)."""
    found = Q(study_id__istartswith=text)
    if not contacts:
        return found
    words = text.split()
    named = Q()
    for word in words:
        named &= Q(signed_name__icontains=word)
    found |= Q(Exists(Consent.objects.filter(named, participant=OuterRef("pk"))))
    found |= Q(Exists(ContactDetails.objects.filter(participant=OuterRef("pk"), email__icontains=text)))
    digits = phone_digits(text)
    if len(digits) >= PHONE_MIN_DIGITS and not re.search(r"[^\d\s()+.-]", text):
        mobile_digits = Func(
            F("mobile"), Value(r"\D"), Value(""), Value("g"), function="REGEXP_REPLACE", output_field=CharField()
        )
        found |= Q(
            Exists(
                ContactDetails.objects.annotate(mobile_digits=mobile_digits).filter(
                    participant=OuterRef("pk"), mobile_digits__contains=digits
                )
            )
        )
    return found


def participant_get(*, user: Any, trial: Trial, pk: int, columns: bool = True) -> Participant | None:
    """The participant if the user may see them; without ``columns``, only its row (one query),
    for an action whose service reads what it needs itself."""
    return participant_list(user=user, trial=trial, columns=columns).filter(pk=pk).first()


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


def participant_language(participant: Participant) -> str:
    """The language of a participant's pages and messages: theirs while the installation offers it
    (settings.LANGUAGES), else the site's."""
    try:
        language = participant.contact.language
    except ContactDetails.DoesNotExist:
        language = ""
    return language if language in dict(settings.LANGUAGES) else str(settings.LANGUAGE_CODE)
