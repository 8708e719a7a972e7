"""The ``doc:<id>`` topic kind: members read; editors publish ``update``, readers ``awareness``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async

from taskstream.collab.exceptions import CollabError
from taskstream.collab.models import ID_PATTERN
from taskstream.conf import conf
from taskstream.exceptions import ProtocolError
from taskstream.hub import Publication, register_topic
from taskstream.hub import protocol as p
from taskstream.hub.database import db_call

logger = logging.getLogger("taskstream.collab")

_WIRE = {"not_found": p.FORBIDDEN, "invalid": p.BAD_FRAME}
# Longest "client" tag echoed with an update (Yjs clients send their clientID).
MAX_CLIENT_TAG = 64

# Documents this process is compacting now: one compaction per document at a time.
_compacting: set[str] = set()
_tasks: set[asyncio.Task[None]] = set()


def _refusal(exc: CollabError) -> ProtocolError:
    return ProtocolError(_WIRE.get(exc.code, exc.code), exc.detail)


async def _may_read(user: Any, key: str) -> bool:
    from taskstream.collab.selectors import adocument_may_read

    return await adocument_may_read(document_id=key, user=user)


def _client_tag(data: dict[str, Any]) -> str:
    tag = data.get("client", "")
    if isinstance(tag, int) and not isinstance(tag, bool):
        tag = str(tag)
    if not isinstance(tag, str) or len(tag) > MAX_CLIENT_TAG:
        raise ProtocolError(
            p.BAD_FRAME, f"client must be a string of at most {MAX_CLIENT_TAG} characters"
        )
    return tag


async def _on_publish(user: Any, key: str, event: str, data: dict[str, Any]) -> Publication:
    from taskstream.collab import ydoc
    from taskstream.collab.services import update_apply

    client = _client_tag(data)
    if event == "awareness":
        try:
            raw = ydoc.b64decode(data.get("awareness"), field="awareness")
        except CollabError as exc:
            raise _refusal(exc) from exc
        if len(raw) > conf.COLLAB_MAX_AWARENESS_BYTES:
            raise ProtocolError(
                p.TOO_LARGE,
                f"the awareness update is {len(raw)} bytes; the "
                f"limit is COLLAB_MAX_AWARENESS_BYTES="
                f"{conf.COLLAB_MAX_AWARENESS_BYTES}",
            )
        # Cursors and names: delivered at most once, never logged or stored.
        return Publication(
            "awareness", {"awareness": data["awareness"], "client": client}, ephemeral=True
        )
    try:
        update = ydoc.b64decode(data.get("update"), field="update")
        applied = await db_call(
            update_apply, document_id=key, user=user, update=update, client=client
        )
    except CollabError as exc:
        raise _refusal(exc) from exc
    if applied.compact_due:
        _compact_later(key)
    # Stored with its event in the outbox: the hub's publish and the outbox's are one.
    return Publication("update", applied.data, key=applied.key)


def _compact_later(document_id: str) -> None:
    """Compact in the background, off the database thread the socket's hooks share."""
    if document_id in _compacting:
        return
    from taskstream.collab.services import document_compact

    _compacting.add(document_id)

    async def run() -> None:
        try:
            await database_sync_to_async(document_compact, thread_sensitive=False)(
                document_id=document_id
            )
        except Exception:
            logger.exception(
                "collab: compaction of %s failed (the next update retries)", document_id
            )
        finally:
            _compacting.discard(document_id)

    task = asyncio.get_running_loop().create_task(run())
    _tasks.add(task)  # a reference, or the loop may collect the task before it ends
    task.add_done_callback(_tasks.discard)


def register_doc_topic() -> None:
    register_topic(
        "doc",
        authorize=_may_read,
        key_pattern=ID_PATTERN,
        client_events={"update", "awareness"},
        on_publish=_on_publish,
    )
