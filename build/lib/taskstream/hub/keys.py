"""Redis key and channel names, in one place so every process agrees on them."""

from __future__ import annotations

from taskstream.conf import conf


def epoch_key() -> str:
    """The log epoch: a random token that changes when Redis loses its data."""
    return f"{conf.KEY_PREFIX}epoch"


def log_key(topic: str) -> str:
    return f"{conf.KEY_PREFIX}log:{topic}"


def channel(topic: str) -> str:
    return f"{conf.KEY_PREFIX}ch:{topic}"


def sent_keys_key(topic: str) -> str:
    """The keys of the outbox events recently logged on ``topic`` (see ``log.PUBLISH_LUA``)."""
    return f"{conf.KEY_PREFIX}keys:{topic}"
