"""Writes: documents, members, applying updates, compaction.

Every update goes through :func:`update_apply`: checked, applied to the server's pycrdt
copy, stored and announced in one transaction that holds the document's lock, so updates
sent to several server processes at once are applied one after the other and none is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from taskstream.collab import ydoc
from taskstream.collab.exceptions import (
    DocumentForbidden,
    DocumentNotFound,
    InvalidInput,
    UpdateTooLarge,
)
from taskstream.collab.models import Document, DocumentMember, DocumentUpdate, Role
from taskstream.collab.selectors import OWNER, copy_at, document_role
from taskstream.conf import conf
from taskstream.outbox import outbox_write

logger = logging.getLogger("taskstream.collab")


def document_create(*, owner: Any, title: str, public_read: bool = False) -> Document:
    title = title.strip()
    if not title:
        raise InvalidInput("a document needs a title")
    return Document.objects.create(owner=owner, title=title[:200], public_read=public_read)


def document_member_set(*, document: Document, by: Any, username: str, role: str) -> Any:
    """Share ``document`` with ``username`` as ``role`` (owner only); a member's role changes."""
    if document.owner_id != by.pk:
        raise DocumentForbidden("only the document's owner may share it")
    if role not in Role.values:
        raise InvalidInput(f"role must be one of {', '.join(Role.values)}")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise InvalidInput(f"no active user {username!r}")
    if user.pk == document.owner_id:
        raise InvalidInput("the owner is not a member of their own document")
    DocumentMember.objects.update_or_create(document=document, user=user, defaults={"role": role})
    return user


def document_member_remove(*, document: Document, by: Any, username: str) -> None:
    """Unshare: the owner removes anyone, a member removes themself. Their open sockets drop
    the document's topic once this commits (collab/receivers.py)."""
    if not (document.owner_id == by.pk or by.get_username() == username):
        raise DocumentForbidden("only the document's owner may remove other members")
    deleted, _ = DocumentMember.objects.filter(document=document, user__username=username).delete()
    if not deleted:
        raise InvalidInput(f"{username!r} is not a member of this document")


@dataclass(frozen=True)
class Applied:
    """An update stored with its ``update`` event; ``key`` is the event's outbox key."""

    data: dict[str, Any]
    key: str
    version: int
    compact_due: bool


def update_apply(
    *, document_id: Any, user: Any, update: bytes, client: str = "", topic: str = ""
) -> Applied:
    """Check, apply, store and announce one Yjs v1 update from ``user``.

    Refusals (nothing stored, nothing announced): ``DocumentNotFound`` (may not read),
    ``DocumentForbidden`` (a viewer), ``UpdateTooLarge`` (the update, or the document it
    would make), ``BadUpdate`` (pycrdt cannot apply it). Runs in a thread (``db_call``).
    The event goes to ``topic`` (default ``doc:<id>``; a document type of one's own names
    its own).
    """
    if len(update) > conf.COLLAB_MAX_UPDATE_BYTES:
        raise UpdateTooLarge(
            f"the update is {len(update)} bytes; the limit is "
            f"COLLAB_MAX_UPDATE_BYTES={conf.COLLAB_MAX_UPDATE_BYTES}"
        )
    if not (user.is_authenticated and user.is_active):
        raise DocumentNotFound("no such document")
    editor = DocumentMember.objects.filter(
        document=OuterRef("pk"), user_id=user.pk, role=Role.EDITOR
    )
    try:
        with transaction.atomic():
            # The document's lock, taken by the write itself: a row lock on PostgreSQL, the
            # database's write lock on SQLite, held until commit. Whoever comes next reads
            # this version and everything it holds. Only the owner's and editors' updates
            # match: the role check is the same statement.
            if not Document.objects.filter(
                Q(owner_id=user.pk) | Exists(editor), pk=document_id
            ).update(version=F("version") + 1, updated_at=timezone.now()):
                # Refused: say why (the rare path, a second query).
                if document_role(document_id=document_id, user=user) is None:
                    raise DocumentNotFound("no such document")
                raise DocumentForbidden("viewers cannot change this document")
            version, snapshot_version = (
                Document.objects.filter(pk=document_id)
                .values_list("version", "snapshot_version")
                .get()
            )
            with ydoc.held(document_id) as copy:
                copy = copy_at(document_id, copy, version=version - 1, exact=True)
                ydoc.drop(document_id)  # until it holds exactly what is stored
                ydoc.apply_checked(copy.doc, update)
                copy.size += len(update)
                _size_check(copy)
                copy.version = version
                DocumentUpdate.objects.create(document_id=document_id, seq=version, data=update)
                data = {"update": ydoc.b64encode(update), "client": client, "version": version}
                key = outbox_write(topic=topic or f"doc:{document_id}", event="update", data=data)
                ydoc.keep(document_id, copy)
    except BaseException:
        # The copy may hold the refused update, or one whose commit failed.
        ydoc.drop(document_id)
        raise
    return Applied(
        data=data,
        key=key,
        version=version,
        compact_due=version - snapshot_version >= conf.COLLAB_COMPACT_EVERY,
    )


def _size_check(copy: ydoc.Copy) -> None:
    limit = conf.COLLAB_MAX_DOCUMENT_BYTES
    if copy.size <= limit:
        return
    copy.size = len(copy.doc.get_update())  # the bound passed the limit: measure
    if copy.size > limit:
        raise UpdateTooLarge(
            f"the document would be {copy.size} bytes; the limit is "
            f"COLLAB_MAX_DOCUMENT_BYTES={limit}"
        )


def document_compact(*, document_id: Any) -> tuple[int, int] | None:
    """Merge the stored updates into the snapshot; returns (bytes before, bytes after), or
    None when there was nothing to do or another compaction won.

    Takes no lock while it works: it rebuilds the state up to the version it read, then
    swaps the snapshot only if no other compaction did meanwhile, and deletes exactly the
    updates the new snapshot holds. Updates applied meanwhile stay as rows.
    """
    row = (
        Document.objects.filter(pk=document_id)
        .values_list("snapshot", "snapshot_version", "version")
        .first()
    )
    if row is None:
        return None
    snapshot, snapshot_version, version = row
    if version == snapshot_version:
        return None
    rows = list(
        DocumentUpdate.objects.filter(
            document_id=document_id, seq__gt=snapshot_version, seq__lte=version
        )
        .order_by("seq")
        .values_list("data", flat=True)
    )
    if len(rows) != version - snapshot_version:
        return None  # another compaction moved the snapshot meanwhile
    doc = ydoc.new_doc()
    if snapshot:
        doc.apply_update(bytes(snapshot))
    for data in rows:
        doc.apply_update(bytes(data))
    merged = doc.get_update()
    before = len(snapshot) + sum(len(data) for data in rows)
    with transaction.atomic():
        if not Document.objects.filter(pk=document_id, snapshot_version=snapshot_version).update(
            snapshot=merged, snapshot_version=version
        ):
            return None
        DocumentUpdate.objects.filter(document_id=document_id, seq__lte=version).delete()
    logger.info(
        "collab: compacted %s to v%s: %s -> %s bytes", document_id, version, before, len(merged)
    )
    return before, len(merged)


def document_stored_bytes(*, document_id: Any) -> int:
    """Bytes of Yjs state stored for a document: its snapshot and the updates since."""
    from django.db.models.functions import Length

    snapshot = (
        Document.objects.filter(pk=document_id)
        .annotate(n=Length("snapshot"))
        .values_list("n", flat=True)
        .first()
        or 0
    )
    updates = sum(
        DocumentUpdate.objects.filter(document_id=document_id)
        .annotate(n=Length("data"))
        .values_list("n", flat=True)
    )
    return int(snapshot) + int(updates)


__all__ = [
    "OWNER",
    "Applied",
    "document_compact",
    "document_create",
    "document_member_remove",
    "document_member_set",
    "document_stored_bytes",
    "update_apply",
]
