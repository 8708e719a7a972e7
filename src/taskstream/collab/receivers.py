"""Access changes open sockets must hear of: a member removed or demoted to nothing, a
document made private or deleted. Whatever made the change (API, admin, shell), the hub
checks the subscriptions to the document again once it commits."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save

from taskstream.collab.models import Document, DocumentMember
from taskstream.hub import reauthorize


def _later(topic: str, user_ids: list[Any] | None) -> None:
    transaction.on_commit(lambda: reauthorize(topic=topic, user_ids=user_ids))


def _member_deleted(sender: Any, instance: DocumentMember, **kwargs: Any) -> None:
    _later(f"doc:{instance.document_id}", [instance.user_id])


def _before_document_save(sender: Any, instance: Document, **kwargs: Any) -> None:
    if instance.pk is not None and not instance.public_read:
        was_public = (
            Document.objects.filter(pk=instance.pk).values_list("public_read", flat=True).first()
        )
        instance._taskstream_closed = bool(was_public)  # type: ignore[attr-defined]


def _after_document_save(sender: Any, instance: Document, created: bool, **kwargs: Any) -> None:
    if instance.__dict__.pop("_taskstream_closed", False):
        _later(instance.topic, None)


def _document_deleted(sender: Any, instance: Document, **kwargs: Any) -> None:
    _later(instance.topic, None)


def connect() -> None:
    post_delete.connect(
        _member_deleted, sender=DocumentMember, dispatch_uid="taskstream.collab.member_deleted"
    )
    pre_save.connect(
        _before_document_save, sender=Document, dispatch_uid="taskstream.collab.pre_save"
    )
    post_save.connect(
        _after_document_save, sender=Document, dispatch_uid="taskstream.collab.post_save"
    )
    post_delete.connect(
        _document_deleted, sender=Document, dispatch_uid="taskstream.collab.deleted"
    )
