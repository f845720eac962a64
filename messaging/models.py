"""Messages to participants: written as rows before they are sent, claimed and sent once by the
sweep. What a message is about (a questionnaire, a session) is a *kind* registered by the feature
that owns it (see ``messaging.kinds``); the sweep names no feature.

The message table keeps one nullable key per kind that exists today (occurrence, session), for
their unique constraints; only the kinds read them.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from participants.models import Channel, Participant
from trial.models import LanguageField, Site, Trial
from trial.tallies import tally_triggers


class MessagePolicy(models.Model):
    """How and when a trial's participants are contacted about their questionnaires."""

    class Channels(models.TextChoices):
        PREFERRED = "preferred", _("The participant's preferred channel")
        ALL = "all", _("Every channel the participant has")

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="message_policy")
    send_hour = models.PositiveSmallIntegerField(default=10, help_text=_("Local hour (0-23) at which messages go out."))
    quiet_start = models.PositiveSmallIntegerField(default=21, help_text=_("Local hour from which nothing is sent."))
    quiet_end = models.PositiveSmallIntegerField(default=8, help_text=_("Local hour from which sending resumes."))
    channels = models.CharField(max_length=10, choices=Channels.choices, default=Channels.PREFERRED)
    max_attempts = models.PositiveSmallIntegerField(default=5, help_text=_("Sending attempts before a message is failed."))
    lost_to_followup_missed = models.PositiveSmallIntegerField(
        default=3, help_text=_("Consecutive missed monthly questionnaires that flag a participant for review.")
    )
    closing_soon_days = models.PositiveSmallIntegerField(default=3, help_text=_("The worklist lists windows closing within."))
    welcome_message = models.BooleanField(
        default=True, help_text=_("Send each participant a welcome message with their personal link when they are enrolled.")
    )
    link_requests_per_day = models.PositiveSmallIntegerField(
        default=3, help_text=_('"Send me a new link" requests answered per participant in 24 hours (0: none).')
    )

    class Meta:
        db_table = "followup_messagepolicy"  # its table since it lived in follow-up
        verbose_name_plural = _("message policies")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(send_hour__lte=23, quiet_start__lte=23, quiet_end__lte=23), name="message_policy_hours_valid"
            ),
            models.CheckConstraint(condition=models.Q(max_attempts__gte=1), name="message_policy_attempts_positive"),
        ]

    def __str__(self) -> str:
        return f"Message policy of {self.trial}"


class MessageTemplate(models.Model):
    """The wording of one kind of message on one channel in one language. Never changed: a new
    version is published, and every message uses the version current when it is sent, in the
    participant's language (the site's language when theirs has no wording)."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="message_templates")
    code = models.CharField(max_length=40, help_text=_("invitation, reminder, ..."))
    channel = models.CharField(max_length=10, choices=Channel.choices)
    language = LanguageField(
        db_default=settings.LANGUAGE_CODE,
        help_text=_("The language of the wording; versions are numbered per language."),
    )
    version = models.PositiveIntegerField()
    subject = models.CharField(max_length=200, blank=True, help_text=_("E-mail only."))
    body = models.TextField(
        help_text=_("Django template text: {{ questionnaire }}, {{ due_date }}, {{ link }}, {{ opt_out_link }}.")
    )
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "followup_messagetemplate"  # its table since it lived in follow-up
        ordering = ["code", "channel", "language", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "code", "channel", "language", "version"], name="message_template_version_unique"
            ),
        ]
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.code} ({self.channel}, {self.language}) v{self.version}"


class MessageStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


_STEP_NAMES = {
    "invitation": gettext_noop("invitation"),
    "reminder": gettext_noop("reminder"),
    "confirmation": gettext_noop("confirmation"),
}
_ORDINALS = (
    gettext_noop("First"),
    gettext_noop("Second"),
    gettext_noop("Third"),
    gettext_noop("Fourth"),
    gettext_noop("Fifth"),
    gettext_noop("Sixth"),
    gettext_noop("Seventh"),
    gettext_noop("Eighth"),
    gettext_noop("Ninth"),
    gettext_noop("Tenth"),
)


def step_label(step: str) -> str:
    """``reminder-2`` -> "Second reminder", ``invitation`` -> "Invitation"; anything else as it is."""
    kind, _, number = step.partition("-")
    if not number:
        return gettext(_STEP_NAMES.get(kind, kind)).capitalize()
    if kind in _STEP_NAMES and number.isdigit() and 1 <= int(number) <= len(_ORDINALS):
        return gettext("%(ordinal)s %(kind)s") % {
            "ordinal": gettext(_ORDINALS[int(number) - 1]),
            "kind": gettext(_STEP_NAMES[kind]),
        }
    return step


def _message_tally_func(changes: str) -> str:
    """The body of a statement-level trigger that adds a statement's new or removed messages (rows
    of participant, whether about a session, and +1 or -1) to MessageTally, in key order."""
    return f"""
        INSERT INTO messaging_messagetally AS t (site_id, for_session, n)
        SELECT p.site_id, c.for_session, SUM(c.d)
        FROM ({changes}) AS c
        JOIN participants_participant AS p ON p.id = c.participant_id
        GROUP BY p.site_id, c.for_session
        ORDER BY p.site_id, c.for_session
        ON CONFLICT ON CONSTRAINT message_tally_unique DO UPDATE SET n = t.n + EXCLUDED.n;
        RETURN NULL;
    """  # noqa: S608 (constants of this module, no input)


class Message(models.Model):
    """One message the system will send, written before it is sent.

    ``due_at`` is when the sweep next acts on it: the planned time, a retry after a failure, the
    end of quiet hours, or (while ``sending``) the expiry of the claim of a sweep that died.
    """

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="messages")
    occurrence = models.ForeignKey(
        "followup.Occurrence", null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    session = models.ForeignKey("intervention.Session", null=True, blank=True, on_delete=models.PROTECT, related_name="messages")
    step = models.CharField(
        max_length=20, help_text=_("invitation, reminder-1, ...; for sessions confirmation-1, reminder-1, ...")
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    planned_at = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.PLANNED)
    attempts = models.PositiveSmallIntegerField(default=0)
    template = models.ForeignKey(MessageTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(
        default=dict, blank=True, help_text=_("Details the wording needs, e.g. a cancelled session's time.")
    )
    provider_id = models.CharField(max_length=100, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    cancelled_reason = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "followup_message"  # its table since it lived in follow-up
        ordering = ["planned_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["occurrence", "step", "channel"],
                condition=models.Q(occurrence__isnull=False),
                name="message_once_per_occurrence_step_channel",
            ),
            models.UniqueConstraint(
                fields=["session", "step", "channel"],
                condition=models.Q(session__isnull=False),
                name="message_once_per_session_step_channel",
            ),
            models.UniqueConstraint(
                fields=["participant", "channel"],
                condition=models.Q(step="welcome", occurrence__isnull=True, session__isnull=True),
                name="message_welcome_once_per_channel",
            ),
            models.CheckConstraint(condition=models.Q(status__in=MessageStatus.values), name="message_status_valid"),
            models.CheckConstraint(condition=models.Q(channel__in=Channel.values), name="message_channel_valid"),
            models.CheckConstraint(
                condition=~models.Q(status=MessageStatus.SENT) | models.Q(sent_at__isnull=False), name="message_sent_has_time"
            ),
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=models.Q(status__in=["planned", "sending"]), name="message_due"),
            models.Index(fields=["participant", "planned_at"], name="message_by_participant"),
            # The messages list (page and API), newest planned first: read a page off the index instead
            # of sorting every message (1.5M at 50,000 participants: 0.9 s).
            models.Index(fields=["-planned_at", "-id"], name="message_newest_first"),
            # The worklist's failed messages (recent ones only): a few hundred among millions sent.
            models.Index(fields=["-planned_at"], condition=models.Q(status="failed"), name="message_failed"),
        ]
        # MessageTally counts messages by their participant's site and by whether they are about a
        # session: kept as messages are written or removed, and a message never changes whose or
        # what it is (the sweep's updates of status leave the tally alone).
        triggers = [
            *tally_triggers(
                columns="participant_id, session_id IS NOT NULL AS for_session", func=_message_tally_func, on_update=False
            ),
            pgtrigger.Protect(
                name="keeps_its_participant_and_session",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange("participant", "session"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step} by {self.channel} to {self.participant_id}"

    @property
    def step_label(self) -> str:
        """The step as staff read it: "Second reminder", not ``reminder-2``."""
        return step_label(self.step)

    @property
    def key(self) -> str:
        """The idempotency key sent with it: a provider that honours it delivers a retry once."""
        return f"walkback-msg-{self.pk}"

    def site_for_access(self) -> int:
        return self.participant.site_id


class MessageTally(models.Model):
    """How many messages a site's participants have, apart those about a session: what the
    messages list counts for its pages, without counting millions of messages.

    Written only by the triggers on Message, in the transaction that writes the messages;
    ``message_tally_rebuild`` counts it again from the messages (after a load with triggers off)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    for_session = models.BooleanField()
    n = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "for_session"], name="message_tally_unique")]

    def __str__(self) -> str:
        return f"{self.n} messages at {self.site_id}{' about sessions' if self.for_session else ''}"
