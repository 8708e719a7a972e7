"""The work of taskstream's schedules: purge, daily digest, and the missed-run check."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from taskstream.conf import conf
from taskstream.housekeeping import run_digests, run_purges
from taskstream.hub import publish
from taskstream.periodic.models import MissedRun, PeriodicRun, ScheduleWatch

logger = logging.getLogger("taskstream.periodic")

MISSED_EVENT = "schedule.missed"


def _hub_log_trim(max_age: float) -> int:
    """Trim every topic's log to LOG_MAX_AGE, quiet topics included (publish trims only
    the topic it writes to)."""
    from taskstream.hub.redis import sync_client

    client = sync_client()
    min_id = f"{int((time.time() - max_age) * 1000)}-0"
    trimmed = 0
    for key in client.scan_iter(match=f"{conf.KEY_PREFIX}log:*", count=500, _type="stream"):
        trimmed += int(client.xtrim(key, minid=min_id))
    return trimmed


def periodic_purge(*, now: datetime | None = None) -> dict[str, int]:
    """Delete what is older than RETENTION_DAYS: each installed app's own (its purge hook:
    finished jobs, read notifications, uploads with their pipelines and files…), run
    history; trim old hub events."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=conf.RETENTION_DAYS)
    counts = run_purges(before=cutoff)
    counts["runs"] = PeriodicRun.objects.filter(started_at__lt=cutoff).delete()[0]
    counts["missed"] = MissedRun.objects.filter(detected_at__lt=cutoff).delete()[0]
    counts["events"] = _hub_log_trim(conf.LOG_MAX_AGE)
    logger.info("purge: %s", counts)
    return counts


def periodic_digest(*, now: datetime | None = None) -> int:
    """Send the daily digests (each app's digest hook; notifications mails each user with
    unread notifications of the last day, once a day). Returns how many were sent."""
    return run_digests(now=now or timezone.now())


def _last_run(name: str) -> datetime | None:
    return (PeriodicRun.objects.filter(name=name).order_by("-started_at")
            .values_list("started_at", flat=True).first())


def _first_seen(name: str, now: datetime) -> datetime:
    watch, _ = ScheduleWatch.objects.get_or_create(name=name, defaults={"first_seen_at": now})
    return watch.first_seen_at


def _due(schedule: Any, since: datetime, now: datetime) -> datetime:
    """The schedule's first run time after ``since``: exact, so each due time alerts once."""
    from celery.schedules import crontab

    if isinstance(schedule, crontab):
        start, delta, _now = schedule.remaining_delta(since)
        due = start + delta
    elif getattr(schedule, "run_every", None) is not None:
        due = since + schedule.run_every
    else:  # solar: an estimate, whole seconds
        due = now + schedule.remaining_estimate(since)
    return due.replace(microsecond=0)


def periodic_check_missed(*, now: datetime | None = None) -> list[MissedRun]:
    """Alert on every enabled schedule that has not run by its due time + PERIODIC_GRACE.

    Due: the schedule's next time after its last recorded run (or after the checker
    first saw it). Each missed due time alerts once: ``schedule.missed`` on ``ops``, and
    an ERROR in the log.
    """
    from django_celery_beat.models import PeriodicTask

    now = now or timezone.now()
    grace = timedelta(seconds=conf.PERIODIC_GRACE)
    missed: list[MissedRun] = []
    for entry in PeriodicTask.objects.filter(enabled=True, one_off=False, clocked=None):
        try:
            schedule = entry.schedule
        except Exception:
            logger.warning("schedule %s has no usable schedule", entry.name)
            continue
        last = _last_run(entry.name)
        since = last or _first_seen(entry.name, now)
        if entry.start_time and entry.start_time > since:
            since = entry.start_time
        due = _due(schedule, since, now)
        if now <= due + grace:
            continue
        try:
            with transaction.atomic():
                alert = MissedRun.objects.create(name=entry.name, due_at=due, last_run_at=last)
        except IntegrityError:
            continue  # alerted already
        missed.append(alert)
        logger.error("periodic task %r (%s) missed its run due at %s; last run: %s",
                     entry.name, entry.task, due.isoformat(), last.isoformat() if last else "never")
        try:
            publish("ops", MISSED_EVENT, missed_payload(alert, task=entry.task))
        except Exception:
            logger.exception("could not publish the missed run of %s", entry.name)
    return missed


def missed_payload(alert: MissedRun, *, task: str) -> dict[str, Any]:
    return {"name": alert.name, "task": task, "due_at": alert.due_at.isoformat(),
            "last_run_at": alert.last_run_at.isoformat() if alert.last_run_at else None,
            "detected_at": alert.detected_at.isoformat()}
