"""What feature apps hand to beat and to the periodic purge and digest.

Each app registers its own from ``AppConfig.ready()``: beat schedules, purge hooks
(delete what is older than a cutoff) and digest hooks (e-mail a daily digest). The
``periodic`` app and the scheduler read these registries, so they import no feature app,
and a feature app left out of INSTALLED_APPS simply registers nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: A beat entry (``{"task", "schedule", "options"?}``), built when beat starts so it reads
#: the settings of that moment.
ScheduleEntry = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class PurgeHook:
    name: str
    purge: Callable[..., int]  # purge(*, before: datetime) -> rows deleted
    order: int


_schedules: dict[str, ScheduleEntry] = {}
_purges: dict[str, PurgeHook] = {}
_digests: dict[str, Callable[..., int]] = {}


def register_schedule(name: str, entry: ScheduleEntry) -> None:
    """Run a task on beat under ``name`` (any scheduler; with django-celery-beat's rows
    created once, then the admin's to edit)."""
    _schedules[name] = entry


def register_purge(name: str, purge: Callable[..., int], *, order: int = 100) -> None:
    """Call ``purge(before=cutoff)`` from the periodic purge; lower ``order`` runs first.

    Its count is reported under ``name``.
    """
    _purges[name] = PurgeHook(name, purge, order)


def register_digest(name: str, digest: Callable[..., int]) -> None:
    """Call ``digest(now=...)`` from the daily digest; it returns how many it sent."""
    _digests[name] = digest


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Every registered schedule, built now."""
    return {name: entry() for name, entry in _schedules.items()}


def purge_hooks() -> list[PurgeHook]:
    return sorted(_purges.values(), key=lambda hook: hook.order)


def digest_hooks() -> dict[str, Callable[..., int]]:
    return dict(_digests)


def run_purges(*, before: datetime) -> dict[str, int]:
    return {hook.name: hook.purge(before=before) for hook in purge_hooks()}


def run_digests(*, now: datetime) -> int:
    return sum(digest(now=now) for digest in _digests.values())


def install_on_beat(sender: Any = None, **kwargs: Any) -> None:
    """``beat_init`` receiver: give the starting beat's scheduler the registered schedules
    it does not have yet (a project's own entry of the same name wins).

    ``beat_init`` is Celery's public hook on beat start, sent once the scheduler exists and
    before it sends anything; ``update_from_dict`` is the public Scheduler API every
    scheduler implements.
    """
    scheduler = getattr(sender, "scheduler", None)
    if scheduler is None:
        return
    missing = {name: entry for name, entry in beat_schedule().items()
               if name not in sender.app.conf.beat_schedule}
    if missing:
        scheduler.update_from_dict(missing)
