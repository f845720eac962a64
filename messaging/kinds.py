"""The registry of message kinds: what a message is about, and what only its owner knows.

The sweep (``messaging.services``) plans, re-checks, words and sends messages without naming any
feature; each feature registers a kind (follow-up: questionnaires; intervention: sessions) from
its ``AppConfig.ready``. A kind answers, for one message: is it mine, must it not go now, which
template words it, what the template may say, and what it attaches.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from messaging.models import Message


class MessageKind:
    """A kind of message. Subclasses override what differs; the defaults suit a plain message."""

    code = ""
    # Relations the sweep loads with each batch so the kind's answers cost no query per message.
    select_related: tuple[str, ...] = ()
    # Path under the participant's personal link that ``{{ link }}`` opens.
    link_path = ""

    def owns(self, message: Message) -> bool:
        raise NotImplementedError

    def plan(self, *, now: dt.datetime) -> int:
        """Write the rows of messages that became due to plan; 0 when there is nothing left."""
        return 0

    def why_not(self, message: Message, now: dt.datetime) -> str:
        """Why this message must not go out now (it is then cancelled), or ''."""
        return ""

    def immediate(self, message: Message) -> bool:
        """True for a message the participant is waiting for: it goes out in quiet hours too."""
        return False

    def template_code(self, message: Message) -> str:
        raise NotImplementedError

    def context(self, message: Message, *, zone: str, cache: dict[Any, Any]) -> dict[str, Any]:
        """What its template may say beyond the trial, the link and the opt-out link. ``cache``
        lives for one sweep (titles and the like, read once)."""
        return {}

    def attachment(self, message: Message, *, code: str) -> tuple[str, bytes, str] | None:
        """(file name, content, MIME type) of a file to attach to its e-mail, or None."""
        return None


_kinds: list[MessageKind] = []


def register(kind: MessageKind) -> MessageKind:
    if all(existing.code != kind.code for existing in _kinds):
        _kinds.append(kind)
    return kind


def registered() -> list[MessageKind]:
    return list(_kinds)


def kind_of(message: Message) -> MessageKind | None:
    return next((kind for kind in _kinds if kind.owns(message)), None)


def select_related() -> list[str]:
    return sorted({name for kind in _kinds for name in kind.select_related})
