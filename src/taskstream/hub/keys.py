"""Redis key and channel names, in one place so every process agrees on them.

Every key and the channel of a topic carry the topic as a hash tag (``{user:7}``): on a
Redis Cluster they all live in one hash slot, so the publish and replay scripts, which
touch several of them, stay single atomic steps on one node. On a single Redis the
braces are just characters. Topics cannot contain braces (``protocol.TOPIC_RE``) and
``KEY_PREFIX`` may not either (check ``taskstream.E015``), so the tag is always the topic.
"""

from __future__ import annotations

from taskstream.conf import conf


def _tag(topic: str) -> str:
    return "{" + topic + "}"


def log_key(topic: str) -> str:
    """The topic's stream of events."""
    return f"{conf.KEY_PREFIX}log:{_tag(topic)}"


def head_key(topic: str) -> str:
    """``<epoch> <last id> [<ms of the last age trim>]``: the topic's log epoch, the id of
    its newest entry (and when the publish script last trimmed the log by age).

    Written by the publish script with the log, living as long as the log: the epoch is
    per topic (a new one when Redis lost the topic's data, which turns old cursors into a
    ``gap``), and the last id spares each publish a read of the stream.
    """
    return f"{conf.KEY_PREFIX}head:{_tag(topic)}"


def channel(topic: str) -> str:
    return f"{conf.KEY_PREFIX}ch:{_tag(topic)}"


def channel_topic(name: str) -> str:
    """The topic of a :func:`channel` name (the fan-out reads it from each message)."""
    return name[len(conf.KEY_PREFIX) + 4:-1]


def sent_keys_key(topic: str) -> str:
    """The keys of the outbox events recently logged on ``topic`` (see ``log.PUBLISH_LUA``)."""
    return f"{conf.KEY_PREFIX}keys:{_tag(topic)}"
