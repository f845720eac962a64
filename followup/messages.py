"""Questionnaire messages: an invitation when a window opens and reminders on the rule's days,
planned by the sweep and re-checked before each goes (completed or closed: cancelled)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.utils import formats, translation

from followup.instruments import translation_for
from followup.models import InstrumentVersion, OccurrenceStatus
from followup.services import messages_plan
from messaging.kinds import MessageKind
from messaging.models import Message


class QuestionnaireMessages(MessageKind):
    code = "questionnaire"
    select_related = ("occurrence",)

    def owns(self, message: Message) -> bool:
        return message.occurrence_id is not None

    def plan(self, *, now: dt.datetime) -> int:
        return messages_plan(now=now)

    def why_not(self, message: Message, now: dt.datetime) -> str:
        if message.participant.withdrawn_from_followup:
            return "Withdrawn from follow-up"
        occurrence = message.occurrence
        assert occurrence is not None
        if occurrence.status == OccurrenceStatus.COMPLETED:
            return "Questionnaire completed"
        if occurrence.status in (OccurrenceStatus.CANCELLED, OccurrenceStatus.MISSED) or now >= occurrence.closes_at:
            return "Questionnaire closed"
        return ""

    def template_code(self, message: Message) -> str:
        return "invitation" if message.step == "invitation" else "reminder"

    def context(self, message: Message, *, zone: str, cache: dict[Any, Any]) -> dict[str, Any]:
        occurrence = message.occurrence
        assert occurrence is not None
        trial_id = message.participant.site.trial_id
        # In the participant's language (the sweep overrides it while it renders).
        language = translation.get_language() or ""
        key = ("questionnaire-title", trial_id, occurrence.instrument, language)
        if key not in cache:
            version = (
                InstrumentVersion.objects.filter(trial_id=trial_id, code=occurrence.instrument).order_by("-published_at").first()
            )
            cache[key] = (
                translation_for(definition=version.definition, language=language).get("title", version.title)
                if version
                else occurrence.instrument
            )
        closes_on = occurrence.closes_at.astimezone(zoneinfo.ZoneInfo(zone)) - dt.timedelta(days=1)
        return {
            "questionnaire": cache[key],
            "due_date": formats.date_format(occurrence.due_date, "d F Y"),
            "closes_on": formats.date_format(closes_on, "d F Y"),
        }
