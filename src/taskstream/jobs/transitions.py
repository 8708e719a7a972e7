"""The only writer of ``Job.state``: one conditional UPDATE per move, built from the table.

:func:`move` turns a transition of :mod:`taskstream.jobs.states` into ``UPDATE … SET state =
<target> WHERE id = … AND state IN <sources(target)>`` (narrowed by the caller's guards: the
run's token, the message's task id, a stale heartbeat). Two racing writers cannot both win,
so a job that ran twice still completes once. Rules that hold for every move live here and
nowhere else: ``finished_at`` is set exactly when the target is terminal, every entry into
``running`` is a new attempt, and the move's event is written to the outbox in the move's
own transaction (:mod:`taskstream.outbox`): published right after the commit, or by the
relay when Redis is down, so a committed state change always reaches the browser.

The statements are written out, not ORM-built: a no-op job costs its worker a few
milliseconds, and building its UPDATEs with the ORM took a third of that, where SQLite runs
each statement in tens of microseconds. Every value is prepared by the model's own field (so
dates, time zones, UUIDs and JSON are stored exactly as the ORM stores them) and goes through
Django's cursor (query logging and wrappers still see it). The moved row comes back in the
same statement (``UPDATE … RETURNING``) on PostgreSQL and SQLite ≥ 3.35; elsewhere it is read
right after.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from taskstream.jobs import events
from taskstream.jobs.exceptions import IllegalTransition, OwnerBusy
from taskstream.jobs.models import Job
from taskstream.jobs.signals import job_moved
from taskstream.jobs.states import TERMINAL, State, sources

_FIELDS = {field.attname: field for field in Job._meta.concrete_fields}
_ATTNAMES = list(_FIELDS)
_CACHE_ATTR = "_taskstream_job_sql"

logger = logging.getLogger("taskstream.jobs")

# Key space of the PostgreSQL advisory lock that orders one owner's claims (any constant;
# the second key is a hash of the owner's id).
_OWNER_LOCK_SPACE = 0x7453

# The event each move announces (a failed or cancelled job queued again is "retrying").
EVENT_OF: dict[State, str] = {
    State.QUEUED: events.RETRYING,
    State.RUNNING: events.STARTED,
    State.RETRYING: events.RETRYING,
    State.SUCCEEDED: events.SUCCEEDED,
    State.FAILED: events.FAILED,
    State.CANCELLED: events.CANCELLED,
}


class _Sql:
    """Quoted names and result converters of one database connection (built once)."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        qn = connection.ops.quote_name
        self.table = qn(str(Job._meta.db_table))
        self.col = {name: qn(str(field.column)) for name, field in _FIELDS.items()}
        self.columns = ", ".join(self.col[name] for name in _ATTNAMES)
        self.converters = []
        for field in _FIELDS.values():
            expression = field.get_col(Job._meta.db_table)
            self.converters.append((connection.ops.get_db_converters(expression)
                                    + expression.get_db_converters(connection), expression))
        vendor = connection.vendor
        self.returning = vendor == "postgresql" or (
            vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 35, 0))


def _connection() -> tuple[BaseDatabaseWrapper, _Sql]:
    connection = connections[router.db_for_write(Job)]
    sql = connection.__dict__.get(_CACHE_ATTR)
    if sql is None:
        sql = connection.__dict__[_CACHE_ATTR] = _Sql(connection)
    return connection, sql


def _assignments(connection: BaseDatabaseWrapper, sql: _Sql,
                 values: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    parts, params = [], []
    for name, value in values.items():
        parts.append(f"{sql.col[name]} = %s")
        params.append(_FIELDS[name].get_db_prep_save(value, connection))
    return parts, params


def _load(job: Job, connection: BaseDatabaseWrapper, sql: _Sql, row: Sequence[Any]) -> None:
    """Set every field of ``job`` from a row of ``sql.columns``, as the ORM would read it."""
    values = list(row)
    for i, (converters, expression) in enumerate(sql.converters):
        for converter in converters:
            values[i] = converter(values[i], expression, connection)
    job.__dict__.update(zip(_ATTNAMES, values, strict=True))
    job._state.adding, job._state.db = False, connection.alias


def move(job: Job, target: State, *, values: Mapping[str, Any] | None = None,
         only_from: Collection[str] | None = None, token: str | None = None,
         task_id: str | None = None, stale_before: datetime | None = None,
         redelivered: bool = False, refresh: bool = True, announce: bool = True,
         now: datetime | None = None, max_running: int | None = None) -> bool:
    """Move ``job`` to ``target`` if the table and the guards allow it; whether it moved.

    * ``only_from`` narrows the table's sources (it may not widen them);
    * ``token``: only while this run holds the job; ``task_id``: only while this is the
      job's current message;
    * ``stale_before``: a ``running`` job moves only if its heartbeat is older (or
      missing), unless ``redelivered`` (its own message came back: its worker was lost);
    * ``max_running`` (into ``running`` only): a top-level job starts only while its owner
      runs fewer top-level jobs; otherwise :class:`OwnerBusy` is raised and nothing is
      written. Children of a canvas are never held back (their parent already holds the
      owner's place: holding them could deadlock the pipeline), nor is a take-over of a
      job that is already running.

    ``refresh`` reloads every field of ``job`` from the moved row; otherwise the written
    values are set on it. With ``announce`` the target's event is stored in the outbox in
    the same transaction (a claim of a job whose cancel was requested announces nothing:
    its ``job.cancelled`` follows at once). A job whose current state the table
    does not allow to become ``target`` raises :class:`IllegalTransition` and nothing is
    written; a guard that does not hold (another run, another message, a live heartbeat)
    answers ``False``.
    """
    allowed = sources(target)
    if only_from is None:
        from_states: Collection[str] = allowed
    else:
        stray = set(only_from) - allowed
        if stray:
            raise IllegalTransition(f"a {sorted(stray)[0]} job cannot become {target}")
        from_states = only_from
    now = now or timezone.now()
    assigned: dict[str, Any] = {"state": target, "updated_at": now,
                                "finished_at": now if target in TERMINAL else None}
    if values:
        assigned.update(values)
    connection, sql = _connection()
    col = sql.col
    parts, params = _assignments(connection, sql, assigned)
    if target == State.RUNNING:  # every run is an attempt; the first start is kept
        parts.append(f"{col['attempt']} = {col['attempt']} + 1")
        parts.append(f"{col['started_at']} = COALESCE({col['started_at']}, %s)")
        params.append(_FIELDS["started_at"].get_db_prep_value(now, connection))
    set_count = len(params)
    where = [f"{col['id']} = %s",
             f"{col['state']} IN ({', '.join(['%s'] * len(from_states))})"]
    job_id = _FIELDS["id"].get_db_prep_value(job.pk, connection)
    params.append(job_id)
    params.extend(from_states)
    if token is not None:
        where.append(f"{col['run_token']} = %s")
        params.append(token)
    if task_id is not None:
        where.append(f"{col['celery_task_id']} = %s")
        params.append(task_id)
    if stale_before is not None and not redelivered and State.RUNNING in from_states:
        hb = col["heartbeat_at"]
        where.append(f"({col['state']} <> %s OR {hb} IS NULL OR {hb} < %s)")
        params += [State.RUNNING, _FIELDS["heartbeat_at"].get_db_prep_value(stale_before,
                                                                           connection)]
    guarded = list(where)
    limit_params: list[Any] = []
    if max_running is not None and target == State.RUNNING:
        # One indexed count (taskstream_job_running_idx) inside the UPDATE: on SQLite the
        # statement holds the write lock from its start, so the count cannot go stale.
        owner, parent, state = col["owner_id"], col["parent_id"], col["state"]
        # 'running' written out, not a parameter: only then may SQLite use the partial
        # index (its planner cannot tell that a parameter matches the index's condition).
        guarded.append(
            f"({parent} IS NOT NULL OR {state} = %s OR (SELECT COUNT(*) FROM {sql.table} "
            f"AS r WHERE r.{owner} = {sql.table}.{owner} AND r.{state} = 'running' AND "
            f"r.{parent} IS NULL) < %s)")
        limit_params = [State.RUNNING, int(max_running)]
    statement = f"UPDATE {sql.table} SET {', '.join(parts)} WHERE {' AND '.join(guarded)}"
    # One transaction: the move and its event (no savepoint: inside a caller's
    # transaction, the two simply join it).
    with transaction.atomic(using=connection.alias, savepoint=False):
        with connection.cursor() as cursor:
            if limit_params and connection.vendor == "postgresql":
                # Under READ COMMITTED two claims of one owner would each count the other's
                # run as not started yet: claims of one owner take turns (the lock is held
                # to the commit, and the UPDATE's snapshot is taken after it is granted).
                cursor.execute(
                    f"SELECT pg_advisory_xact_lock(%s, hashtext(CAST({col['owner_id']} AS text)))"
                    f" FROM {sql.table} WHERE {col['id']} = %s AND {col['parent_id']} IS NULL",
                    [_OWNER_LOCK_SPACE, job_id])
            unguarded = params
            params = params + limit_params
            if refresh and sql.returning:
                cursor.execute(f"{statement} RETURNING {sql.columns}", params)
                rows = cursor.fetchall()  # all: SQLite commits when the statement is done
                moved = bool(rows)
                if moved:
                    _load(job, connection, sql, rows[0])
            else:
                cursor.execute(statement, params)
                moved = bool(cursor.rowcount)
                if moved and refresh:
                    cursor.execute(f"SELECT {sql.columns} FROM {sql.table} "
                                   f"WHERE {col['id']} = %s", [job_id])
                    row = cursor.fetchone()
                    moved = row is not None
                    if moved:
                        _load(job, connection, sql, row)
                        # A racing move may have come between the UPDATE and the read.
                        moved = all(getattr(job, k) == v for k, v in assigned.items()
                                    if k in ("state", "run_token"))
            if not moved and limit_params:
                # Refused by the owner's limit alone (every other guard holds)?
                cursor.execute(f"SELECT 1 FROM {sql.table} WHERE {' AND '.join(where)}",
                               unguarded[set_count:])
                if cursor.fetchone() is not None:
                    raise OwnerBusy(f"the owner of job {job.pk} runs {max_running} jobs")
        if moved:
            if not refresh:
                for name, value in assigned.items():
                    setattr(job, name, value)
            if announce and not (target == State.RUNNING and job.cancel_requested):
                events.job_announce(job, EVENT_OF[target])
            transaction.on_commit(partial(_moved, job, target), using=connection.alias)
    if not moved:
        current = Job.objects.filter(pk=job.pk).values_list("state", flat=True).first()
        if current is not None and current not in allowed:
            raise IllegalTransition(f"a {current} job cannot become {target}")
        return False
    return True


def _moved(job: Job, state: str, created: bool = False) -> None:
    """After the commit: one log line per state change, and the ``job_moved`` signal."""
    fields = job.__dict__  # what the move loaded; never a deferred load from here
    if logger.isEnabledFor(logging.INFO):
        extra = {"job_id": str(fields.get("id")), "task_id": fields.get("celery_task_id"),
                 "user_id": fields.get("owner_id"), "job_kind": fields.get("kind"),
                 "job_state": str(state), "attempt": fields.get("attempt")}
        logger.info("job %(job_id)s %(job_kind)s: %(job_state)s (task %(task_id)s, "
                    "user %(user_id)s, attempt %(attempt)s)", extra, extra=extra)
    if job_moved.receivers:
        job_moved.send(sender=Job, job=job, state=str(state), created=created)


def update_running(pk: Any, token: str | None, values: Mapping[str, Any]) -> bool:
    """Write fields that are not the state (progress, heartbeat, cancel request) of a
    running job, held by the run ``token`` (``None``: by whichever run); whether it wrote."""
    connection, sql = _connection()
    parts, params = _assignments(connection, sql, values)
    where = f"{sql.col['id']} = %s AND {sql.col['state']} = %s"
    params += [_FIELDS["id"].get_db_prep_value(pk, connection), State.RUNNING]
    if token is not None:
        where += f" AND {sql.col['run_token']} = %s"
        params.append(token)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {sql.table} SET {', '.join(parts)} WHERE {where}", params)
        return bool(cursor.rowcount)


def note_created(job: Job) -> None:
    """A row just inserted (``queued``): its log line and ``job_moved``, after the commit."""
    transaction.on_commit(partial(_moved, job, State.QUEUED, True),
                          using=router.db_for_write(Job))


def stub(pk: Any) -> Job:
    """A ``Job`` that knows only its id, for :func:`move` to fill in (no query)."""
    return Job.from_db(router.db_for_write(Job), ["id"], [pk])
