"""The SQL of a job's run (claim, progress, heartbeat, finish), written out, not ORM-built.

A no-op job costs its worker a few milliseconds, and building its UPDATEs and the SELECT
after the claim with the ORM took a third of that, where SQLite runs each statement in
tens of microseconds. These are the statements the ORM would send, every value prepared
by the model's own field (so dates, time zones, UUIDs and JSON are stored exactly as the
ORM stores them), through Django's cursor (so query logging and wrappers still see them).

The claim takes the row back in the same statement (``UPDATE … RETURNING``) on
PostgreSQL and SQLite ≥ 3.35; elsewhere :func:`claim` answers ``NotImplemented`` and the
caller reads the row after its UPDATE.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from taskstream.jobs.models import Job
from taskstream.jobs.states import State

_FIELDS = {field.attname: field for field in Job._meta.concrete_fields}
_ATTNAMES = list(_FIELDS)
_CACHE_ATTR = "_taskstream_job_sql"


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
        self.mine = (f"{self.col['id']} = %s AND {self.col['state']} = %s"
                     f" AND {self.col['run_token']} = %s")
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


def update_run(pk: Any, token: str, values: Mapping[str, Any]) -> bool:
    """``UPDATE … SET values WHERE pk AND state = running AND run_token = token``:
    whether the run still held the job (and so wrote)."""
    connection, sql = _connection()
    parts, params = _assignments(connection, sql, values)
    params += [_FIELDS["id"].get_db_prep_value(pk, connection), State.RUNNING, token]
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {sql.table} SET {', '.join(parts)} WHERE {sql.mine}", params)
        return bool(cursor.rowcount)


def claim(*, pk: Any, token: str, task_id: str, now: datetime, stale: datetime,
          redelivered: bool, values: Mapping[str, Any]) -> Job | None:
    """Move a takeable job to ``running`` for this run and return the row as written.

    Takeable: queued or retrying; running with a heartbeat older than ``stale``; running
    under this very task id when the message was ``redelivered``. ``None`` when not
    takeable; ``NotImplemented`` when the database cannot return rows from an UPDATE.
    """
    connection, sql = _connection()
    if not sql.returning:
        return NotImplemented
    col = sql.col
    prep = {name: _FIELDS[name].get_db_prep_value for name in ("id", "heartbeat_at",
                                                               "started_at")}
    parts, params = _assignments(connection, sql, {
        "state": State.RUNNING, "run_token": token, "heartbeat_at": now,
        "celery_task_id": task_id, "eta": None, "updated_at": now, **values})
    parts.append(f"{col['attempt']} = {col['attempt']} + 1")
    parts.append(f"{col['started_at']} = COALESCE({col['started_at']}, %s)")
    params.append(prep["started_at"](now, connection))
    takeable = (f"{col['state']} IN (%s, %s)"
                f" OR ({col['state']} = %s AND {col['heartbeat_at']} < %s)")
    params += [prep["id"](pk, connection), State.QUEUED, State.RETRYING, State.RUNNING,
               prep["heartbeat_at"](stale, connection)]
    if redelivered:
        takeable += f" OR ({col['state']} = %s AND {col['celery_task_id']} = %s)"
        params += [State.RUNNING, task_id]
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {sql.table} SET {', '.join(parts)}"
                       f" WHERE {col['id']} = %s AND ({takeable}) RETURNING {sql.columns}",
                       params)
        rows = cursor.fetchall()  # all of them: SQLite commits when the statement is done
    if not rows:
        return None
    row = list(rows[0])
    for i, (converters, expression) in enumerate(sql.converters):
        for converter in converters:
            row[i] = converter(row[i], expression, connection)
    return Job.from_db(connection.alias, _ATTNAMES, row)
