"""Trial configuration as data: one row set per trial, changed through services only."""

from __future__ import annotations

import zoneinfo
from typing import Any

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from knox.models import AbstractAuthToken


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError("That is not a known time zone (expected e.g. 'Australia/Sydney').")


class TimezoneField(models.CharField):
    """A time zone name, checked by ``validate_timezone``. The check is a default validator, and the
    field describes itself to migrations as a plain CharField: so no migration imports this module
    (migrations never import project code; tests/test_migrations.py)."""

    default_validators = [validate_timezone]

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs


def language_choices() -> list[tuple[str, str]]:
    """The installation's languages (settings.LANGUAGES): a callable, so adding one needs no migration."""
    return [(code, str(name)) for code, name in settings.LANGUAGES]


def default_language() -> str:
    return str(settings.LANGUAGE_CODE)


class LanguageField(models.CharField):
    """A language code among the installation's (``settings.LANGUAGES``), defaulting to
    ``LANGUAGE_CODE``. Choices and default are callables read at run time, so adding a language needs
    no migration; and the field describes itself to migrations as a plain CharField without them, so
    no migration imports this module (tests/test_migrations.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 15)
        kwargs.setdefault("choices", language_choices)
        kwargs.setdefault("default", default_language)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        kwargs.pop("choices", None)
        kwargs.pop("default", None)
        return name, "django.db.models.CharField", args, kwargs


class RoleCode(models.TextChoices):
    COORDINATOR = "coordinator", _("Coordinator")
    PHYSIOTHERAPIST = "physiotherapist", _("Physiotherapist")
    INVESTIGATOR = "investigator", _("Investigator")
    DATA_MANAGER = "data_manager", _("Data manager")
    STATISTICIAN = "statistician", _("Statistician")
    ADMIN = "admin", _("Administrator")


class RandomisationMethod(models.TextChoices):
    BLOCKS = "blocks", _("Stratified permuted blocks")
    MINIMISATION = "minimisation", _("Minimisation (Pocock-Simon)")


class CriterionKind(models.TextChoices):
    INCLUSION = "inclusion", _("Inclusion")
    EXCLUSION = "exclusion", _("Exclusion")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Trial(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    registration = models.CharField(max_length=60, blank=True, help_text=_("Registry id, e.g. ACTRN12619001134112."))
    timezone = TimezoneField(max_length=64, default="UTC")
    recruitment_target = models.PositiveIntegerField()
    recruitment_start = models.DateField()
    recruitment_end = models.DateField()
    followup_end = models.DateField(help_text=_("Common end of follow-up for every participant."))
    min_followup_months = models.PositiveSmallIntegerField(default=12)
    max_followup_months = models.PositiveSmallIntegerField(default=36)
    baseline_before_randomisation = models.BooleanField(
        default=False,
        help_text=_("Randomisation waits until the participant's baseline questionnaire is complete (when the trial has one)."),
    )
    study_id_prefix = models.CharField(max_length=8, default="P", help_text=_("Study ids read PREFIX-SITE-0001."))
    randomisation_method = models.CharField(
        max_length=20, choices=RandomisationMethod.choices, default=RandomisationMethod.BLOCKS
    )
    block_sizes = models.JSONField(default=list, blank=True, help_text=_("Permuted block sizes, e.g. [4, 6, 8]."))
    minimisation_probability = models.DecimalField(
        max_digits=3, decimal_places=2, default=0.8, help_text=_("Probability of the arm that minimises imbalance.")
    )
    referral_factor = models.ForeignKey(
        "StratificationFactor",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The stratification factor that records the referral route at screening, if any."),
    )
    # Set by the database-lock service; the write guard refuses clinical writes while it is set.
    data_locked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(recruitment_end__gte=models.F("recruitment_start")),
                name="trial_recruitment_end_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(followup_end__gte=models.F("recruitment_end")),
                name="trial_followup_end_after_recruitment_end",
            ),
            models.CheckConstraint(
                condition=models.Q(max_followup_months__gte=models.F("min_followup_months")),
                name="trial_followup_months_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(minimisation_probability__gte=0.5, minimisation_probability__lte=1),
                name="trial_minimisation_probability_range",
            ),
            models.CheckConstraint(
                condition=models.Q(randomisation_method__in=RandomisationMethod.values), name="trial_randomisation_method_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Site(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="sites")
    code = models.CharField(max_length=12, help_text=_("Short upper-case code used in study ids, e.g. SYD."))
    name = models.CharField(max_length=200)
    timezone = TimezoneField(max_length=64)
    active = models.BooleanField(default=True)
    next_participant_number = models.PositiveIntegerField(default=1, editable=False)
    # The study team's contact, shown to this site's participants on their pages (and on a link that
    # no longer works) and available to message wordings as {{ study_contact }}.
    contact_name = models.CharField(max_length=120, blank=True, help_text="Who participants contact, e.g. the study nurse.")
    contact_phone = models.CharField(max_length=40, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_hours = models.CharField(
        max_length=120, blank=True, help_text="When they answer, e.g. Monday to Friday, 9 am to 5 pm."
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="site_code_unique_per_trial"),
            models.CheckConstraint(condition=models.Q(code__regex=r"^[A-Z0-9]{2,12}$"), name="site_code_format"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def contact_lines(self) -> list[str]:
        """The study team's contact as participants read it, one part a line (none when unset)."""
        hours = f"({self.contact_hours})" if self.contact_hours else ""
        phone = " ".join(part for part in (self.contact_phone, hours) if part)
        return [part for part in (self.contact_name, phone, self.contact_email) if part]

    @property
    def contact_text(self) -> str:
        """The same on one line, for messages: "the study nurse, 02 9999 0000 (weekdays), ..."."""
        return ", ".join(self.contact_lines)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Arm(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="arms")
    code = models.SlugField(max_length=30)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    ratio = models.PositiveSmallIntegerField(default=1, help_text=_("Allocation ratio weight, e.g. 1 for 1:1."))
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "code"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="arm_code_unique_per_trial"),
            models.CheckConstraint(condition=models.Q(ratio__gte=1), name="arm_ratio_positive"),
        ]

    def __str__(self) -> str:
        return self.name


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class StratificationFactor(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="strata")
    code = models.SlugField(max_length=40)
    label = models.CharField(max_length=200)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "code"]
        constraints = [models.UniqueConstraint(fields=["trial", "code"], name="factor_code_unique_per_trial")]

    def __str__(self) -> str:
        return self.label


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class StratumLevel(models.Model):
    factor = models.ForeignKey(StratificationFactor, on_delete=models.PROTECT, related_name="levels")
    code = models.SlugField(max_length=40)
    label = models.CharField(max_length=200)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "code"]
        constraints = [models.UniqueConstraint(fields=["factor", "code"], name="level_code_unique_per_factor")]

    def __str__(self) -> str:
        return self.label


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class EligibilityCriterion(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="eligibility")
    code = models.SlugField(max_length=40)
    text = models.CharField(max_length=400)
    kind = models.CharField(max_length=10, choices=CriterionKind.choices)
    order = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["order", "code"]
        verbose_name_plural = _("eligibility criteria")
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="criterion_code_unique_per_trial"),
            models.CheckConstraint(condition=models.Q(kind__in=CriterionKind.values), name="criterion_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Role(models.Model):
    """Per-trial settings of a role; what each role may do is in ``trial.access``."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="roles")
    code = models.CharField(max_length=20, choices=RoleCode.choices)
    sees_allocation = models.BooleanField(
        default=False, help_text=_("Whether this role sees participants' arms before the database lock.")
    )
    sees_allocation_after_lock = models.BooleanField(
        default=True, help_text=_("Whether this role sees arms once the database is locked.")
    )
    trial_wide = models.BooleanField(default=False, help_text=_("Sees every site, not only the staff member's own."))
    requires_two_factor = models.BooleanField(
        default=False,
        help_text=_("Staff in this role must set up two-factor authentication before they can use any page or the API."),
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="role_unique_per_trial"),
            models.CheckConstraint(condition=models.Q(code__in=RoleCode.values), name="role_code_valid"),
        ]

    def __str__(self) -> str:
        return self.get_code_display()


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class StaffProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="staff")
    role = models.CharField(max_length=20, choices=RoleCode.choices)
    sites = models.ManyToManyField(Site, related_name="staff", blank=True)
    timezone = TimezoneField(max_length=64, blank=True)
    delivery_modes = models.JSONField(
        default=list, blank=True, help_text='Physiotherapists: the modes they offer, e.g. ["in_person", "video", "phone"].'
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=RoleCode.values), name="staff_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()})"


class SecurityEventKind(models.TextChoices):
    LOGIN = "login", _("Logged in")
    LOGOUT = "logout", _("Logged out")
    LOGIN_FAILED = "login_failed", _("Failed login")
    TOKEN_ISSUED = "token_issued", _("API token issued")
    ROLE_CHANGED = "role_changed", _("Role or sites changed")
    PASSWORD_CHANGED = "password_changed", _("Password changed")
    DOWNLOAD = "download", _("Download")
    CONFIGURATION = "configuration", _("Configuration applied")
    SUPERUSER = "superuser", _("Superuser (emergency account) used")
    LOGIN_LOCKED_OUT = "login_locked_out", _("Locked out after failed logins")
    LOGIN_UNLOCKED = "login_unlocked", _("Login lockout cleared")
    TWO_FACTOR_ENABLED = "two_factor_enabled", _("Two-factor authentication set up")
    TWO_FACTOR_REMOVED = "two_factor_removed", _("Two-factor authentication removed")
    TOKENS_REVOKED = "tokens_revoked", _("API tokens revoked")
    ACCOUNT_DEACTIVATED = "account_deactivated", _("Account deactivated")
    AUDIT_BROKEN = "audit_broken", _("Audit trail found changed")


@pghistory.track(pghistory.InsertEvent())
class SecurityEvent(models.Model):
    """Events that change no clinical row (logins, downloads): written once, never changed."""

    kind = models.CharField(max_length=20, choices=SecurityEventKind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    username = models.CharField(max_length=150, blank=True, help_text=_("As typed, for failed logins."))
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.username} {self.created_at:%Y-%m-%d %H:%M}"


class ApiToken(AbstractAuthToken):
    """An API token (django-rest-knox): only its hash is stored; it expires, and it is bound to the
    password it was issued under (``auth_hash``, as Django binds sessions), so a password change by
    any path ends it."""

    auth_hash: models.CharField[str, str] = models.CharField(max_length=128, blank=True, editable=False)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("API token")

    def __str__(self) -> str:
        return f"{self.user} until {self.expiry:%Y-%m-%d %H:%M}" if self.expiry else str(self.user)


class Heartbeat(models.Model):
    """Last time each background process proved it works (beat -> broker -> worker -> database)."""

    name = models.CharField(max_length=60, unique=True)
    last_seen = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} {self.last_seen:%Y-%m-%d %H:%M:%S}"


class KeyPurpose(models.TextChoices):
    LINKS = "links", _("Participants' links (DJANGO_SECRET_KEY)")
    LOCK_SIGNING = "lock_signing", _("Lock signatures (LOCK_SIGNING_KEYS)")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class KeyFingerprint(models.Model):
    """The fingerprint of a key this database's data was signed with, written when the key first
    signs (trial.keys). The key itself is never stored: a server started with another key refuses
    to start (a system check) rather than silently reissuing links or showing signatures invalid."""

    purpose = models.CharField(max_length=20, choices=KeyPurpose.choices)
    key_id = models.CharField(max_length=32, blank=True, help_text=_("The lock-signing key id; blank for the secret key."))
    fingerprint = models.CharField(max_length=64)
    first_used_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["purpose", "key_id"], name="key_fingerprint_unique")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.key_id} {self.fingerprint[:12]}"


class ListSource(models.TextChoices):
    GENERATED = "generated", _("Generated in the system")
    IMPORTED = "imported", _("Imported allocation table")


class RandomisationList(models.Model):
    """A batch of sealed allocation slots. The seed itself is never stored, only its SHA-256."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="randomisation_lists")
    source = models.CharField(max_length=10, choices=ListSource.choices)
    seed_sha256 = models.CharField(max_length=64, blank=True)
    slots_created = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"List {self.pk} ({self.get_source_display()}, {self.slots_created} slots)"


class RandomisationSlot(models.Model):
    """One sealed position of a stratum's list. Never shown: no page, API or admin lists these."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    source_list = models.ForeignKey(RandomisationList, on_delete=models.PROTECT, related_name="slots")
    stratum_key = models.CharField(max_length=300)
    position = models.PositiveIntegerField()
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="+")
    block = models.PositiveIntegerField(default=0)
    block_size = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "stratum_key", "position"], name="slot_position_unique_per_stratum"),
            models.CheckConstraint(condition=models.Q(position__gte=1), name="slot_position_positive"),
        ]
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"slot {self.position} of {self.stratum_key}"


class StratumCursor(models.Model):
    """The next unused position of a stratum's list; its row lock serialises claims in that stratum."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    stratum_key = models.CharField(max_length=300)
    next_position = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trial", "stratum_key"], name="cursor_unique_per_stratum")]

    def __str__(self) -> str:
        return f"{self.stratum_key} -> {self.next_position}"


@pghistory.track(pghistory.InsertEvent())
class Allocation(models.Model):
    """A participant's arm: written once, never changed (a trigger refuses UPDATE and DELETE)."""

    participant = models.OneToOneField("participants.Participant", on_delete=models.PROTECT, related_name="allocation")
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="allocations")
    method = models.CharField(max_length=20, choices=RandomisationMethod.choices)
    stratum_key = models.CharField(max_length=300)
    slot = models.OneToOneField(RandomisationSlot, null=True, blank=True, on_delete=models.PROTECT, related_name="allocation")
    detail = models.JSONField(default=dict, blank=True)
    randomised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    randomised_at = models.DateTimeField()

    class Meta:
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(method=RandomisationMethod.MINIMISATION) | models.Q(slot__isnull=False),
                name="allocation_blocks_use_a_slot",
            ),
        ]

    def __str__(self) -> str:
        return f"Allocation of participant {self.participant_id}"

    def site_for_access(self) -> int:
        return self.participant.site_id


class ContactKind(models.TextChoices):
    UNBLINDING = "unblinding", _("Emergency unblinding")
    RANDOMISATION = "randomisation", _("Randomisation list alerts")
    SAFETY = "safety", _("Serious adverse events")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class TrialContact(models.Model):
    """People the system alerts: unblinding, randomisation-list and safety contacts."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="contacts")
    kind = models.CharField(max_length=20, choices=ContactKind.choices)
    name = models.CharField(max_length=200)
    email = models.EmailField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "kind", "email"], name="contact_unique_per_kind"),
            models.CheckConstraint(condition=models.Q(kind__in=ContactKind.values), name="contact_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}> ({self.get_kind_display()})"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class Notification(models.Model):
    """An e-mail to staff, recorded before it is sent; ``key`` makes each alert happen once."""

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=40)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text=_("When a worker took it to send (its lease starts)."))
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=NotificationStatus.values), name="notification_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}"


# Account changes (role, activation, e-mail) are audited too; the password hash never is. The
# proxy puts the triggers on the user table in this app's migrations; pghistory adds the event
# model, UserEvent, to this module.
@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    exclude=["password", "last_login"],
    model_name="UserEvent",
)
class TrackedUser(get_user_model()):  # type: ignore[misc]
    class Meta:
        proxy = True
        app_label = "trial"


class AuditChainHead(models.Model):
    """The end of one audit event table's hash chain, kept by the database's trigger (never by the
    app): its row lock serialises that table's inserts, so concurrent writers form one chain.
    ``epochs`` records from which event id each set of columns was hashed (a column added to an
    event table later is left out of the hashes of the rows sealed before it)."""

    table_name = models.CharField(max_length=63, primary_key=True)
    last_id = models.BigIntegerField()
    last_hash = models.CharField(max_length=64)
    columns = models.JSONField(default=list)
    epochs = models.JSONField(default=list)

    class Meta:
        db_table = "audit_chain_head"

    def __str__(self) -> str:
        return f"{self.table_name} @ {self.last_id}"
