"""An e-mail backend for tests with worker processes, which cannot share Django's locmem.

It fails the first ``TEST_EMAIL_FAILURES`` sends (counted in ``TEST_EMAIL_DIR``, so every
process of a worker shares the count) with an SMTP error, then writes each message to a
``.eml`` file in that directory, where the test counts them.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from smtplib import SMTPServerDisconnected
from typing import Any

from django.core.mail.backends.base import BaseEmailBackend


class FlakyFileBackend(BaseEmailBackend):
    def __init__(self, fail_silently: bool = False, **kwargs: Any) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.dir = Path(os.environ["TEST_EMAIL_DIR"])
        self.failures = int(os.environ.get("TEST_EMAIL_FAILURES", "0"))

    def _attempt(self) -> int:
        with (self.dir / "attempts.lock").open("a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            counter = self.dir / "attempts"
            count = int(counter.read_text() or 0) + 1 if counter.exists() else 1
            counter.write_text(str(count))
            return count

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        attempt = self._attempt()
        if attempt <= self.failures:
            raise SMTPServerDisconnected(f"planned failure {attempt} of {self.failures}")
        for message in email_messages:
            (self.dir / f"{uuid.uuid4().hex}.eml").write_bytes(message.message().as_bytes())
        return len(email_messages)
