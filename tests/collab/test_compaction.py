"""Compaction keeps the stored size bounded by the document, not by its edit count, and a
late joiner still gets the whole text."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from taskstream.collab import services
from taskstream.collab.models import Document, DocumentUpdate
from taskstream.collab.testing import Editor

pytestmark = pytest.mark.django_db(transaction=True)

EDITS = 10_000
PER_UPDATE = 10  # keystrokes a client batches while its previous update is on its way
COMPACT_EVERY = 100


@pytest.fixture(scope="module")
def compacting_server(start_server: Any) -> Any:
    """A server that compacts every 100 updates, and lets one socket send fast."""
    settings = {
        "COLLAB_COMPACT_EVERY": COMPACT_EVERY,
        "RATE_PER_SECOND": 100_000,
        "RATE_BURST": 100_000,
        "SIGNUPS_PER_CLIENT": 10_000,
        "LOGIN_ATTEMPTS_PER_CLIENT": 10_000,
    }
    return start_server(TASKSTREAM_JSON=json.dumps(settings))


class Typist:
    """Keystrokes at a cursor (one in three a backspace); now and then the cursor moves."""

    def __init__(self, editor: Editor, seed: int) -> None:
        self.editor, self.rng, self.cursor, self.count = editor, random.Random(seed), 0, 0

    def update(self) -> bytes:
        """``PER_UPDATE`` keystrokes as one Yjs update."""

        def keystrokes(text: Any) -> None:
            for _ in range(PER_UPDATE):
                self.count += 1
                if self.count % 250 == 0:
                    self.cursor = self.rng.randint(0, len(text))
                if self.count % 3 == 0 and self.cursor > 0:
                    del text[self.cursor - 1]
                    self.cursor -= 1
                else:
                    text.insert(self.cursor, "abcdefgh"[self.count % 8])
                    self.cursor += 1

        return self.editor.change(keystrokes)


@pytest.mark.timeout(900)
async def test_stored_size_stays_bounded_after_10000_edits(
    compacting_server, hub_server, make_user, session_cookie
):
    owner = await sync_to_async(make_user)("owner")
    document = await sync_to_async(services.document_create)(owner=owner, title="T")
    cookie = await sync_to_async(session_cookie)(owner)
    editor = Editor(compacting_server, cookie, str(document.pk), "typist")
    await editor.connect()
    typist = Typist(editor, 10_000)
    sent = largest = 0
    window: list[asyncio.Future[dict[str, Any]]] = []
    for _ in range(EDITS // PER_UPDATE):
        update = typist.update()
        sent += len(update)
        largest = max(largest, len(update))
        window.append(asyncio.ensure_future(editor.publish(update, timeout=300)))
        if len(window) >= 20:  # a few in flight, as a fast typist's client would have
            for answer in await asyncio.gather(*window):
                assert answer["type"] == "published", answer
            window.clear()
    for answer in await asyncio.gather(*window):
        assert answer["type"] == "published", answer
    await editor.disconnect()
    updates = EDITS // PER_UPDATE
    assert (await Document.objects.aget(pk=document.pk)).version == updates

    # Compaction runs in the background (the last round may still be finishing): a
    # snapshot, and few rows past it.
    rows = updates
    for _ in range(1200):
        rows = await DocumentUpdate.objects.filter(document=document).acount()
        if rows < 2 * COMPACT_EVERY:
            break
        await asyncio.sleep(0.1)
    assert rows < 2 * COMPACT_EVERY
    stored = await Document.objects.aget(pk=document.pk)
    assert stored.snapshot_version >= updates - 2 * COMPACT_EVERY
    final = await sync_to_async(services.document_stored_bytes)(document_id=document.pk)
    # Without compaction every update would stay as a row, however many there are. With
    # it: the state itself (as the editor's own pycrdt encodes it) plus the rows since the
    # last compaction; once those are merged too, about the state alone.
    state = len(editor.doc.get_update())
    assert final <= state * 1.2 + rows * largest, (final, state, rows, largest)
    assert final <= sent, (final, sent)
    await sync_to_async(services.document_compact)(document_id=document.pk)
    merged = await sync_to_async(services.document_stored_bytes)(document_id=document.pk)
    assert merged <= state * 1.2 + 64, (merged, state)

    # A late joiner on another process gets the whole text from snapshot + rows.
    late = Editor(hub_server, cookie, str(document.pk), "late")
    await late.connect()
    await late.disconnect()
    assert late.value == editor.value and len(late.value) > 3000, len(late.value)
