"""Signals of the jobs app, for apps that react to it (jobs imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

#: Someone asked, through the jobs API, to act on a job. Sent with ``job``, ``actor`` (the
#: user), ``action`` ("cancel" or "retry"), ``outcome`` ("ok" or "refused") and ``detail``
#: (why it was refused, or ""). On success it is sent inside the action's transaction, so a
#: receiver's write (an audit record) commits or rolls back with the action itself.
job_action = Signal()
