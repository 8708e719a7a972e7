"""Writes: rooms, membership, messages. Every message path goes through ``message_body_clean``,
the rate limit and the store before anything is broadcast."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from taskstream.conf import conf
from taskstream.hub.database import db_call
from taskstream.outbox import outbox_publish
from taskstream.rooms.exceptions import (
    MessageInvalid,
    MessageRateLimited,
    MessageTooLong,
    NotAMember,
    RoomError,
)
from taskstream.rooms.models import Message, Room
from taskstream.rooms.ratelimit import amessage_slot_take, message_slot_take
from taskstream.rooms.selectors import aroom_ref, message_payload, room_may_read

logger = logging.getLogger("taskstream.rooms")


def message_body_clean(body: object) -> str:
    """The stored form of a message body, or ``MessageInvalid`` / ``MessageTooLong``."""
    if not isinstance(body, str):
        raise MessageInvalid("body must be a string")
    text = body.strip()
    if not text:
        raise MessageInvalid("a message cannot be empty")
    if "\x00" in text:
        raise MessageInvalid("a message cannot contain NUL characters")
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate from a JSON \ud800 escape
        raise MessageInvalid("a message must be valid Unicode text") from None
    if len(text) > conf.ROOM_MESSAGE_MAX_LENGTH:
        raise MessageTooLong(f"a message is at most {conf.ROOM_MESSAGE_MAX_LENGTH} characters; "
                             f"this one has {len(text)}")
    return text


def _rate_limited(wait: float) -> MessageRateLimited:
    return MessageRateLimited(
        f"at most {conf.ROOM_MESSAGE_RATE} messages per {conf.ROOM_MESSAGE_RATE_WINDOW:g} s; "
        f"retry in {wait:.1f} s", retry_after=wait)


def _slot_take(user_id: int) -> float:
    try:
        return message_slot_take(user_id)
    except RedisError as exc:
        # The limit lives in Redis. While Redis is down the message is still stored and
        # its event waits in the outbox: refusing it would lose what the user typed.
        logger.warning("rooms: rate limit unavailable, message let through (%s)", exc)
        return 0.0


def room_create(*, slug: str, name: str, creator: Any, is_private: bool = False,
                members: list[Any] | tuple[Any, ...] = ()) -> Room:
    """Create a room; the creator is its first member."""
    room = Room(slug=slug, name=name.strip() or slug, is_private=is_private, created_by=creator)
    try:
        room.full_clean()
    except ValidationError as exc:
        raise RoomError("; ".join(f"{k}: {' '.join(v)}"
                                  for k, v in exc.message_dict.items())) from exc
    with transaction.atomic():
        room.save()
        room.members.add(creator, *members)
    return room


def room_member_add(*, room: Room, by: Any, username: str) -> Any:
    """Add a member; only the room's creator or staff may."""
    if not (by.is_staff or (room.created_by_id is not None and room.created_by_id == by.pk)):
        raise NotAMember("only the room's creator or staff may add members")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise RoomError(f"no active user {username!r}")
    room.members.add(user)
    return user


def room_member_remove(*, room: Room, by: Any, username: str) -> None:
    """Remove a member: the room's creator or staff may remove anyone, a member themself.

    Sockets of the removed member drop the room once this commits (rooms/receivers.py).
    """
    is_admin = by.is_staff or (room.created_by_id is not None and room.created_by_id == by.pk)
    if not (is_admin or by.get_username() == username):
        raise NotAMember("only the room's creator or staff may remove other members")
    user = room.members.filter(username=username).first()
    if user is None:
        raise RoomError(f"{username!r} is not a member of this room")
    room.members.remove(user)


def message_create(*, room: Room, author: Any, body: object) -> Message:
    """Validate, rate-limit, store, then broadcast ``message.created`` once committed."""
    if not room_may_read(room=room, user=author):
        raise NotAMember("not a member of this room")
    text = message_body_clean(body)
    wait = _slot_take(author.pk)
    if wait:
        raise _rate_limited(wait)
    with transaction.atomic():
        message = Message.objects.create(room=room, author=author, body=text)
        outbox_publish(topic=room.topic, event="message.created",
                       data=message_payload(message))
    return message


async def amessage_create(*, slug: str, author: Any, body: object) -> dict[str, Any]:
    """The hub path of :func:`message_create`: same checks, stored, and the payload is
    returned for the hub to broadcast (the caller already checked read access)."""
    text = message_body_clean(body)
    wait = await amessage_slot_take(author.pk)
    if wait:
        raise _rate_limited(wait)
    for fresh in (False, True):
        ref = await aroom_ref(slug, fresh=fresh)
        if ref is None:
            break
        payload = await db_call(_message_store, room_id=ref[0], slug=slug, author=author,
                                text=text)
        if payload is not None:
            return payload
        # The room we remembered is gone (deleted, perhaps replaced): look again, once.
    raise NotAMember("no such room")


def _message_store(*, room_id: int, slug: str, author: Any, text: str) -> dict[str, Any] | None:
    try:
        with transaction.atomic():
            message = Message.objects.create(room_id=room_id, author=author, body=text)
    except IntegrityError:
        return None  # no room with that id any more
    return message_payload(message, slug=slug)


def _own_message(message: Message, user: Any, *, staff_too: bool) -> None:
    if message.deleted_at is not None:
        raise RoomError("this message was deleted")
    if message.author_id != user.pk and not (staff_too and user.is_staff):
        raise NotAMember("only the author may change this message")


def message_edit(*, message: Message, user: Any, body: object) -> Message:
    """Replace the body (author only); broadcasts ``message.edited``."""
    _own_message(message, user, staff_too=False)
    message.body = message_body_clean(body)
    message.edited_at = timezone.now()
    with transaction.atomic():
        message.save(update_fields=["body", "edited_at"])
        outbox_publish(topic=message.room.topic, event="message.edited",
                       data=message_payload(message))
    return message


def message_delete(*, message: Message, user: Any) -> Message:
    """Soft-delete (author or staff): the row stays, the body is hidden; ``message.deleted``."""
    _own_message(message, user, staff_too=True)
    message.deleted_at = timezone.now()
    with transaction.atomic():
        message.save(update_fields=["deleted_at"])
        outbox_publish(topic=message.room.topic, event="message.deleted",
                       data=message_payload(message))
    return message
