"""Protocol v1 frames: parse and validate client frames, serialize server frames.

The wire contract is docs/protocol.md. Client frames are validated with pydantic;
server frames are built by hand because the hot path (``event``) is pre-serialized
once per event and written to many sockets as is.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from taskstream.exceptions import ProtocolError

# Error codes a server may answer with (docs/protocol.md).
BAD_FRAME = "bad_frame"
UNKNOWN_TYPE = "unknown_type"
UNKNOWN_TOPIC = "unknown_topic"
FORBIDDEN = "forbidden"
NOT_ALLOWED = "not_allowed"
TOO_LARGE = "too_large"
RATE_LIMITED = "rate_limited"
UNAUTHENTICATED = "unauthenticated"
TOO_MANY_CONNECTIONS = "too_many_connections"
# A ``doc:<id>`` update that pycrdt cannot apply (taskstream.collab).
BAD_UPDATE = "bad_update"
ERROR_CODES = frozenset(
    {BAD_FRAME, UNKNOWN_TYPE, UNKNOWN_TOPIC, FORBIDDEN, NOT_ALLOWED, TOO_LARGE, RATE_LIMITED,
     UNAUTHENTICATED, TOO_MANY_CONNECTIONS, BAD_UPDATE}
)

# WebSocket close codes.
CLOSE_NORMAL = 1000
CLOSE_TOO_LARGE = 1009
CLOSE_TRY_AGAIN = 1013
CLOSE_UNAUTHENTICATED = 4401
CLOSE_SLOW_CONSUMER = 4408
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_MANY_CONNECTIONS = 4430
CLOSE_TOO_MANY_ANONYMOUS = 4431

# A \uD800-\uDFFF escape: the only way a lone surrogate (text that cannot be stored, sent
# on or encoded as UTF-8) gets into a frame whose bytes were valid UTF-8.
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")
TOPIC_RE = re.compile(r"^[a-z][a-z0-9_]*(:[A-Za-z0-9_.@:-]{1,200})?$")
EVENT_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
MAX_TOPIC_LEN = 220
MAX_EVENT_LEN = 64

FrameId = (Annotated[StrictInt, Field(ge=0, le=2**53)]
           | Annotated[StrictStr, Field(max_length=64)])
Topic = Annotated[StrictStr,
                  Field(min_length=1, max_length=MAX_TOPIC_LEN, pattern=TOPIC_RE.pattern)]


class _Frame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    id: FrameId | None = None


class Subscribe(_Frame):
    type: Literal["subscribe"]
    topic: Topic
    since: Annotated[StrictStr, Field(max_length=80)] | None = None


class Unsubscribe(_Frame):
    type: Literal["unsubscribe"]
    topic: Topic


class Publish(_Frame):
    type: Literal["publish"]
    topic: Topic
    event: Annotated[StrictStr, Field(min_length=1, max_length=MAX_EVENT_LEN,
                                      pattern=EVENT_RE.pattern)]
    data: dict[str, Any] = Field(default_factory=dict)


class Ping(_Frame):
    type: Literal["ping"]


class Auth(_Frame):
    type: Literal["auth"]
    token: Annotated[StrictStr, Field(min_length=1, max_length=1024)]


ClientFrame = Annotated[Subscribe | Unsubscribe | Publish | Ping | Auth,
                        Field(discriminator="type")]
CLIENT_TYPES = frozenset({"subscribe", "unsubscribe", "publish", "ping", "auth"})
_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


def parse_client_frame(text: str) -> Subscribe | Unsubscribe | Publish | Ping | Auth:
    """Parse one client text frame or raise :class:`ProtocolError` with the wire code."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(BAD_FRAME, "frame is not valid JSON") from exc
    if not isinstance(raw, dict):
        raise ProtocolError(BAD_FRAME, "frame must be a JSON object")
    if _SURROGATE_ESCAPE_RE.search(text) and not _encodable(raw):
        raise ProtocolError(BAD_FRAME, "frame holds a lone UTF-16 surrogate")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown frame type {str(kind)[:40]!r}")
    try:
        return _adapter.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "frame"
        raise ProtocolError(BAD_FRAME, f"{where}: {first['msg']}") from exc


def _encodable(raw: dict[str, Any]) -> bool:
    try:
        json.dumps(raw, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def request_id(text: str) -> int | str | None:
    """Best-effort ``id`` of a frame that failed to parse, so the error can echo it."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(raw, dict):
        value = raw.get("id")
        if (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**53) or (
            isinstance(value, str) and len(value) <= 64
        ):
            return value
    return None


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _with_id(frame: dict[str, Any], frame_id: int | str | None) -> dict[str, Any]:
    if frame_id is not None:
        frame["id"] = frame_id
    return frame


def welcome_frame(user_id: Any, heartbeat: float) -> str:
    return _dump({"type": "welcome", "user": user_id, "heartbeat": heartbeat})


def subscribed_frame(topic: str, cursor: str, frame_id: int | str | None,
                     extra: dict[str, Any] | None = None) -> str:
    frame = {"type": "subscribed", "topic": topic, "cursor": cursor, **(extra or {})}
    return _dump(_with_id(frame, frame_id))


def unsubscribed_frame(topic: str, frame_id: int | str | None) -> str:
    return _dump(_with_id({"type": "unsubscribed", "topic": topic}, frame_id))


def gap_frame(topic: str, cursor: str) -> str:
    return _dump({"type": "gap", "topic": topic, "cursor": cursor})


def error_frame(code: str, message: str, frame_id: int | str | None = None) -> str:
    return _dump(_with_id({"type": "error", "code": code, "message": message}, frame_id))


def revoked_frame(topic: str, message: str) -> str:
    """An unasked ``forbidden`` error naming a topic: its subscription was dropped."""
    return _dump({"type": "error", "code": FORBIDDEN, "message": message, "topic": topic})


def pong_frame(frame_id: int | str | None) -> str:
    return _dump(_with_id({"type": "pong"}, frame_id))


def published_frame(topic: str, cursor: str | None, frame_id: int | str | None) -> str:
    return _dump(_with_id({"type": "published", "topic": topic, "cursor": cursor}, frame_id))


def event_frame(topic_json: str, cursor: str | None, event_json: str, data_json: str,
                ts: str) -> str:
    """The ``event`` frame from already-encoded parts; identical to what the Lua script builds."""
    if cursor is None:
        return (f'{{"type":"event","topic":{topic_json},"event":{event_json},'
                f'"data":{data_json},"ts":"{ts}"}}')
    return (f'{{"type":"event","topic":{topic_json},"cursor":"{cursor}","event":{event_json},'
            f'"data":{data_json},"ts":"{ts}"}}')
