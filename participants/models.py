"""The participant's journey: screening, consent, enrolment, withdrawal.

The arm lives only in ``trial.Allocation``. Contact details live in their own table, which no
export and no blinded view reads.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from trial.models import LanguageField, Site, StratificationFactor, StratumLevel, TimezoneField, Trial


class ScreeningOutcome(models.TextChoices):
    ELIGIBLE = "eligible", _("Eligible")
    INELIGIBLE = "ineligible", _("Not eligible")
    DECLINED = "declined", _("Eligible, declined")
    ENROLLED = "enrolled", _("Enrolled")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Screening(models.Model):
    """A person assessed for eligibility (CONSORT). Holds no name or contact detail."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="screenings")
    screened_on = models.DateField()
    referral = models.CharField(max_length=40, blank=True, help_text=_("Referral route (a level of the referral factor)."))
    answers = models.JSONField(default=dict)
    eligible = models.BooleanField()
    reasons = models.JSONField(default=list, blank=True, help_text=_("Codes of the criteria that made the person ineligible."))
    outcome = models.CharField(max_length=12, choices=ScreeningOutcome.choices)
    declined_reason = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-screened_on", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(outcome__in=ScreeningOutcome.values), name="screening_outcome_valid"),
            models.CheckConstraint(
                condition=models.Q(eligible=True) | models.Q(outcome=ScreeningOutcome.INELIGIBLE),
                name="screening_ineligible_outcome_matches",
            ),
        ]
        # The screening log, newest first: a page read off the index, not a sort of every screening.
        indexes = [models.Index(fields=["-screened_on", "-id"], name="screening_newest_first")]

    def __str__(self) -> str:
        return f"Screening {self.pk} at {self.site.code} on {self.screened_on}"

    def site_for_access(self) -> int:
        return self.site_id


class ConsentMethod(models.TextChoices):
    IN_PERSON = "in_person", _("In person")
    VIDEO = "video", _("Video call")
    ONLINE = "online", _("Online")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ConsentDocument(models.Model):
    """A version of the participant information and consent form. The newest published is current."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="consent_documents")
    version = models.CharField(max_length=20)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-published_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["trial", "version"], name="consent_version_unique_per_trial")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class ParticipantStatus(models.TextChoices):
    ENROLLED = "enrolled", _("Enrolled")
    RANDOMISED = "randomised", _("Randomised")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class WithdrawalScope(models.TextChoices):
    INTERVENTION = "intervention", _("Stop the intervention only")
    FOLLOWUP = "followup", _("Stop follow-up")
    CONSENT = "consent", _("Withdraw consent for further data use")


# How far each scope reaches: a wider one includes the narrower ones.
WITHDRAWAL_RANK = {"": 0, WithdrawalScope.INTERVENTION: 1, WithdrawalScope.FOLLOWUP: 2, WithdrawalScope.CONSENT: 3}
# The scopes that end follow-up (no more questionnaires, messages or outcome time after it).
FOLLOWUP_ENDING_SCOPES = (WithdrawalScope.FOLLOWUP, WithdrawalScope.CONSENT)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Participant(models.Model):
    screening = models.OneToOneField(Screening, null=True, blank=True, on_delete=models.PROTECT, related_name="participant")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="participants")
    study_id = models.CharField(max_length=30, unique=True)
    status = models.CharField(max_length=12, choices=ParticipantStatus.choices, default=ParticipantStatus.ENROLLED)
    withdrawal_scope = models.CharField(max_length=12, choices=WithdrawalScope.choices, blank=True)
    randomised_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    enrolled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    physiotherapist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Chosen at enrolment, or assigned (the least loaded at the site) when sessions are planned."),
    )

    class Meta:
        ordering = ["study_id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=ParticipantStatus.values), name="participant_status_valid"),
            models.CheckConstraint(
                condition=~models.Q(status=ParticipantStatus.RANDOMISED) | models.Q(randomised_at__isnull=False),
                name="participant_randomised_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.study_id

    def site_for_access(self) -> int:
        return self.site_id

    @property
    def is_randomised(self) -> bool:
        return self.randomised_at is not None

    @property
    def withdrawn_from_followup(self) -> bool:
        return self.withdrawal_scope in FOLLOWUP_ENDING_SCOPES

    @property
    def withdrawn_from_intervention(self) -> bool:
        return bool(self.withdrawal_scope)  # every scope includes the intervention


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ParticipantStratum(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="strata")
    factor = models.ForeignKey(StratificationFactor, on_delete=models.PROTECT, related_name="+")
    level = models.ForeignKey(StratumLevel, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "factor"], name="one_level_per_factor")]

    def __str__(self) -> str:
        return f"{self.factor.code}={self.level.code}"

    def site_for_access(self) -> int:
        return self.participant.site_id


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Consent(models.Model):
    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="consents")
    participant = models.ForeignKey(Participant, null=True, blank=True, on_delete=models.PROTECT, related_name="consents")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="consents")
    method = models.CharField(max_length=10, choices=ConsentMethod.choices)
    signed_name = models.CharField(max_length=200, help_text=_("The participant's name, typed as their signature."))
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    consented_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-consented_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(method__in=ConsentMethod.values), name="consent_method_valid"),
            models.CheckConstraint(condition=~models.Q(signed_name=""), name="consent_signed"),
        ]

    def __str__(self) -> str:
        return f"Consent v{self.document.version} ({self.get_method_display()})"

    def site_for_access(self) -> int:
        return self.screening.site_id


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ContactDetails(models.Model):
    """Identifying contact data, apart from clinical data: never exported, never shown to blinded roles."""

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="contact")
    email = models.EmailField(blank=True)
    mobile = models.CharField(max_length=30, blank=True)
    preferred_channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    timezone = TimezoneField(max_length=64)
    language = LanguageField(
        db_default=settings.LANGUAGE_CODE,  # rows written in SQL (the benchmark's) get it too
        help_text=_("The participant's language: their pages and messages are in it."),
    )
    email_opted_out_at = models.DateTimeField(null=True, blank=True, help_text=_("The participant asked for no more e-mail."))
    sms_opted_out_at = models.DateTimeField(null=True, blank=True, help_text=_("The participant asked for no more SMS."))

    class Meta:
        verbose_name_plural = _("contact details")
        constraints = [
            models.CheckConstraint(condition=~models.Q(email="", mobile=""), name="contact_has_email_or_mobile"),
        ]

    def __str__(self) -> str:
        return f"Contact details of {self.participant_id}"

    def address(self, channel: str) -> str:
        return self.email if channel == Channel.EMAIL else self.mobile

    def opted_out(self, channel: str) -> bool:
        return (self.email_opted_out_at if channel == Channel.EMAIL else self.sms_opted_out_at) is not None

    def site_for_access(self) -> int:
        return self.participant.site_id


@pghistory.track(pghistory.InsertEvent())
class Withdrawal(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="withdrawals")
    scope = models.CharField(max_length=12, choices=WithdrawalScope.choices)
    reason = models.CharField(max_length=500)
    withdrawn_on = models.DateField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=WithdrawalScope.values), name="withdrawal_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} ({self.withdrawn_on})"

    def site_for_access(self) -> int:
        return self.participant.site_id


@pghistory.track(pghistory.InsertEvent())
class Unblinding(models.Model):
    """An emergency unblinding: this user may see this participant's arm, and nobody else's."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="unblindings")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Unblinding of {self.participant_id} for user {self.user_id}"

    def site_for_access(self) -> int:
        return self.participant.site_id


# Models whose rows reveal the arm: hidden from blinded roles wherever records (or their
# history) are shown. Per-field entries hide single fields of otherwise visible models.
ALLOCATION_MODELS: frozenset[str] = frozenset({"trial.allocation", "trial.randomisationslot"})
# Records only the intervention arm has: opening one reveals the participant's arm.
INTERVENTION_MODELS: frozenset[str] = frozenset(
    {"intervention.session", "intervention.sessionrecord", "intervention.prescription", "intervention.walk"}
)
# Fields that reveal the arm on records every role may open: participants.blinding.BLINDED_FIELDS.


class AccessLink(models.Model):
    """A participant's personal link. Only the SHA-256 of its token is stored; issuing a new one revokes the old."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="access_links")
    token_sha256 = models.CharField(max_length=64, unique=True)
    nonce = models.CharField(
        max_length=64,
        blank=True,
        help_text=_(
            "Random value the token is derived from with the server's secret (HMAC), so messages can carry "
            "the live link; the database alone cannot produce a token."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "followup_accesslink"  # its table since it lived in follow-up
        constraints = [
            models.UniqueConstraint(
                fields=["participant"], condition=models.Q(revoked_at__isnull=True), name="one_live_link_per_participant"
            ),
        ]

    def __str__(self) -> str:
        return f"Link for participant {self.participant_id}"
