"""Signals of the jobs app, for apps that react to it (jobs imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

#: Someone asked, through the jobs API, to act on a job. Sent with ``job``, ``actor`` (the
#: user), ``action`` ("cancel" or "retry"), ``outcome`` ("ok" or "refused") and ``detail``
#: (why it was refused, or ""). On success it is sent inside the action's transaction, so a
#: receiver's write (an audit record) commits or rolls back with the action itself.
job_action = Signal()

#: A job changed state (after the commit). Sent with ``job`` (its fields as the move left
#: them), ``state`` (the new one) and ``created`` (True for a new job's ``queued``). Sent
#: only while something listens: the ops app counts it for ``/metrics``.
job_moved = Signal()
