"""Failures of the ops app."""

from __future__ import annotations

from taskstream.exceptions import TaskstreamError


class StaffOnly(TaskstreamError):
    """Only active staff may use the ops pages, API and actions."""

    code = "forbidden"
