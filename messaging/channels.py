"""Where messages go: e-mail through Django's backends, SMS through a small backend interface.

Every send carries the message's idempotency key. The outbox backends (the default, writing to
``var/messages``) deliver a key once, as a provider honouring idempotency keys does; so a sweep
that dies after sending but before recording the send re-sends nothing when it is retried.

``SMS_URL`` picks the SMS backend:

- ``file:///path`` (default ``var/messages/sms``): one file per message, named by its key.
- ``console://``: printed to standard output.
- ``null://``: discarded (benchmarks).
- ``clicksend://USERNAME:API_KEY@rest.clicksend.com?from=WalkBack``: ClickSend's REST API (v3).
"""

from __future__ import annotations

import base64
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend


class SendError(Exception):
    """The provider refused or could not be reached; the message is retried later."""


@dataclass(frozen=True)
class Sms:
    to: str
    body: str
    key: str


class SmsBackend(Protocol):
    def send(self, sms: Sms) -> str:
        """Send one SMS; return the provider's id. Raise SendError on failure."""
        ...


def _safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)[:150]


class FileSmsBackend:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, sms: Sms) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{_safe_name(sms.key)}.txt"
        if not path.exists():  # delivered once per key
            tmp = path.with_suffix(".tmp")
            tmp.write_text(f"To: {sms.to}\nKey: {sms.key}\n\n{sms.body}\n", encoding="utf-8")
            tmp.replace(path)
        return path.name


class ConsoleSmsBackend:
    def send(self, sms: Sms) -> str:
        sys.stdout.write(f"SMS to {sms.to} [{sms.key}]: {sms.body}\n")
        return sms.key


class NullSmsBackend:
    def send(self, sms: Sms) -> str:
        return sms.key


class ClickSendSmsBackend:
    """ClickSend (an Australian SMS provider) REST v3: POST /v3/sms/send with basic auth.

    The idempotency key goes as ``custom_string``, which ClickSend returns in delivery receipts.
    """

    def __init__(
        self, *, username: str, api_key: str, host: str, sender: str, scheme: str = "https", timeout: float = 10
    ) -> None:
        self.url = f"{scheme}://{host}/v3/sms/send"
        self.auth = base64.b64encode(f"{username}:{api_key}".encode()).decode()
        self.sender = sender
        self.timeout = timeout

    def send(self, sms: Sms) -> str:
        payload = {"messages": [{"source": "walkback", "to": sms.to, "body": sms.body, "custom_string": sms.key}]}
        if self.sender:
            payload["messages"][0]["from"] = self.sender
        request = urllib.request.Request(  # noqa: S310 - the URL is the configured provider's
            self.url,
            data=json.dumps(payload).encode(),
            headers={"Authorization": f"Basic {self.auth}", "Content-Type": "application/json", "Idempotency-Key": sms.key},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310
                body: dict[str, Any] = json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise SendError(f"ClickSend answered {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise SendError(f"ClickSend could not be reached: {exc}") from exc
        messages = (body.get("data") or {}).get("messages") or [{}]
        status = str(messages[0].get("status", ""))
        if body.get("response_code") != "SUCCESS" or status not in ("SUCCESS", "QUEUED", ""):
            raise SendError(f"ClickSend refused the message: {body.get('response_code')} {status}".strip())
        return str(messages[0].get("message_id", ""))


def sms_backend_from_url(url: str) -> SmsBackend:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return FileSmsBackend(Path(parts.path or str(settings.MESSAGES_DIR / "sms")))
    if parts.scheme == "console":
        return ConsoleSmsBackend()
    if parts.scheme == "null":
        return NullSmsBackend()
    if parts.scheme in ("clicksend", "clicksend+http"):
        query = urllib.parse.parse_qs(parts.query)
        return ClickSendSmsBackend(
            username=urllib.parse.unquote(parts.username or ""),
            api_key=urllib.parse.unquote(parts.password or ""),
            host=parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "rest.clicksend.com",
            sender=query.get("from", [""])[0],
            scheme="http" if parts.scheme == "clicksend+http" else "https",
        )
    raise ValueError(f"Unknown SMS_URL scheme: {parts.scheme!r}")


@cache
def _cached_backend(url: str) -> SmsBackend:
    return sms_backend_from_url(url)


def sms_backend() -> SmsBackend:
    return _cached_backend(settings.SMS_URL)


class OutboxEmailBackend(BaseEmailBackend):
    """Writes each e-mail to ``EMAIL_FILE_PATH`` as one ``.eml`` file named by its Message-ID,
    once: sending the same Message-ID again is a no-op, as an idempotent provider would do."""

    def __init__(self, file_path: str | None = None, fail_silently: bool = False, **kwargs: Any) -> None:
        super().__init__(fail_silently=fail_silently)
        self.directory = Path(file_path or settings.EMAIL_FILE_PATH)

    def send_messages(self, email_messages: Any) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            assert isinstance(message, EmailMessage)
            native = message.message()
            key = str(native["Message-ID"]).strip("<>")
            path = self.directory / f"{_safe_name(key)}.eml"
            if not path.exists():
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(native.as_bytes())
                tmp.replace(path)
            sent += 1
        return sent
