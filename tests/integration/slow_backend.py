"""A slow e-mail outbox for the kill test: a sweep takes long enough to be killed mid-batch."""

from __future__ import annotations

import time
from typing import Any

from messaging.channels import OutboxEmailBackend

SECONDS_PER_MESSAGE = 0.2


class SlowOutboxEmailBackend(OutboxEmailBackend):
    """``OutboxEmailBackend`` (one file per Message-ID, written once) at a slow provider's pace."""

    def send_messages(self, email_messages: Any) -> int:
        sent = 0
        for message in email_messages:
            time.sleep(SECONDS_PER_MESSAGE)
            sent += super().send_messages([message])
        return sent
