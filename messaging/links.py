"""Messages that carry the participant's personal link and nothing else: the welcome sent at
enrolment (when the trial's policy asks for it) and the "send me a new link" a participant asks
for from a link that no longer works. The link they carry is the participant's live link, derived
by the sweep as for every message; asking for it again never replaces the link already sent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from messaging.kinds import MessageKind
from messaging.models import Message

WELCOME = "welcome"
NEW_LINK = "new-link"

LINK_TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
    (WELCOME, "email"): (
        "Welcome to the {{ trial }} study",
        "Hello,\n\nThank you for joining the {{ trial }} study. This is your personal link to the study's "
        "questionnaires. Please keep this message, and do not share the link with anyone:\n\n{{ link }}\n\n"
        "We will write to you each time a questionnaire is ready.\n\n"
        "{% if study_contact %}Questions? Contact {{ study_contact }}.{% else %}Questions? Contact the study team.{% endif %}"
        "\n\nTo stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    (WELCOME, "sms"): (
        "",
        "Welcome to the {{ trial }} study. Your personal link (keep it, do not share it): {{ link }} Stop SMS: {{ opt_out_link }}",
    ),
    (NEW_LINK, "email"): (
        "Your link to the {{ trial }} study",
        "Hello,\n\nYou asked for your link to the {{ trial }} study's questionnaires. This is your current "
        "personal link:\n\n{{ link }}\n\nIf you did not ask for it, you can ignore this message: nobody else "
        "received it.\n\n"
        "{% if study_contact %}Questions? Contact {{ study_contact }}.{% else %}Questions? Contact the study team.{% endif %}"
        "\n\nTo stop e-mails from the study: {{ opt_out_link }}\n",
    ),
    (NEW_LINK, "sms"): (
        "",
        "{{ trial }} study: your current personal link, as you asked: {{ link }} Stop SMS: {{ opt_out_link }}",
    ),
}


class LinkMessages(MessageKind):
    code = "link"

    def owns(self, message: Message) -> bool:
        return message.occurrence_id is None and message.session_id is None and message.step in (WELCOME, NEW_LINK)

    def why_not(self, message: Message, now: dt.datetime) -> str:
        if message.participant.withdrawn_from_followup:
            return "Withdrawn from follow-up"
        return ""

    def immediate(self, message: Message) -> bool:
        # The participant is waiting for it: a link they asked for goes out in quiet hours too.
        return message.step == NEW_LINK

    def template_code(self, message: Message) -> str:
        return message.step

    def context(self, message: Message, *, zone: str, cache: dict[Any, Any]) -> dict[str, Any]:
        return {}
