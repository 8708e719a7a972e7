"""Why a room refused a request; each maps to an HTTP status and a WebSocket error code."""

from __future__ import annotations

from taskstream.exceptions import Refusal


class RoomError(Refusal):
    """Base of the rooms app's refusals; ``code`` is the wire code, ``status`` the HTTP one."""


class NotAMember(RoomError):
    """The user may not read or post in this room."""

    code = "forbidden"
    status = 403


class MessageInvalid(RoomError):
    """The message body is missing, empty or not text."""

    code = "invalid"
    status = 422


class MessageTooLong(RoomError):
    """The message body is longer than ``ROOM_MESSAGE_MAX_LENGTH``."""

    code = "too_large"
    status = 413


class MessageRateLimited(RoomError):
    """The author sent more than ``ROOM_MESSAGE_RATE`` messages in the window."""

    code = "rate_limited"
    status = 429

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TypingThrottled(RoomError):
    """A typing event came sooner than ``ROOM_TYPING_INTERVAL`` after the last one."""

    code = "rate_limited"
    status = 429
