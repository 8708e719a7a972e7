"""Access changes that open sockets must hear of: a member left, a room closed or went away.

Whatever path made the change (the API, the admin, the shell), the hub checks the
subscriptions to the room again once the change is committed, and drops those that no
longer hold (see :func:`taskstream.hub.reauthorize`).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from taskstream.hub import reauthorize
from taskstream.rooms.models import Room


def _later(topic: str, user_ids: list[Any] | None) -> None:
    transaction.on_commit(lambda: reauthorize(topic=topic, user_ids=user_ids))


def _members_changed(sender: Any, instance: Any, action: str, reverse: bool,
                     pk_set: set[Any] | None, **kwargs: Any) -> None:
    if action not in ("post_remove", "post_clear"):
        return
    if reverse:  # user.taskstream_rooms.remove(room, ...): instance is the user
        for room in Room.objects.filter(pk__in=pk_set or ()):
            _later(room.topic, [instance.pk])
        return
    # post_clear has no pk_set: check everyone on the room.
    _later(instance.topic, sorted(pk_set) if action == "post_remove" and pk_set else None)


def _before_room_save(sender: Any, instance: Room, **kwargs: Any) -> None:
    if instance.pk is not None and instance.is_private:
        was_private = Room.objects.filter(pk=instance.pk).values_list(
            "is_private", flat=True).first()
        instance._taskstream_closed = was_private is False  # type: ignore[attr-defined]


def _after_room_save(sender: Any, instance: Room, created: bool, **kwargs: Any) -> None:
    if instance.__dict__.pop("_taskstream_closed", False):
        _later(instance.topic, None)


def _room_deleted(sender: Any, instance: Room, **kwargs: Any) -> None:
    _later(instance.topic, None)


def connect() -> None:
    m2m_changed.connect(_members_changed, sender=Room.members.through,
                        dispatch_uid="taskstream.rooms.members_changed")
    pre_save.connect(_before_room_save, sender=Room, dispatch_uid="taskstream.rooms.pre_save")
    post_save.connect(_after_room_save, sender=Room, dispatch_uid="taskstream.rooms.post_save")
    post_delete.connect(_room_deleted, sender=Room, dispatch_uid="taskstream.rooms.deleted")
