"""Per-socket and per-process limits on what clients send and hold open.

Pure bookkeeping, no I/O: the connection asks, and acts on the answer (an ``error``
frame, a close code).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from taskstream.conf import conf


def text_too_large(text: str) -> bool:
    """Whether a text frame is above ``MAX_FRAME_BYTES`` in UTF-8."""
    limit = conf.MAX_FRAME_BYTES
    # UTF-8 takes 1 to 4 bytes a character: encode only when the length cannot tell.
    return len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit)


def bytes_too_large(raw: bytes) -> bool:
    return len(raw) > conf.MAX_FRAME_BYTES


class RateLimit:
    """A token bucket over one socket's frames, with a count of refusals in a row."""

    __slots__ = ("_refilled", "_tokens", "strikes")

    def __init__(self) -> None:
        self._tokens = float(conf.RATE_BURST)
        self._refilled = time.monotonic()
        self.strikes = 0

    def allow(self) -> bool:
        """Take a token; on refusal count a strike (an accepted frame clears them)."""
        now = time.monotonic()
        self._tokens = min(float(conf.RATE_BURST),
                           self._tokens + (now - self._refilled) * conf.RATE_PER_SECOND)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.strikes = 0
            return True
        self.strikes += 1
        return False

    @property
    def exhausted(self) -> bool:
        """Too many refusals in a row: the socket is closed (4429)."""
        return self.strikes > conf.RATE_STRIKES


class SocketQuota:
    """Open sockets on this process: per signed-in user (``MAX_CONNECTIONS_PER_USER``),
    and anonymous ones in all and per client address (``MAX_ANONYMOUS_CONNECTIONS*``)."""

    def __init__(self) -> None:
        self._per_user: Counter[Any] = Counter()
        self._anonymous = 0
        self._per_address: Counter[str] = Counter()

    def acquire_anonymous(self, address: str | None) -> bool:
        if self._anonymous >= conf.MAX_ANONYMOUS_CONNECTIONS:
            return False
        if address is not None:
            if self._per_address[address] >= conf.MAX_ANONYMOUS_CONNECTIONS_PER_ADDRESS:
                return False
            self._per_address[address] += 1
        self._anonymous += 1
        return True

    def release_anonymous(self, address: str | None) -> None:
        self._anonymous -= 1
        if address is not None:
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]

    def acquire(self, user_id: Any) -> bool:
        if self._per_user[user_id] >= conf.MAX_CONNECTIONS_PER_USER:
            return False
        self._per_user[user_id] += 1
        return True

    def release(self, user_id: Any) -> None:
        self._per_user[user_id] -= 1
        if self._per_user[user_id] <= 0:
            del self._per_user[user_id]


quota = SocketQuota()
