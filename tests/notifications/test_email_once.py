"""``email_send_once``: attempts and errors are recorded; one e-mail per key."""

from __future__ import annotations

from smtplib import SMTPServerDisconnected

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.test import override_settings

from taskstream.notifications.models import SentEmail
from taskstream.notifications.services import email_send_once

pytestmark = pytest.mark.django_db

FAILURES = {"left": 0}


class FailingThenLocmem(EmailBackend):
    """locmem, after ``FAILURES["left"]`` SMTP disconnects."""

    def send_messages(self, messages):  # type: ignore[no-untyped-def]
        if FAILURES["left"] > 0:
            FAILURES["left"] -= 1
            raise SMTPServerDisconnected("the server hung up")
        return super().send_messages(messages)


@override_settings(EMAIL_BACKEND=f"{__name__}.FailingThenLocmem")
def test_failures_are_recorded_and_the_mail_goes_out_once():
    FAILURES["left"] = 2
    send = {"key": "k1", "to": "a@example.com", "subject": "Hi", "text": "t", "html": "<p>t</p>"}
    for _ in range(2):
        with pytest.raises(SMTPServerDisconnected):
            email_send_once(**send)
    record = SentEmail.objects.get(key="k1")
    assert (record.attempts, record.sent_at) == (2, None)
    assert "SMTPServerDisconnected: the server hung up" in record.last_error
    assert email_send_once(**send) is True
    assert email_send_once(**send) is False  # a duplicate delivery
    record.refresh_from_db()
    assert record.attempts == 3 and record.sent_at is not None and record.last_error == ""
    assert len(mail.outbox) == 1
    assert mail.outbox[0].alternatives[0] == ("<p>t</p>", "text/html")


def test_keys_are_independent():
    assert email_send_once(key="a", to="x@example.com", subject="s", text="t") is True
    assert email_send_once(key="b", to="x@example.com", subject="s", text="t") is True
    assert len(mail.outbox) == 2
