"""Cursors: ``<epoch>-<ms>-<seq>``, the log epoch plus a Redis Stream id. Opaque to clients."""

from __future__ import annotations

import re
import secrets
from typing import NamedTuple

from taskstream.exceptions import ProtocolError
from taskstream.hub.protocol import BAD_FRAME

_CURSOR_RE = re.compile(r"^([0-9a-f]{1,32})-(\d{1,20})-(\d{1,20})$")

StreamId = tuple[int, int]
ZERO: StreamId = (0, 0)
# Both parts of a Redis Stream id are unsigned 64-bit integers; a replay reads the entries
# strictly after the cursor, which Redis refuses for the largest id of all.
U64_MAX = 2**64 - 1


class Cursor(NamedTuple):
    epoch: str
    sid: StreamId

    def __str__(self) -> str:
        return f"{self.epoch}-{self.sid[0]}-{self.sid[1]}"


def new_epoch() -> str:
    return secrets.token_hex(6)


def parse_sid(raw: str | bytes) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return (int(ms), int(seq or 0))


def format_sid(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


def parse_cursor(text: str) -> Cursor:
    """Parse a client-supplied cursor or raise ``bad_frame``."""
    match = _CURSOR_RE.match(text)
    if match is None:
        raise ProtocolError(BAD_FRAME, "since: not a cursor this server issued")
    sid = (int(match.group(2)), int(match.group(3)))
    if sid[0] > U64_MAX or sid[1] > U64_MAX or sid == (U64_MAX, U64_MAX):
        raise ProtocolError(BAD_FRAME, "since: not a cursor this server issued")
    return Cursor(match.group(1), sid)
