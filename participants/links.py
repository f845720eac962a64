"""A participant's personal link: the one way a participant opens their questionnaires, sessions
and diary. Only the SHA-256 of a token is stored; messages carry the live link, derived again by
HMAC from a stored nonce."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from participants.models import AccessLink, Participant
from trial.errors import Conflict
from trial.guard import ensure_writable
from trial.keys import key_fingerprint_record
from trial.models import KeyPurpose


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_from_nonce(nonce: str) -> str:
    """The link token for a nonce: 256 bits of HMAC with the server's secret, URL-safe."""
    digest = salted_hmac("followup.access-link", nonce, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@transaction.atomic
def access_link_issue(*, participant: Participant, by: Any = None) -> str:
    """A new personal link token (256 bits); the participant's previous link stops working."""
    trial = participant.site.trial
    ensure_writable(trial=trial)
    if participant.withdrawn_from_followup:
        raise Conflict(f"{participant.study_id} has withdrawn from follow-up: no questionnaire link is issued.")
    Participant.objects.select_for_update(of=("self",)).filter(pk=participant.pk).first()
    now = timezone.now()
    AccessLink.objects.filter(participant=participant, revoked_at__isnull=True).update(revoked_at=now)
    nonce = secrets.token_hex(32)
    token = _token_from_nonce(nonce)
    key_fingerprint_record(purpose=KeyPurpose.LINKS)
    AccessLink.objects.create(participant=participant, token_sha256=_token_hash(token), nonce=nonce, created_by=by)
    return token


def access_link_tokens(*, participants: list[Participant]) -> dict[int, str]:
    """The live link token of each participant, for messages: derived again from the stored
    nonce; a participant without a live derivable link gets a new one. Two queries per call."""
    tokens: dict[int, str] = {}
    live = AccessLink.objects.filter(participant_id__in=[p.pk for p in participants], revoked_at__isnull=True)
    for participant_id, nonce, token_sha256 in live.values_list("participant_id", "nonce", "token_sha256"):
        if nonce:
            token = _token_from_nonce(nonce)
            if _token_hash(token) == token_sha256:  # false after the secret key changed
                tokens[participant_id] = token
    missing = [p.pk for p in participants if p.pk not in tokens]
    if missing:
        AccessLink.objects.filter(participant_id__in=missing, revoked_at__isnull=True).update(revoked_at=timezone.now())
        new = []
        for pk in missing:
            nonce = secrets.token_hex(32)
            tokens[pk] = _token_from_nonce(nonce)
            new.append(AccessLink(participant_id=pk, token_sha256=_token_hash(tokens[pk]), nonce=nonce))
        key_fingerprint_record(purpose=KeyPurpose.LINKS)
        AccessLink.objects.bulk_create(new)
    return tokens


def _link_owner(token: str, *, revoked: bool) -> Participant | None:
    if not token or len(token) > 100:
        return None
    link = (
        AccessLink.objects.select_related("participant__site__trial", "participant__contact")
        .filter(token_sha256=_token_hash(token), revoked_at__isnull=not revoked)
        .first()
    )
    return link.participant if link else None


def access_link_replaced(*, token: str) -> Participant | None:
    """Whose link ``token`` was, if it was a real link that has since been replaced (or None)."""
    return _link_owner(token, revoked=True)


def access_link_participant(*, token: str) -> Participant | None:
    """The participant a live link belongs to, or None (unknown, revoked, or malformed token)."""
    return _link_owner(token, revoked=False)
