"""The naive reference: a Channels consumer joining ``user_<id>`` and a ``group_send`` publisher.

Self-contained on purpose (it never imports taskstream): it is what a project hand-writes
from the usual guides, and what ``bench/hub.py`` measures the hub against.
"""
