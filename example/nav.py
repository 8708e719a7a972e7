"""The demo site's navigation: one list, extended by a line per feature.

Each feature page adds its entry here, e.g. ``NavItem("My jobs", "jobs")``; the base
template and the home page's feature cards are both drawn from this list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    # Shown on the home page's card for this feature.
    description: str = ""
    staff_only: bool = False


NAV: list[NavItem] = [
    NavItem("Home", "home"),
    NavItem("Live", "live", "Your own topic, live: events appear as they are published, "
            "and nothing is lost across a reconnect."),
    NavItem("My jobs", "jobs", "Start background jobs and watch them live: progress bars, "
            "retries, cancel and retry buttons, results."),
    NavItem("Rooms", "rooms", "Chat with history, live messages, who is here and who is "
            "typing; it keeps working through a network drop."),
    NavItem("Docs", "docs", "Write together: shared documents that several people edit at "
            "once, with everyone's cursor, offline edits merged on reconnect."),
    NavItem("Pipelines", "pipelines", "Upload a CSV and watch a Celery canvas process it: "
            "each step and chunk live, retries, cancel, a downloadable report."),
    NavItem("Schedules", "schedules", "Beat's schedules with their run history and "
            "missed-run alerts.", staff_only=True),
    NavItem("Ops", "ops", "Staff dashboard: throughput and failures live, stuck jobs, retry "
            "and cancel with an audit trail.", staff_only=True),
]
