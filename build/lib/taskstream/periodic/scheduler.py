"""A DatabaseScheduler of which only one beat process at a time sends anything.

Run ``celery beat -S taskstream.periodic.scheduler:SingleBeatScheduler`` on as many hosts
as you like: each tick, a beat holds (or renews) one Redis lock for BEAT_LOCK_TTL
seconds; the others stand by and take over within that time once the holder is gone.

Two rules keep two beats from sending one run twice:

* a standby writes nothing: django-celery-beat writes the schedule rows at start-up, and a
  standby doing so while the leader was sending made the leader read its rows back and
  send the same run again; here the rows are written by whichever beat takes the lock,
  when it takes it;
* the leader checks that it still holds the lock right before each send (its token is the
  fencing token): a leader paused past the lock's lifetime (GC, SIGSTOP, a slow disk)
  sends nothing once it resumes, since another beat may have sent that run meanwhile.

taskstream's own schedules (and those feature apps register) are created from the settings
the first time; after that their rows are the admin's to edit (interval, enabled, …).
"""

from __future__ import annotations

import logging
from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler
from redis.exceptions import LockError
from redis.lock import Lock

from taskstream.conf import conf
from taskstream.housekeeping import beat_schedule
from taskstream.hub.redis import sync_client

logger = logging.getLogger("taskstream.periodic")


def lock_key() -> str:
    return f"{conf.KEY_PREFIX}beat:lock"


class SingleBeatScheduler(DatabaseScheduler):
    """django-celery-beat's DatabaseScheduler behind a Redis leader lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.leader = False
        self._standing_by_logged = False
        # Schedule rows to write once this beat leads (see the module's docstring).
        self._pending: dict[str, Any] = {}
        self._lock = Lock(sync_client(), lock_key(), timeout=conf.BEAT_LOCK_TTL,
                          blocking=False, thread_local=False)
        super().__init__(*args, **kwargs)
        # The leader writes each run's time at once, so a successor starts from it.
        self.sync_every_tasks = 1

    # -- start-up: rows are the leader's to write ------------------------------------------

    def setup_schedule(self) -> None:
        if self.leader:
            super().setup_schedule()
        else:
            self._pending.update(self.app.conf.beat_schedule)

    def install_default_entries(self, data: Any) -> None:
        if self.leader:
            super().install_default_entries(data)

    def update_from_dict(self, mapping: dict[str, Any]) -> None:
        """Write rows only while leading; create registered schedules once (after that the
        admin's edits stand: DatabaseScheduler would write the code's interval over the row
        at every start)."""
        if not self.leader:
            self._pending.update(mapping)
            return
        from django_celery_beat.models import PeriodicTask

        own = set(beat_schedule()) & set(mapping)
        existing = set(PeriodicTask.objects.filter(name__in=own)
                       .values_list("name", flat=True))
        super().update_from_dict({name: entry for name, entry in mapping.items()
                                  if name not in existing})

    def _take_lead(self) -> None:
        logger.info("beat lock taken: this beat sends the schedule")
        self.leader = True
        self._standing_by_logged = False
        pending = {**self.app.conf.beat_schedule, **beat_schedule(), **self._pending}
        self._pending = {}
        super().install_default_entries(None)
        self.update_from_dict(pending)
        # Read the schedule fresh: the last holder may have run entries since. Our own writes
        # just now are not a change to read again in the middle of the first tick.
        self._initial_read = True
        self._heap = None
        self._heap_invalidated = False
        self._last_timestamp = self.Changes.last_change()

    def _stand_by(self, why: str) -> None:
        if self.leader:
            logger.warning("beat lock lost (%s): this beat stands by", why)
        elif not self._standing_by_logged:
            logger.info("beat lock held by another beat: this beat stands by")
        self._standing_by_logged = True
        self.leader = False
        self._dirty.clear()  # runs it reserved but did not send are not its to record

    # -- the lock --------------------------------------------------------------------------

    def hold_lock(self) -> bool:
        """Take or renew the lock (writing the schedule rows on taking it); True while this
        beat leads."""
        try:
            if self.leader:
                self._lock.extend(conf.BEAT_LOCK_TTL, replace_ttl=True)
            elif not self._lock.acquire(blocking=False):
                self._stand_by("held by another beat")
                return False
        except LockError:
            self._stand_by("expired")
            return False
        except Exception:
            logger.exception("beat lock: Redis unreachable; not sending")
            self._stand_by("Redis unreachable")
            return False
        if not self.leader:
            self._take_lead()
        return True

    def _still_leads(self) -> bool:
        """The fencing check before a send: is the lock still ours (atomic, in Redis)?"""
        try:
            if self._lock.owned():
                return True
        except Exception:
            logger.exception("beat lock: Redis unreachable; not sending")
        self._stand_by("found before a send")
        return False

    # -- the loop --------------------------------------------------------------------------

    def tick(self, *args: Any, **kwargs: Any) -> float:
        standby = conf.BEAT_LOCK_TTL / 3
        if not self.hold_lock():
            return standby
        interval = float(super().tick(*args, **kwargs))
        return min(interval, standby)

    def reserve(self, entry: Any) -> Any:
        new_entry = super().reserve(entry)
        # DatabaseScheduler keeps the sent entry (with its old run time) in the schedule;
        # a heap rebuilt from it on the next tick (after a schedule change was noticed)
        # found that run due again and sent it twice, ~0.25 s apart.
        if self._schedule is not None and entry.name in self._schedule:
            self._schedule[entry.name] = new_entry
        return new_entry

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        if not self._still_leads():
            logger.warning("beat lock lost before sending %s: not sent", entry.name)
            return
        super().apply_entry(entry, producer=producer)

    def close(self) -> None:
        super().close()
        if self.leader:
            try:
                self._lock.release()
            except LockError:
                pass  # expired already: another beat may hold it now
            except Exception:
                logger.exception("beat lock: could not release")
        self.leader = False
