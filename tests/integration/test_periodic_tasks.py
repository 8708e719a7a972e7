"""The work of taskstream's own schedules: purge after the retention, the daily digest."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from taskstream.jobs.models import Job
from taskstream.notifications.models import Notification
from taskstream.periodic.models import PeriodicRun
from taskstream.periodic.services import periodic_digest, periodic_purge
from taskstream.periodic.tasks import PURGE_TASK as PURGE_TASK_NAME
from taskstream.periodic.tasks import schedules
from taskstream.pipelines import services as pipelines
from taskstream.pipelines import storage as files
from taskstream.pipelines.models import Upload

pytestmark = pytest.mark.django_db(transaction=True)


def test_purge_deletes_only_what_is_older_than_the_retention(make_user: Any) -> None:
    user = make_user()
    old = timezone.now() - timedelta(days=31)
    upload, _ = pipelines.upload_create(owner=user, file=io.BytesIO(b"a,b\n1,2\n"),
                                        original_name="old.csv")
    Upload.objects.filter(pk=upload.pk).update(created_at=old)
    fresh, _ = pipelines.upload_create(owner=user, file=io.BytesIO(b"a,b\n3,4\n"))
    done = Job.objects.create(owner=user, kind="demo.noop", state="succeeded", finished_at=old)
    running = Job.objects.create(owner=user, kind="demo.noop", state="running")
    Notification.objects.create(recipient=user, kind="x", title="read long ago", read_at=old)
    Notification.objects.create(recipient=user, kind="x", title="unread, old", created_at=old)
    PeriodicRun.objects.create(name="n", task="t", task_id="old", started_at=old)

    counts = periodic_purge()
    assert counts["uploads"] == 1 and counts["jobs"] == 1 and counts["notifications"] == 1
    assert counts["runs"] == 1
    assert list(Upload.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not files.pipeline_storage().exists(upload.stored_name)
    assert files.pipeline_storage().exists(fresh.stored_name)
    assert not Job.objects.filter(pk=done.pk).exists()
    assert Job.objects.filter(pk=running.pk).exists()
    assert list(Notification.objects.values_list("title", flat=True)) == ["unread, old"]
    files.pipeline_storage().delete(fresh.stored_name)


def test_daily_digest_mails_unread_notifications_once_a_day(make_user: Any) -> None:
    reader = make_user(email="reader@example.com")
    make_user(email="quiet@example.com")
    Notification.objects.create(recipient=reader, kind="report.ready", title="Report ready: a.csv",
                                url="/api/pipelines/x/report.html")
    Notification.objects.create(recipient=reader, kind="x", title="seen", read_at=timezone.now())
    assert periodic_digest() == 1
    assert periodic_digest() == 0  # the same day again: nothing more
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["reader@example.com"]
    assert "Report ready: a.csv" in message.body and "seen" not in message.body


def test_own_schedules_are_registered_with_headers_naming_them() -> None:
    entries = schedules()
    assert set(entries) == {"taskstream.periodic.purge", "taskstream.periodic.digest",
                            "taskstream.periodic.check_missed"}
    for name, entry in entries.items():
        assert entry["options"]["headers"]["periodic_task_name"] == name


def test_schedules_page_shows_runs_to_staff_only(make_user: Any) -> None:
    from django.test import Client
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(name="export", task="taskstream.periodic.purge", interval=every)
    PeriodicRun.objects.create(name="export", task="taskstream.periodic.purge", task_id="r1",
                               started_at=timezone.now(), duration=0.25, outcome="failed",
                               error="OSError: disk full")
    staff, client = make_user(is_staff=True), Client()
    client.force_login(staff)
    page = client.get("/schedules/").content.decode()
    assert "export" in page and "OSError: disk full" in page and "0.250 s" in page
    client.force_login(make_user())
    assert client.get("/schedules/").status_code == 403  # signed in, not staff


def test_own_schedules_are_created_once_then_left_to_the_admin() -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from example.celery import app
    from taskstream.periodic.scheduler import SingleBeatScheduler

    def start_beat() -> None:  # as a beat does, up to taking the lock
        scheduler = SingleBeatScheduler(app=app, lazy=True)
        scheduler.setup_schedule()
        assert scheduler.hold_lock()
        scheduler.close()

    start_beat()
    purge = PeriodicTask.objects.get(name="taskstream.periodic.purge")
    assert purge.interval.every == 3600 and purge.interval.period == "seconds"
    assert PeriodicTask.objects.get(name="taskstream.periodic.digest").crontab.hour == "7"
    # An admin makes it daily and disables the check; a restart keeps both.
    purge.interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="days")
    purge.save()
    PeriodicTask.objects.filter(name="taskstream.periodic.check_missed").update(enabled=False)
    start_beat()
    assert PeriodicTask.objects.get(name="taskstream.periodic.purge").interval.period == "days"
    assert not PeriodicTask.objects.get(name="taskstream.periodic.check_missed").enabled


def test_a_standby_beat_writes_no_schedule_rows() -> None:
    """A beat starting while another leads leaves the rows alone: rewriting them under the
    leader made it read them back and send a run twice."""
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    from example.celery import app
    from taskstream.periodic.scheduler import SingleBeatScheduler

    leader = SingleBeatScheduler(app=app, lazy=True)
    leader.setup_schedule()
    assert leader.hold_lock()
    try:
        rows = list(PeriodicTask.objects.order_by("name").values())
        changed = PeriodicTasks.last_change()
        standby = SingleBeatScheduler(app=app, lazy=True)
        standby.setup_schedule()
        standby.update_from_dict({"extra": {"task": PURGE_TASK_NAME, "schedule": 60.0}})
        assert not standby.hold_lock()
        standby.close()
        assert list(PeriodicTask.objects.order_by("name").values()) == rows
        assert PeriodicTasks.last_change() == changed
    finally:
        leader.close()


def test_a_leader_that_lost_its_lock_before_a_send_sends_nothing() -> None:
    """A leader paused between its lock check and a send (GC, SIGSTOP, a slow disk) for
    longer than the lock lives resumes after another beat took over: it must not send."""
    from celery.signals import before_task_publish
    from django.db import connection
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from example.celery import app
    from taskstream.hub.redis import sync_client
    from taskstream.periodic.scheduler import SingleBeatScheduler, lock_key
    from taskstream.periodic.tasks import CHECK_TASK

    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    # Due now; to this run's own queue, and expired by the time any worker reads it.
    PeriodicTask.objects.create(name="probe", task=CHECK_TASK, interval=every,
                                expire_seconds=1,
                                last_run_at=timezone.now() - timedelta(hours=1))
    sent: list[str] = []

    def on_publish(sender: Any = None, **kwargs: Any) -> None:
        sent.append(str(sender))

    leader, standby = SingleBeatScheduler(app=app, lazy=True), SingleBeatScheduler(app=app,
                                                                                  lazy=True)
    leader.setup_schedule()
    standby.setup_schedule()
    assert leader.hold_lock() and not standby.hold_lock()
    paused = False

    def pause(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        # The leader's first query of its tick, after its lock check: it stalls here past
        # the lock's lifetime; the lock expires and the standby takes it.
        nonlocal paused
        if not paused:
            paused = True
            sync_client().delete(lock_key())
            assert standby.hold_lock()
        return execute(sql, params, many, context)

    before_task_publish.connect(on_publish, weak=False)
    try:
        with connection.execute_wrapper(pause):
            leader.tick()
        assert paused and sent == []
        standby.tick()  # the new leader sends the run, once
        assert sent == [CHECK_TASK]
    finally:
        before_task_publish.disconnect(on_publish)
        leader.close()
        standby.close()


def test_any_scheduler_gets_the_schedules_apps_registered(tmp_path: Any) -> None:
    """Celery's own PersistentScheduler too: the apps' schedules arrive on beat_init."""
    from celery.beat import PersistentScheduler, Service
    from celery.signals import beat_init

    from example.celery import app

    service = Service(app=app, scheduler_cls=PersistentScheduler,
                      schedule_filename=str(tmp_path / "celerybeat-schedule"))
    try:
        beat_init.send(sender=service)
        names = set(service.scheduler.schedule)
        assert {"taskstream.jobs.reap", "taskstream.periodic.purge",
                "taskstream.periodic.digest", "taskstream.periodic.check_missed"} <= names
        purge = service.scheduler.schedule["taskstream.periodic.purge"]
        assert purge.options["headers"]["periodic_task_name"] == "taskstream.periodic.purge"
    finally:
        service.scheduler.close()


def test_a_schedule_change_during_a_tick_does_not_send_a_run_twice() -> None:
    """A change noticed in the middle of a tick (an admin edit, another beat taking over)
    made django-celery-beat rebuild its heap from the entry it had just sent, with its old
    run time: the run went out again on the next tick."""
    from celery.signals import before_task_publish
    from django.db import connection
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

    from example.celery import app
    from taskstream.periodic.scheduler import SingleBeatScheduler
    from taskstream.periodic.tasks import CHECK_TASK

    every, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="probe", task=CHECK_TASK, interval=every,
                                expire_seconds=1,
                                last_run_at=timezone.now() - timedelta(hours=1))
    sent: list[str] = []

    def on_publish(sender: Any = None, headers: Any = None, **kwargs: Any) -> None:
        sent.append(str((headers or {}).get("periodic_task_name", sender)))

    beat = SingleBeatScheduler(app=app, lazy=True)
    beat.setup_schedule()
    assert beat.hold_lock()
    edited = False

    def edit_meanwhile(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal edited
        result = execute(sql, params, many, context)
        if not edited and "django_celery_beat_periodictask" in sql and "SELECT" in sql:
            edited = True  # right after the tick read the schedule, an admin saves a row
            PeriodicTasks.update_changed()
        return result

    before_task_publish.connect(on_publish, weak=False)
    try:
        with connection.execute_wrapper(edit_meanwhile):
            beat.tick()
        for _ in range(3):
            beat.tick()
        assert edited and sent.count("probe") == 1, sent
    finally:
        before_task_publish.disconnect(on_publish)
        beat.close()
