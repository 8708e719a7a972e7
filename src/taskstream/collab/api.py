"""HTTP API of shared documents: list, create, share, and sync (state vector → what the
client lacks, plus the hub cursor to continue from). Session auth; CSRF on writes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from taskstream.api import ApiError
from taskstream.collab import selectors, services, ydoc
from taskstream.collab.exceptions import DocumentNotFound, InvalidInput
from taskstream.collab.models import Document, Role

router = Router(tags=["collab"])

class MemberOut(Schema):
    username: str
    role: str


class DocumentOut(Schema):
    id: str
    title: str
    role: str = Field(..., description="yours: owner, editor or viewer")
    owner: str
    public_read: bool
    version: int
    topic: str = Field(..., description="the hub topic of its updates: `doc:<id>`")
    created_at: datetime
    updated_at: datetime


class DocumentDetailOut(DocumentOut):
    members: list[MemberOut]


class DocumentIn(Schema):
    title: str = Field(..., min_length=1, max_length=200)
    public_read: bool = False


class MemberIn(Schema):
    username: str = Field(..., max_length=150)
    role: str = Field(Role.EDITOR.value, description="editor or viewer")


class SyncIn(Schema):
    state_vector: str = Field(
        "", max_length=1_000_000, description="base64 Yjs state vector; empty: the whole state"
    )


class SyncOut(Schema):
    update: str = Field(..., description="base64 Yjs v1 update: what the client lacks")
    state_vector: str = Field(
        ...,
        description="base64: the server's state vector (send it what this says the server lacks)",
    )
    cursor: str = Field(..., description="subscribe to `doc:<id>` with `since` this")
    version: int


def _document(request: HttpRequest, document_id: uuid.UUID) -> tuple[Document, str]:
    role = selectors.document_role(document_id=document_id, user=request.user)
    document = (
        Document.objects.select_related("owner").defer("snapshot").filter(pk=document_id).first()
        if role is not None
        else None
    )
    # A document the user may not read answers as if it did not exist.
    if document is None or role is None:
        raise ApiError(404, "not_found", "no such document")
    return document, role


@router.get("/collab/docs/", response=list[DocumentOut])
def docs_list(request: HttpRequest) -> list[dict[str, Any]]:
    """Documents you may read: yours, shared with you, and public ones."""
    return [
        selectors.document_payload(document, role=role, members=False)
        for document, role in selectors.document_list(user=request.user)
    ]


@router.post("/collab/docs/", response={201: DocumentDetailOut})
def docs_create(request: HttpRequest, payload: DocumentIn) -> Status[dict[str, Any]]:
    """Create a document; you own it."""
    document = services.document_create(
        owner=request.user, title=payload.title, public_read=payload.public_read
    )
    return Status(201, selectors.document_payload(document, role=selectors.OWNER))


@router.get("/collab/docs/{document_id}/", response=DocumentDetailOut)
def docs_detail(request: HttpRequest, document_id: uuid.UUID) -> dict[str, Any]:
    document, role = _document(request, document_id)
    return selectors.document_payload(document, role=role)


@router.post("/collab/docs/{document_id}/members/", response={201: MemberOut})
def docs_member_set(
    request: HttpRequest, document_id: uuid.UUID, payload: MemberIn
) -> Status[dict[str, Any]]:
    """Share with a user as editor or viewer, or change their role (the owner only)."""
    document, _role = _document(request, document_id)
    user = services.document_member_set(
        document=document, by=request.user, username=payload.username, role=payload.role
    )
    return Status(201, {"username": user.get_username(), "role": payload.role})


@router.delete("/collab/docs/{document_id}/members/{username}/", response={204: None})
def docs_member_remove(request: HttpRequest, document_id: uuid.UUID, username: str) -> Status[None]:
    """Unshare (the owner), or leave (your own name). Their open sockets stop receiving the
    document at once (a ``forbidden`` error frame)."""
    document, _role = _document(request, document_id)
    services.document_member_remove(document=document, by=request.user, username=username)
    return Status(204, None)


@router.post("/collab/docs/{document_id}/sync/", response=SyncOut)
def docs_sync(request: HttpRequest, document_id: uuid.UUID, payload: SyncIn) -> dict[str, Any]:
    """Yjs sync step: send your state vector, get what you lack and the server's state
    vector, then subscribe to `doc:<id>` with `since=cursor` and publish what the server
    lacks as an `update`. Also the answer to a `gap`."""
    document, _role = _document(request, document_id)
    state_vector = ydoc.b64decode(payload.state_vector, field="state_vector")
    try:
        ydoc.decode_state_vector(state_vector)
    except ValueError as exc:
        raise InvalidInput(f"state_vector is not a Yjs state vector: {exc}") from None
    try:
        return selectors.document_sync(document=document, state_vector=state_vector)
    except DocumentNotFound:
        raise ApiError(404, "not_found", "no such document") from None
