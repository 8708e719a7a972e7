"""The transactional outbox: state events that reach the hub whenever their change commits.

Call :func:`outbox_publish` inside the transaction that makes a change. The event is a
row of that transaction: it exists exactly when the change does. Right after the commit
the same process publishes it (the fast path) and deletes the row; whatever the fast path
could not send (Redis down, the process killed in between) the relay sends, oldest first
(``python -m taskstream.outbox``). Importing this module does not touch the app registry.
"""

from taskstream.outbox.write import outbox_publish, outbox_write, outbox_write_topics

__all__ = ["outbox_publish", "outbox_write", "outbox_write_topics"]
