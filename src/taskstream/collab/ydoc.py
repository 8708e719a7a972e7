"""The server's pycrdt copies of documents: load, catch up, apply, encode.

A process keeps the Doc of each recently used document with the version it holds, so an
update costs one apply, not a rebuild from the snapshot. The database stays the truth:
before each use the copy catches up on the updates stored since its version (by any
process), and a copy that may hold something the database does not (a refused or
rolled-back update) is dropped.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Text, get_update

from taskstream.collab.exceptions import BadUpdate, InvalidInput

#: The name of the shared text every document of this app holds (``doc.get("text", type=Text)``).
TEXT = "text"

# Documents whose Doc a process keeps; beyond it the least recently used is rebuilt on demand.
CACHE_SIZE = 256


def b64decode(value: object, *, field: str) -> bytes:
    """Strict base64 (``""`` is empty bytes), or ``InvalidInput``."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{field} is not valid base64") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _varuint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated state vector")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 70:
            raise ValueError("varuint too long")


def decode_state_vector(data: bytes) -> dict[int, int]:
    """``{client: clock}`` of a Yjs v1 state vector; ``ValueError`` when malformed."""
    if not data:
        return {}
    count, pos = _varuint(data, 0)
    clocks: dict[int, int] = {}
    for _ in range(count):
        client, pos = _varuint(data, pos)
        clocks[client], pos = _varuint(data, pos)
    if pos != len(data):
        raise ValueError("trailing bytes after the state vector")
    return clocks


def apply_checked(doc: Doc[Any], update: bytes) -> None:
    """Apply ``update`` to ``doc``, or raise ``BadUpdate``.

    Refused: bytes pycrdt cannot decode, and updates that build on changes ``doc`` lacks.
    Yjs would keep those "pending" until the missing part arrives, but a pending part is
    not in the encoded state, so a snapshot would silently lose it; the sender is told
    instead, re-syncs and sends what the server lacks. ``doc`` may be changed even when
    this raises: the caller drops it.
    """
    try:
        doc.apply_update(update)
        # What of the update the doc's state does not cover: its structs that stayed
        # pending. The encoding starts with the number of clients that have structs.
        left = get_update(update, doc.get_state())
    except Exception as exc:
        raise BadUpdate(f"not a Yjs v1 update: {exc}") from None
    except BaseException as exc:  # pyo3's PanicException: a Rust panic on hostile bytes
        if type(exc).__name__ != "PanicException":
            raise
        raise BadUpdate("not a Yjs v1 update") from None
    if left[:1] != b"\x00":
        raise BadUpdate("the update builds on changes the server does not have; sync first")


def new_doc() -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.get(TEXT, type=Text)
    return doc


def text_of(doc: Doc[Any]) -> str:
    return str(doc.get(TEXT, type=Text))


@dataclass
class Copy:
    """A process's Doc of one document, holding updates up to ``version``."""

    doc: Doc[Any]
    version: int
    # An upper bound of len(doc.get_update()): measured now and then (it costs ms on a
    # large document), plus the size of each update applied since.
    size: int = 0


_copies: OrderedDict[str, Copy] = OrderedDict()
# Striped: a bounded set of locks, whatever the number of documents a process meets.
_locks = [threading.Lock() for _ in range(64)]
_registry_lock = threading.Lock()


@contextmanager
def held(document_id: Any) -> Iterator[Copy | None]:
    """Exclusive use of this process's copy of a document (None when it has none).

    Take it only after the database lock of the document, never before: a thread holding
    it never waits for the database's lock, so processes cannot deadlock on the pair.
    """
    key = str(document_id)  # a uuid from the API, its text from a topic key: one copy
    with _locks[hash(key) % len(_locks)]:
        with _registry_lock:
            copy = _copies.get(key)
            if copy is not None:
                _copies.move_to_end(key)
        yield copy


def keep(document_id: Any, copy: Copy) -> None:
    """Remember ``copy`` (call it while :func:`held`)."""
    key = str(document_id)
    with _registry_lock:
        _copies[key] = copy
        _copies.move_to_end(key)
        while len(_copies) > CACHE_SIZE:
            _copies.popitem(last=False)


def drop(document_id: Any) -> None:
    """Forget the copy (it may hold what the database does not)."""
    with _registry_lock:
        _copies.pop(str(document_id), None)


def forget_all() -> None:
    with _registry_lock:
        _copies.clear()
