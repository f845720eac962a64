"""The participant's journey: screening, consent, enrolment, randomisation, withdrawal, unblinding."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext

from participants import hooks
from participants.models import (
    WITHDRAWAL_RANK,
    Consent,
    ConsentDocument,
    ConsentMethod,
    ContactDetails,
    Participant,
    ParticipantStatus,
    ParticipantStratum,
    Screening,
    ScreeningOutcome,
    Unblinding,
    Withdrawal,
    WithdrawalScope,
)
from participants.selectors import consent_document_current, randomisation_missing, stratification_answers
from trial import access, notifications, signin
from trial.access import Perm
from trial.audit import audit_context
from trial.errors import ApplicationError, Conflict
from trial.guard import ensure_writable
from trial.models import (
    Allocation,
    ContactKind,
    CriterionKind,
    RandomisationMethod,
    RandomisationSlot,
    RoleCode,
    Site,
    StratumCursor,
    Trial,
    default_language,
)
from trial.randomisation import ArmWeight, minimise, stratum_key


class NotReady(ApplicationError):
    """Randomisation refused: something it needs is missing."""


class AlreadyRandomised(Conflict):
    def __init__(self, allocation: Allocation):
        super().__init__(
            f"{allocation.participant.study_id} was already randomised on {allocation.randomised_at:%d %b %Y %H:%M} UTC; "
            "an allocation is never repeated or changed.",
            extra={"randomised_at": allocation.randomised_at.isoformat().replace("+00:00", "Z")},
        )
        self.allocation = allocation


class ListExhausted(Conflict):
    """No slot left in the stratum's list: nobody is allocated and the statistician is alerted."""


def _require(user: Any, perm: Perm, trial: Trial, site_id: int | None = None) -> None:
    access.require(user, perm, trial=trial, site_id=site_id)


# --- Screening ------------------------------------------------------------------------------


def eligibility_decide(*, trial: Trial, answers: Mapping[str, bool]) -> tuple[bool, list[str]]:
    """Eligible when every inclusion criterion is answered yes and every exclusion no.

    Returns (eligible, codes of the criteria that failed). Every active criterion must be answered.
    """
    criteria = list(trial.eligibility.filter(active=True).order_by("order", "code"))
    missing = [c.code for c in criteria if c.code not in answers]
    unknown = sorted(set(answers) - {c.code for c in criteria})
    errors: dict[str, list[str]] = {}
    for code in missing:
        errors[f"answers.{code}"] = [gettext("Answer this criterion (yes or no).")]
    for code in unknown:
        errors[f"answers.{code}"] = [gettext("Not a criterion of this trial.")]
    not_bool = [code for code, value in answers.items() if not isinstance(value, bool)]
    for code in not_bool:
        errors[f"answers.{code}"] = [gettext("Answer true or false.")]
    if errors:
        raise ApplicationError(gettext("The eligibility checklist is incomplete or has unknown items."), errors=errors)
    reasons = [
        c.code
        for c in criteria
        if (c.kind == CriterionKind.INCLUSION and not answers[c.code]) or (c.kind == CriterionKind.EXCLUSION and answers[c.code])
    ]
    return not reasons, reasons


@transaction.atomic
def screening_record(
    *, site: Site, answers: Mapping[str, bool], by: Any, screened_on: dt.date | None = None, referral: str = ""
) -> Screening:
    trial = site.trial
    ensure_writable(trial=trial)
    _require(by, Perm.SCREEN_ENROL, trial, site.pk)
    today = timezone.localdate(timezone=_zone(site.timezone))
    screened_on = screened_on or today
    if screened_on > today:
        raise ApplicationError(
            gettext("The screening date cannot be in the future."), errors={"screened_on": [gettext("In the future.")]}
        )
    if screened_on < trial.recruitment_start:
        started = f"{trial.recruitment_start:%d %b %Y}"
        raise ApplicationError(
            gettext("The screening date is before recruitment started (%(started)s).") % {"started": started},
            errors={"screened_on": [f"Before recruitment started on {started}."]},
        )
    if referral and trial.referral_factor_id:
        allowed = set(trial.referral_factor.levels.values_list("code", flat=True)) if trial.referral_factor else set()
        if referral not in allowed:
            raise ApplicationError(
                gettext("Unknown referral route."), errors={"referral": [f"Choose one of: {', '.join(sorted(allowed))}."]}
            )
    eligible, reasons = eligibility_decide(trial=trial, answers=answers)
    with audit_context(reason="Screening recorded"):
        return Screening.objects.create(
            site=site,
            screened_on=screened_on,
            referral=referral,
            answers=dict(answers),
            eligible=eligible,
            reasons=reasons,
            outcome=ScreeningOutcome.ELIGIBLE if eligible else ScreeningOutcome.INELIGIBLE,
            recorded_by=by,
        )


@transaction.atomic
def screening_decline(*, screening: Screening, reason: str, by: Any) -> Screening:
    screening = Screening.objects.select_for_update(of=("self",)).select_related("site__trial").get(pk=screening.pk)
    trial = screening.site.trial
    ensure_writable(trial=trial)
    _require(by, Perm.SCREEN_ENROL, trial, screening.site_id)
    if screening.outcome != ScreeningOutcome.ELIGIBLE:
        raise Conflict(
            gettext("Only an eligible person who has not enrolled can decline (this one is %(lower)s).")
            % {"lower": screening.get_outcome_display().lower()}
        )
    with audit_context(reason=reason or "Declined"):
        screening.outcome = ScreeningOutcome.DECLINED
        screening.declined_reason = reason.strip()[:300]
        screening.save(update_fields=["outcome", "declined_reason"])
    return screening


def _zone(name: str) -> dt.tzinfo:
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


# --- Consent documents ----------------------------------------------------------------------


@transaction.atomic
def consent_document_publish(*, trial: Trial, version: str, title: str, body: str = "") -> ConsentDocument:
    """Publish a new version; it becomes current, and consents under older versions are flagged for re-consent."""
    ensure_writable(trial=trial)
    version = version.strip()
    if not version:
        raise ApplicationError(gettext("A version is required."), errors={"version": [gettext("Required.")]})
    if ConsentDocument.objects.filter(trial=trial, version=version).exists():
        raise Conflict(
            gettext("Version %(version)s is already published.") % {"version": version},
            errors={"version": [gettext("Already published.")]},
        )
    try:
        with audit_context(reason=f"Consent document v{version} published"), transaction.atomic():
            return ConsentDocument.objects.create(trial=trial, version=version, title=title, body=body)
    except IntegrityError as exc:  # published by someone else at the same moment
        raise Conflict(
            gettext("Version %(version)s is already published.") % {"version": version},
            errors={"version": [gettext("Already published.")]},
        ) from exc


# --- Enrolment ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentInput:
    method: str
    signed_name: str
    version: str | None = None


@dataclass(frozen=True)
class ContactInput:
    email: str = ""
    mobile: str = ""
    timezone: str = ""
    preferred_channel: str = "email"
    language: str = ""  # blank: the site's language (settings.LANGUAGE_CODE)


def _validate_strata(trial: Trial, strata: Mapping[str, str]) -> list[tuple[Any, Any]]:
    factors = {f.code: f for f in trial.strata.prefetch_related("levels")}
    errors: dict[str, list[str]] = {}
    pairs = []
    for code in sorted(set(strata) - set(factors)):
        errors[f"strata.{code}"] = [gettext("Not a stratification factor of this trial.")]
    for code, factor in factors.items():
        value = strata.get(code)
        if value in (None, ""):
            continue  # may be completed later; randomisation names it if still missing
        level = next((lv for lv in factor.levels.all() if lv.code == value), None)
        if level is None:
            choices = ", ".join(lv.code for lv in factor.levels.all())
            errors[f"strata.{code}"] = [gettext("Not one of: %(choices)s.") % {"choices": choices}]
        else:
            pairs.append((factor, level))
    if errors:
        raise ApplicationError(gettext("Some stratification answers are not valid."), errors=errors)
    return pairs


def _next_study_id(site: Site) -> str:
    locked = Site.objects.select_for_update(of=("self",)).select_related("trial").get(pk=site.pk)
    number = locked.next_participant_number
    Site.objects.filter(pk=site.pk).update(next_participant_number=number + 1)
    return f"{locked.trial.study_id_prefix}-{locked.code}-{number:04d}"


@transaction.atomic
def participant_enrol(
    *, screening: Screening, consent: ConsentInput, strata: Mapping[str, str], contact: ContactInput, by: Any
) -> Participant:
    """An eligible, consented person becomes a participant with a study id."""
    screening = Screening.objects.select_for_update(of=("self",)).select_related("site__trial").get(pk=screening.pk)
    site, trial = screening.site, screening.site.trial
    ensure_writable(trial=trial)
    _require(by, Perm.SCREEN_ENROL, trial, site.pk)
    if screening.outcome == ScreeningOutcome.ENROLLED:
        raise Conflict(gettext("This person is already enrolled as %(study_id)s.") % {"study_id": screening.participant.study_id})
    if not screening.eligible:
        raise ApplicationError(
            gettext("This person is not eligible: ") + ", ".join(screening.reasons) + ".",
            errors={"screening": [gettext("Not eligible.")]},
        )
    errors: dict[str, list[str]] = {}
    if consent.method not in ConsentMethod.values:
        errors["consent.method"] = [f"Choose one of: {', '.join(ConsentMethod.values)}."]
    if not consent.signed_name.strip():
        errors["consent.signed_name"] = [gettext("The participant types their name to sign.")]
    document = (
        ConsentDocument.objects.filter(trial=trial, version=consent.version).first()
        if consent.version
        else consent_document_current(trial=trial)
    )
    if document is None:
        errors["consent.version"] = [
            f"No consent document version {consent.version}." if consent.version else "No consent document is published yet."
        ]
    if not contact.email and not contact.mobile:
        errors["contact"] = [gettext("Give an e-mail address or a mobile number.")]
    zone = contact.timezone or site.timezone
    contact_row = ContactDetails(
        email=contact.email.strip(),
        mobile=contact.mobile.strip(),
        timezone=zone,
        preferred_channel=contact.preferred_channel,
        language=contact.language or default_language(),
    )
    try:
        contact_row.full_clean(exclude=["participant"])
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors[f"contact.{field}"] = messages
    if errors:
        raise ApplicationError(
            gettext("The enrolment is incomplete: ") + "; ".join(f"{k}: {v[0]}" for k, v in errors.items()), errors=errors
        )
    pairs = _validate_strata(trial, strata)
    with audit_context(reason="Enrolment"):
        participant = Participant.objects.create(screening=screening, site=site, study_id=_next_study_id(site), enrolled_by=by)
        ParticipantStratum.objects.bulk_create(
            [ParticipantStratum(participant=participant, factor=factor, level=level) for factor, level in pairs]
        )
        if trial.referral_factor_id and screening.referral and trial.referral_factor_id not in {f.pk for f, _ in pairs}:
            level = trial.referral_factor.levels.filter(code=screening.referral).first() if trial.referral_factor else None
            if level is not None:
                ParticipantStratum.objects.create(participant=participant, factor_id=trial.referral_factor_id, level=level)
        assert document is not None
        Consent.objects.create(
            screening=screening,
            participant=participant,
            document=document,
            method=consent.method,
            signed_name=consent.signed_name.strip(),
            taken_by=by,
        )
        contact_row.participant = participant
        contact_row.save()
        screening.outcome = ScreeningOutcome.ENROLLED
        screening.save(update_fields=["outcome"])
        hooks.run_enrolled(participant)
    return participant


@transaction.atomic
def participant_set_strata(*, participant: Participant, strata: Mapping[str, str], by: Any, reason: str) -> Participant:
    """Complete or correct stratification answers; impossible once randomised (they chose the list)."""
    participant = Participant.objects.select_for_update(of=("self",)).select_related("site__trial").get(pk=participant.pk)
    trial = participant.site.trial
    ensure_writable(trial=trial)
    _require(by, Perm.SCREEN_ENROL, trial, participant.site_id)
    if participant.is_randomised:
        raise Conflict(gettext("Stratification answers cannot change after randomisation."))
    pairs = _validate_strata(trial, strata)
    with audit_context(reason=reason or "Stratification answers"):
        for factor, level in pairs:
            ParticipantStratum.objects.update_or_create(participant=participant, factor=factor, defaults={"level": level})
    return participant


@transaction.atomic
def participant_reconsent(*, participant: Participant, consent: ConsentInput, by: Any) -> Consent:
    participant = (
        Participant.objects.select_for_update(of=("self",)).select_related("site__trial", "screening").get(pk=participant.pk)
    )
    trial = participant.site.trial
    ensure_writable(trial=trial)
    _require(by, Perm.SCREEN_ENROL, trial, participant.site_id)
    document = consent_document_current(trial=trial)
    if document is None or participant.screening is None:
        raise ApplicationError(gettext("No consent document is published."))
    if Consent.objects.filter(participant=participant, document=document).exists():
        raise Conflict(
            gettext("%(study_id)s has already consented under the current version (%(version)s).")
            % {"study_id": participant.study_id, "version": document.version}
        )
    if consent.method not in ConsentMethod.values or not consent.signed_name.strip():
        raise ApplicationError(gettext("Give the consent method and the participant's typed name."))
    with audit_context(reason=f"Re-consent under v{document.version}"):
        return Consent.objects.create(
            screening=participant.screening,
            participant=participant,
            document=document,
            method=consent.method,
            signed_name=consent.signed_name.strip(),
            taken_by=by,
        )


# --- Randomisation --------------------------------------------------------------------------


def participant_randomise(*, participant_id: int, by: Any, max_attempts: int = 5) -> Allocation:
    """Allocate an arm, once, forever.

    A repeated or simultaneous call for the same participant raises ``AlreadyRandomised`` with
    the existing outcome. Calls in one stratum queue on the stratum's cursor row; a transient
    serialisation failure is retried, so a caller that loses a race waits, never fails.
    """
    for attempt in range(1, max_attempts + 1):
        try:
            return _randomise_once(participant_id=participant_id, by=by)
        except ListExhausted as exc:
            _alert_list_exhausted(participant_id=participant_id, message=exc.message)
            raise
        except IntegrityError:
            # Another transaction allocated this participant first (unique constraint): report it.
            existing = Allocation.objects.select_related("participant").filter(participant_id=participant_id).first()
            if existing is not None:
                raise AlreadyRandomised(existing) from None
            if attempt == max_attempts:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _randomise_once(*, participant_id: int, by: Any) -> Allocation:
    # One request per participant at a time: a second waits here, then finds the allocation.
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .select_related("site__trial", "screening")
        .annotate(has_consent=Exists(Consent.objects.filter(participant=OuterRef("pk"))))
        .get(pk=participant_id)
    )
    trial = participant.site.trial
    ensure_writable(trial=trial)  # shared write guard: no structural change or lock slips in
    _require(by, Perm.RANDOMISE, trial, participant.site_id)
    if participant.randomised_at is not None:  # written in the same transaction as the allocation
        raise AlreadyRandomised(Allocation.objects.select_related("participant").get(participant=participant))
    answers = stratification_answers(participant=participant, trial=trial)
    levels = {code: level for code, (_, level) in answers.items() if level is not None}
    missing = randomisation_missing(participant=participant, trial=trial, answers=answers)
    if missing:
        raise NotReady(gettext("Not ready to randomise: ") + "; ".join(missing) + ".", errors={"participant": missing})
    key = stratum_key(levels)
    now = timezone.now()
    with audit_context(reason="Randomisation"):
        participant.status = ParticipantStatus.RANDOMISED
        participant.randomised_at = now
        participant.save(update_fields=["status", "randomised_at"])
        # What does not depend on the arm (the follow-up schedule, the session dates) is written
        # before the stratum is claimed; the rest waits for the allocation.
        after_allocation = hooks.run_randomising(participant, now)
        if trial.randomisation_method == RandomisationMethod.MINIMISATION:
            arm_id, detail = _choose_by_minimisation(trial=trial, levels=levels)
            allocation = Allocation.objects.create(
                participant=participant,
                arm_id=arm_id,
                method=RandomisationMethod.MINIMISATION,
                stratum_key=key,
                detail=detail,
                randomised_by=by,
                randomised_at=now,
            )
        else:
            allocation = _allocate_next_slot(trial=trial, key=key, participant=participant, by=by, at=now)
        for finish in after_allocation:
            finish(allocation)
    return allocation


_CLAIM_AND_ALLOCATE = """
WITH claimed AS (
    UPDATE {cursor} SET next_position = next_position + 1
    WHERE trial_id = %(trial)s AND stratum_key = %(key)s
    RETURNING next_position - 1 AS position
)
INSERT INTO {allocation} (participant_id, arm_id, method, stratum_key, slot_id, detail, randomised_by_id, randomised_at)
SELECT %(participant)s, slot.arm_id, %(method)s, %(key)s, slot.id, '{{}}'::jsonb, %(by)s, %(at)s
FROM claimed
JOIN {slot} AS slot ON slot.trial_id = %(trial)s AND slot.stratum_key = %(key)s AND slot.position = claimed.position
RETURNING id, arm_id, slot_id
"""


def _allocate_next_slot(*, trial: Trial, key: str, participant: Participant, by: Any, at: dt.datetime) -> Allocation:
    """Claim the stratum's next position and write the allocation in one statement.

    The UPDATE takes the stratum's cursor row lock, held until commit: claims in a stratum queue
    there and take positions 1, 2, 3... none skipped or reused. Being one statement, the claim
    leaves only the commit inside that lock. No row comes back when the list is exhausted.
    """
    sql = _CLAIM_AND_ALLOCATE.format(
        cursor=StratumCursor._meta.db_table, allocation=Allocation._meta.db_table, slot=RandomisationSlot._meta.db_table
    )
    params = {
        "trial": trial.pk,
        "key": key,
        "participant": participant.pk,
        "method": RandomisationMethod.BLOCKS,
        "by": by.pk,
        "at": at,
    }
    with connection.cursor() as db:
        db.execute(sql, params)
        row = db.fetchone()
    if row is None:
        raise ListExhausted(
            "The randomisation list for this participant's stratum is exhausted (or was never generated). "
            "Nobody was allocated; the statistician has been alerted to extend the list."
        )
    return Allocation(
        pk=row[0],
        participant=participant,
        arm_id=row[1],
        method=RandomisationMethod.BLOCKS,
        stratum_key=key,
        slot_id=row[2],
        detail={},
        randomised_by=by,
        randomised_at=at,
    )


MINIMISATION_CURSOR = "*minimisation*"


def _choose_by_minimisation(*, trial: Trial, levels: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    # One allocation at a time per trial: each depends on every earlier one.
    StratumCursor.objects.bulk_create([StratumCursor(trial=trial, stratum_key=MINIMISATION_CURSOR)], ignore_conflicts=True)
    StratumCursor.objects.select_for_update().get(trial=trial, stratum_key=MINIMISATION_CURSOR)
    arms = list(trial.arms.order_by("order", "code"))
    counts: dict[str, dict[str, dict[str, int]]] = {}
    rows = (
        ParticipantStratum.objects.filter(participant__allocation__arm__trial=trial, factor__code__in=list(levels))
        .values("participant__allocation__arm__code", "factor__code", "level__code")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        arm_counts = counts.setdefault(row["participant__allocation__arm__code"], {})
        arm_counts.setdefault(row["factor__code"], {})[row["level__code"]] = row["n"]
    result = minimise(
        arms=[ArmWeight(a.code, a.ratio) for a in arms],
        levels=levels,
        counts=counts,
        probability=float(trial.minimisation_probability),
        rng=secrets.SystemRandom(),
    )
    arm = next(a for a in arms if a.code == result.arm)
    StratumCursor.objects.filter(trial=trial, stratum_key=MINIMISATION_CURSOR).update(next_position=F("next_position") + 1)
    return arm.pk, {"imbalance": result.imbalance, "minimising": result.minimising, "followed": result.followed_minimisation}


def _alert_list_exhausted(*, participant_id: int, message: str) -> None:
    participant = Participant.objects.select_related("site__trial").get(pk=participant_id)
    trial = participant.site.trial
    key = stratum_key(dict(participant.strata.values_list("factor__code", "level__code")))
    recipients = notifications.staff_emails(trial=trial, role=RoleCode.STATISTICIAN, contact_kind=ContactKind.RANDOMISATION)
    notifications.notification_queue(
        key=f"list-exhausted:{trial.pk}:{key}:{RandomisationSlot.objects.filter(trial=trial, stratum_key=key).count()}",
        kind="list_exhausted",
        recipients=recipients,
        subject=f"[{trial.name}] Randomisation list exhausted for a stratum",
        body=(
            f"A participant at site {participant.site.code} could not be randomised because the list for their "
            f"stratum ({key}) has no unused slot. Nobody was allocated.\n\n"
            "Extend the list: python manage.py generate_randomisation_list --per-stratum N (with the trial's seed)."
        ),
    )


# --- Withdrawal -----------------------------------------------------------------------------


@transaction.atomic
def participant_withdraw(
    *, participant: Participant, scope: str, reason: str, by: Any, withdrawn_on: dt.date | None = None
) -> Withdrawal:
    """Record a withdrawal. Nothing is deleted; a wider scope later widens it, a narrower one is refused."""
    participant = Participant.objects.select_for_update(of=("self",)).select_related("site__trial").get(pk=participant.pk)
    trial = participant.site.trial
    ensure_writable(trial=trial)
    _require(by, Perm.WITHDRAW, trial, participant.site_id)
    if scope not in WithdrawalScope.values:
        raise ApplicationError(
            gettext("Choose what the participant withdraws from."),
            errors={"scope": [f"One of: {', '.join(WithdrawalScope.values)}."]},
        )
    if not reason.strip():
        raise ApplicationError(gettext("Say why the participant withdraws."), errors={"reason": [gettext("Required.")]})
    if WITHDRAWAL_RANK[scope] <= WITHDRAWAL_RANK[participant.withdrawal_scope or ""]:
        raise Conflict(
            gettext("%(study_id)s has already withdrawn (%(lower)s).")
            % {"study_id": participant.study_id, "lower": participant.get_withdrawal_scope_display().lower()}
        )
    today = timezone.localdate(timezone=_zone(participant.site.timezone))
    withdrawn_on = withdrawn_on or today
    if withdrawn_on > today:
        raise ApplicationError(
            gettext("The withdrawal date cannot be in the future."), errors={"withdrawn_on": [gettext("In the future.")]}
        )
    with audit_context(reason=reason):
        withdrawal = Withdrawal.objects.create(
            participant=participant, scope=scope, reason=reason.strip(), withdrawn_on=withdrawn_on, recorded_by=by
        )
        participant.withdrawal_scope = scope
        if participant.withdrawn_from_followup:
            participant.status = ParticipantStatus.WITHDRAWN
        participant.save(update_fields=["withdrawal_scope", "status"])
        hooks.run_withdrawn(participant, scope, withdrawn_on)
    return withdrawal


# --- Emergency unblinding -------------------------------------------------------------------


@transaction.atomic
def participant_unblind(*, participant: Participant, user: Any, reason: str, password: str) -> Unblinding:
    participant = Participant.objects.select_related("site__trial").get(pk=participant.pk)
    trial = participant.site.trial
    _require(user, Perm.EMERGENCY_UNBLIND, trial, participant.site_id)
    # Throttled: after a few wrong passwords unblinding is refused (429) for a while.
    signin.password_confirm(
        user=user, password=password, purpose="emergency-unblinding", message="The password is not right; nothing was unblinded."
    )
    if not reason.strip():
        raise ApplicationError(gettext("Give the clinical reason for unblinding."), errors={"reason": [gettext("Required.")]})
    if not participant.is_randomised:
        raise Conflict(
            gettext("%(study_id)s has not been randomised: there is no arm to reveal.") % {"study_id": participant.study_id}
        )
    # Asked again with the same reason (a retry after an error page, a double click): the same
    # unblinding, not a second record and a second alert.
    already = Unblinding.objects.filter(participant=participant, user=user, reason=reason.strip()).order_by("pk").first()
    if already is not None:
        return already
    with audit_context(reason=reason):
        unblinding = Unblinding.objects.create(participant=participant, user=user, reason=reason.strip())
    recipients = notifications.staff_emails(trial=trial, contact_kind=ContactKind.UNBLINDING)
    # The e-mail says who and why, never the arm.
    notifications.notification_queue(
        key=f"unblinding:{unblinding.pk}",
        kind="unblinding",
        recipients=recipients,
        subject=f"[{trial.name}] Emergency unblinding of {participant.study_id}",
        body=(
            f"{user.get_full_name() or user.get_username()} unblinded {participant.study_id} "
            f"(site {participant.site.code}) at {unblinding.created_at:%Y-%m-%d %H:%M} UTC.\n\nReason: {unblinding.reason}\n"
        ),
    )
    access.forget(user)
    return unblinding
