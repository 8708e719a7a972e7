"""Periodic tasks: run history, one beat of two sending, missed-run alerts on ``ops``."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.test import override_settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from taskstream.periodic.models import MissedRun, PeriodicRun
from taskstream.periodic.services import periodic_check_missed
from taskstream.periodic.tasks import CHECK_TASK, PURGE_TASK

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent.parent


class Beat:
    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "example", "beat", "--loglevel", "INFO",
                 "-S", "taskstream.periodic.scheduler:SingleBeatScheduler"],
                env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def leads(self) -> bool:
        return b"beat lock taken" in self.log.read_bytes()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def beats(server_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], Beat]]:
    started: list[Beat] = []
    tsjson = json.dumps({"PERIODIC_CHECK_INTERVAL": 1, "BEAT_LOCK_TTL": 1.5,
                         "PERIODIC_GRACE": 30})

    def start() -> Beat:
        beat = Beat({**os.environ, **server_env, "TASKSTREAM_JSON": tsjson}, tmp_path,
                    tmp_path / f"beat{len(started)}.log")
        started.append(beat)
        return beat

    yield start
    for beat in started:
        beat.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def starts(name: str) -> list[float]:
    return sorted(r.timestamp() for r in PeriodicRun.objects.filter(name=name)
                  .values_list("started_at", flat=True))


SENT = re.compile(rb"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] "
                  rb"Scheduler: Sending due task " + re.escape(CHECK_TASK.encode()))


def sends(*beats: Beat) -> list[list[float]]:
    """When each beat sent the check (its own log), in seconds."""
    out = []
    for beat in beats:
        out.append([datetime.strptime(m.decode(), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    for m in SENT.findall(beat.log.read_bytes())])
    return out


def spaced(times: list[float]) -> bool:
    # A schedule every second: two beats would each send every run, at the same moment.
    ordered = sorted(times)
    return all(b - a > 0.5 for a, b in itertools.pairwise(ordered))


@pytest.mark.usefixtures("celery_worker")
def test_two_beats_run_each_schedule_once_and_record_every_run(beats: Any,
                                                                tmp_path: Path) -> None:
    first, second = beats(), beats()
    wait_for(lambda: len(starts(CHECK_TASK)) >= 4, what="4 runs of the check")
    # One beat took the lock (under load a late renewal can hand it to the other later,
    # so both logs may end up saying so: the spacing below is what must hold).
    assert first.leads() or second.leads()
    # Under load a lock renewal can be late and the lead can move; what must hold is
    # that the two beats never send the same run: one send per second, never two.
    wait_for(lambda: sum(len(s) for s in sends(first, second)) >= 4, what="4 logged sends")
    by_first, by_second = sends(first, second)
    assert spaced(by_first + by_second)
    # The leader now: the one that sent last.
    leader, standby = ((first, second) if max(by_first, default=0) >= max(by_second, default=0)
                       else (second, first))

    run = PeriodicRun.objects.filter(name=CHECK_TASK, outcome="succeeded").first()
    assert run is not None and run.finished_at is not None and run.duration is not None
    assert run.task == CHECK_TASK and run.hostname and run.error == ""

    # A schedule added in the admin whose task fails: its runs are recorded as failed.
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="broken demo", task="demo.noop", interval=every,
                                kwargs=json.dumps({"nope": 1}))
    failed = wait_for(lambda: PeriodicRun.objects.filter(name="broken demo",
                                                         outcome="failed").first(),
                      what="a failed run")
    assert "TypeError" in failed.error and failed.finished_at is not None

    # The leader goes away: the standby takes over within the lock's lifetime.
    leader.stop()
    last = max(sends(leader)[0])

    def taken_over() -> list[float]:
        after = [t for t in sends(standby)[0] if t > last]
        return after if len(after) >= 3 else []

    after = wait_for(taken_over, what="sends after the take-over")
    by_leader, by_standby = sends(leader, standby)
    assert standby.leads() and spaced(by_leader + by_standby)
    wait_for(lambda: PeriodicRun.objects.filter(name=CHECK_TASK,
                                                started_at__gt=datetime.fromtimestamp(
                                                    min(after), tz=UTC)).exists(),
             what="a run sent by the new leader")
    assert not any(tmp_path.glob("celerybeat*")) and not any(ROOT.glob("celerybeat*"))


@pytest.fixture(autouse=True)
async def _close_thread_connections():  # type: ignore[no-untyped-def]
    yield
    await sync_to_async(connections.close_all)()


async def test_a_missed_run_alerts_on_ops_once(make_user: Any, session_cookie: Any,
                                               connect: Any, caplog: Any) -> None:
    staff = await sync_to_async(make_user)(is_staff=True)
    hub = await connect(cookie=await sync_to_async(session_cookie)(staff))
    await hub.subscribe("ops")

    def arrange() -> None:
        every, _ = IntervalSchedule.objects.get_or_create(every=2,
                                                          period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(name="nightly export", task=PURGE_TASK, interval=every)
        PeriodicRun.objects.create(name="nightly export", task=PURGE_TASK, task_id="t-1",
                                   started_at=timezone.now() - timedelta(seconds=10),
                                   outcome="succeeded")

    await sync_to_async(arrange)()
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "PERIODIC_GRACE": 1}), \
            caplog.at_level(logging.ERROR, logger="taskstream.periodic"):
        found = await sync_to_async(periodic_check_missed)()
        again = await sync_to_async(periodic_check_missed)()
    assert [m.name for m in found] == ["nightly export"] and again == []
    assert await MissedRun.objects.filter(name="nightly export").acount() == 1
    assert any("nightly export" in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records)
    event = await hub.expect("event", 10)
    assert event["topic"] == "ops" and event["event"] == "schedule.missed"
    assert event["data"]["name"] == "nightly export" and event["data"]["last_run_at"]


def test_on_time_schedules_raise_nothing() -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="hourly-ish", task=PURGE_TASK, interval=every)
    PeriodicRun.objects.create(name="hourly-ish", task=PURGE_TASK, task_id="t-2",
                               started_at=timezone.now() - timedelta(seconds=30))
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "PERIODIC_GRACE": 1}):
        assert periodic_check_missed() == []


def test_a_beat_starting_beside_the_leader_leaves_the_schedule_alone(beats: Any) -> None:
    """Two beats started together sent one run twice: the standby's start-up rewrote the
    schedule rows while the leader was sending, and the leader read them back."""
    from django_celery_beat.models import PeriodicTasks

    leader = beats()
    wait_for(leader.leads, what="the first beat to lead")
    wait_for(lambda: sends(leader)[0], what="a send by the leader")
    changed = PeriodicTasks.last_change()
    standby = beats()
    wait_for(lambda: b"beat: Starting..." in standby.log.read_bytes(), what="the standby's start")
    count = len(sends(leader)[0])
    wait_for(lambda: len(sends(leader)[0]) >= count + 2, what="two more sends by the leader")
    assert not standby.leads() and sends(standby) == [[]]
    assert PeriodicTasks.last_change() == changed
    assert spaced(sends(leader)[0])
