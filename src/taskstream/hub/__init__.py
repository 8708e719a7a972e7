"""The realtime hub: publish events to topics; register who may read them.

Importing this module does not touch the app registry.
"""

from taskstream.hub.publish import apublish, publish
from taskstream.hub.topics import Publication, register_topic, resolve, unregister_topic

__all__ = ["Publication", "apublish", "publish", "register_topic", "resolve", "unregister_topic"]
