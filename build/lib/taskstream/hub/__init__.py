"""The realtime hub: publish events to topics; register who may read them.

Importing this module does not touch the app registry.
"""

from taskstream.hub.publish import apublish, publish
from taskstream.hub.revocation import reauthorize, recheck_user, revoke_session
from taskstream.hub.topics import Publication, register_topic, resolve, unregister_topic

__all__ = ["Publication", "apublish", "publish", "reauthorize", "recheck_user", "register_topic",
           "resolve", "revoke_session", "unregister_topic"]
