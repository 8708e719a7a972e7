"""Every failure taskstream raises, one class each."""

from __future__ import annotations


class TaskstreamError(Exception):
    """Base class of every taskstream error."""


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
