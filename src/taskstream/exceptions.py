"""Every failure taskstream raises, one class each."""

from __future__ import annotations


class TaskstreamError(Exception):
    """Base class of every taskstream error."""


class Refusal(TaskstreamError):
    """A service refused a user's request: ``code`` is the wire code (HTTP JSON body and
    WebSocket ``error`` frame alike), ``status`` the HTTP status. The API turns any
    Refusal a view lets through into ``{"code", "detail"}`` (taskstream/api.py)."""

    code = "invalid"
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class HubUsageError(TaskstreamError):
    """A hub function was called in the wrong context (sync vs async) or with bad arguments."""


class InvalidTopic(HubUsageError):
    """A topic or event name is malformed."""


class EventTooLarge(HubUsageError):
    """A published event's data is larger than ``MAX_EVENT_BYTES``."""


class ProtocolError(TaskstreamError):
    """A client frame was refused; ``code`` is the wire error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
