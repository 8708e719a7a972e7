"""Reads: who may do what with a document, listings, payloads, the state a client lacks."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Q, Subquery

from taskstream.collab import ydoc
from taskstream.collab.exceptions import DocumentNotFound
from taskstream.collab.models import Document, DocumentMember, DocumentUpdate, Role
from taskstream.hub.cursors_api import latest_cursor
from taskstream.hub.database import db_call

OWNER = "owner"


def document_role(*, document_id: Any, user: Any) -> str | None:
    """``owner``, ``editor`` or ``viewer`` (a member's role, or anyone signed in on a
    ``public_read`` document), or None: the user may not read it."""
    if not (user.is_authenticated and user.is_active):
        return None
    # One query: checked on every subscribe and every published update.
    member_role = DocumentMember.objects.filter(document=OuterRef("pk"), user_id=user.pk)
    row = (
        Document.objects.filter(pk=document_id)
        .annotate(member_role=Subquery(member_role.values("role")[:1]))
        .values_list("owner_id", "public_read", "member_role")
        .first()
    )
    if row is None:
        return None
    owner_id, public_read, role = row
    if owner_id == user.pk:
        return OWNER
    if role is not None:
        return str(role)
    return Role.VIEWER.value if public_read else None


def may_edit(role: str | None) -> bool:
    return role in (OWNER, Role.EDITOR.value)


async def adocument_may_read(*, document_id: str, user: Any) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    return await db_call(document_role, document_id=document_id, user=user) is not None


def document_list(*, user: Any) -> list[tuple[Document, str]]:
    """Documents ``user`` may read (owned, shared with them, or public) with their role."""
    if not (user.is_authenticated and user.is_active):
        return []
    member_role = DocumentMember.objects.filter(document=OuterRef("pk"), user_id=user.pk)
    documents = (
        Document.objects.filter(Q(owner=user) | Q(memberships__user=user) | Q(public_read=True))
        .distinct()
        .select_related("owner")
        .defer("snapshot")
        .annotate(member_role=Subquery(member_role.values("role")[:1]))
    )
    # Not the owner and no member role: readable because public, so a viewer.
    return [
        (d, OWNER if d.owner_id == user.pk else str(d.member_role or Role.VIEWER.value))
        for d in documents
    ]


def document_payload(document: Document, *, role: str, members: bool = True) -> dict[str, Any]:
    """The JSON shape of a document in the API."""
    payload: dict[str, Any] = {
        "id": str(document.pk),
        "title": document.title,
        "role": role,
        "owner": document.owner.get_username(),
        "public_read": document.public_read,
        "version": document.version,
        "topic": document.topic,
        "created_at": document.created_at,
        "updated_at": document.updated_at,
    }
    if members:
        payload["members"] = [
            {"username": m.user.get_username(), "role": m.role}
            for m in document.memberships.select_related("user").order_by("user__username")
        ]
    return payload


def _stored_rows(document_id: Any, after: int, upto: int) -> list[bytes] | None:
    """The updates ``after < seq <= upto``, or None when some were compacted away meanwhile."""
    rows = list(
        DocumentUpdate.objects.filter(document_id=document_id, seq__gt=after, seq__lte=upto)
        .order_by("seq")
        .values_list("data", flat=True)
    )
    if len(rows) != upto - after:
        return None
    return [bytes(data) for data in rows]


def copy_at(document_id: Any, copy: ydoc.Copy | None, *, version: int, exact: bool) -> ydoc.Copy:
    """This process's copy of the document, caught up from the database to ``version``.

    ``exact``: the caller holds the document's lock, so ``version`` is the stored one and
    nothing moves; otherwise the copy may end newer (a compaction passed ``version``).
    Call it while holding :func:`ydoc.held`.
    """
    if copy is not None and copy.version == version:
        return copy
    if copy is not None and copy.version < version:
        rows = _stored_rows(document_id, copy.version, version)
        if rows is not None:
            for data in rows:
                copy.doc.apply_update(data)
                copy.size += len(data)
            copy.version = version
            return copy
    for _attempt in range(20):
        row = (
            Document.objects.filter(pk=document_id)
            .values_list("snapshot", "snapshot_version", "version")
            .first()
        )
        if row is None:
            raise DocumentNotFound("no such document")
        snapshot, snapshot_version, stored = row
        target = version if exact else max(version, snapshot_version)
        if snapshot_version > target or target > stored:
            if exact:
                raise RuntimeError("the document moved while locked")
            version = stored
            continue
        rows = _stored_rows(document_id, snapshot_version, target)
        if rows is None:
            continue  # compacted between the two reads: read again
        doc = ydoc.new_doc()
        if snapshot:
            doc.apply_update(bytes(snapshot))
        for data in rows:
            doc.apply_update(data)
        return ydoc.Copy(
            doc=doc, version=target, size=len(snapshot) + sum(len(data) for data in rows)
        )
    raise RuntimeError("the document kept moving while it was read")


def document_sync(*, document: Document, state_vector: bytes) -> dict[str, Any]:
    """What a client with ``state_vector`` lacks, the server's state vector, and the hub
    cursor to subscribe ``since`` (read first: anything applied after it is replayed)."""
    cursor = latest_cursor(document.topic)
    stored = Document.objects.filter(pk=document.pk).values_list("version", flat=True).first()
    if stored is None:
        raise DocumentNotFound("no such document")
    with ydoc.held(document.pk) as copy:
        if copy is not None and copy.version > stored:
            copy = None  # it holds an update still committing (or rolling back): not this one
        copy = copy_at(document.pk, copy, version=stored, exact=False)
        update = copy.doc.get_update(state_vector or None)  # empty: the whole state
        server_vector = copy.doc.get_state()
        version = copy.version
        ydoc.keep(document.pk, copy)
    return {
        "update": ydoc.b64encode(update),
        "state_vector": ydoc.b64encode(server_vector),
        "cursor": cursor,
        "version": version,
    }
