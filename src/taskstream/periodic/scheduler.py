"""A DatabaseScheduler of which only one beat process at a time sends anything.

Run ``celery beat -S taskstream.periodic.scheduler:SingleBeatScheduler`` on as many hosts
as you like: each tick, a beat holds (or renews) one Redis lock for BEAT_LOCK_TTL
seconds; the others stand by and take over within that time once the holder is gone.
Two beats never both send a schedule's run.

taskstream's own schedules are created from the settings the first time; after that
their rows are the admin's to edit (interval, enabled, …).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler

from taskstream.conf import conf
from taskstream.hub.redis import sync_client

logger = logging.getLogger("taskstream.periodic")

# Renew only a lock we hold; answer 1 if we hold it now.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lock_key() -> str:
    return f"{conf.KEY_PREFIX}beat:lock"


class SingleBeatScheduler(DatabaseScheduler):
    """django-celery-beat's DatabaseScheduler behind a Redis leader lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.token = uuid.uuid4().hex
        self.leader = False
        super().__init__(*args, **kwargs)
        # The leader writes each run's time at once, so a successor starts from it.
        self.sync_every_tasks = 1

    def update_from_dict(self, mapping: dict[str, Any]) -> None:
        """Create taskstream's own schedules once; after that the admin's edits stand.

        (DatabaseScheduler would write the code's interval over the row at every start.)
        """
        from django_celery_beat.models import PeriodicTask

        from taskstream.periodic.tasks import own_schedule_names

        own = own_schedule_names() & set(mapping)
        existing = set(PeriodicTask.objects.filter(name__in=own)
                       .values_list("name", flat=True))
        super().update_from_dict({name: entry for name, entry in mapping.items()
                                  if name not in existing})

    def _hold(self) -> bool:
        ttl_ms = int(conf.BEAT_LOCK_TTL * 1000)
        try:
            held = bool(sync_client().eval(_RENEW, 1, lock_key(), self.token, ttl_ms))
        except Exception:
            logger.exception("beat lock: Redis unreachable; not sending")
            held = False
        if held and not self.leader:
            logger.info("beat lock taken: this beat sends the schedule")
            # Read the schedule fresh: the last holder may have run entries since.
            self._initial_read = True
            self._heap = None
        elif self.leader and not held:
            logger.warning("beat lock lost: this beat stands by")
        self.leader = held
        return held

    def tick(self, *args: Any, **kwargs: Any) -> float:
        standby = conf.BEAT_LOCK_TTL / 3
        if not self._hold():
            return standby
        interval = float(super().tick(*args, **kwargs))
        return min(interval, standby)

    def close(self) -> None:
        super().close()
        if self.leader:
            try:
                sync_client().eval(_RELEASE, 1, lock_key(), self.token)
            except Exception:
                logger.exception("beat lock: could not release")
