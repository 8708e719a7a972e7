"""The outbox's statements, written out rather than ORM-built.

Every state change pays for them: one INSERT of its events in its transaction, then the
fast path's DELETE once they are in Redis (and, only where an older unsent event of a
topic may exist, a SELECT of the topics' backlog first). Built by the ORM they cost about
three times the CPU of the change's own INSERT (``python -m bench.outbox``); written out,
through Django's cursor (so query logging and wrappers still see them), they cost a
fraction of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

# id, topic, event, data, ts, key of one stored event.
Row = tuple[int, str, str, str, str, str]
_CACHE_ATTR = "_taskstream_outbox_sql"


class _Sql:
    """The statements in one connection's SQL dialect (built once per connection)."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        from taskstream.models import OutboxEvent

        qn = connection.ops.quote_name
        table = qn(str(OutboxEvent._meta.db_table))
        names = ("id", "topic", "event", "data", "ts", "key")
        self.columns = ", ".join(qn(name) for name in names)
        self.insert = (f"INSERT INTO {table} ({', '.join(qn(n) for n in names[1:])}, "
                       f"{qn('created_at')}) VALUES ")
        self.values = "(%s, %s, %s, %s, %s, %s)"
        # Each new row's id, key, and whether an older row of its topic is still unsent:
        # the fast path needs no SELECT when none is. PostgreSQL's subquery sees the rows
        # committed before the statement (and this transaction's own), SQLite's sees those
        # and this statement's (the `<` keeps them apart); SQLite's writer lock, held from
        # the change's first write to its commit, lets nothing commit in between.
        self.returning: str | None = None
        vendor = connection.vendor
        if vendor == "postgresql" or (vendor == "sqlite"
                                      and sqlite3.sqlite_version_info >= (3, 35, 0)):
            self.returning = (f" RETURNING {qn('id')}, {qn('key')}, EXISTS (SELECT 1 FROM "
                              f"{table} AS o WHERE o.{qn('topic')} = {table}.{qn('topic')} "
                              f"AND o.{qn('id')} < {table}.{qn('id')})")
        self.select = f"SELECT {self.columns} FROM {table}"
        self.delete = f"DELETE FROM {table} WHERE {qn('id')} IN "
        # PostgreSQL: the DELETE's own (autocommit) transaction does not wait for the WAL
        # flush; one statement instead of BEGIN, SET LOCAL, DELETE, COMMIT.
        self.no_flush = (" AND set_config('synchronous_commit', 'off', true) IS NOT NULL"
                         if vendor == "postgresql" else "")
        self.topic_in = f" WHERE {qn('topic')} IN "
        self.order = f" ORDER BY {qn('id')} LIMIT %s"


def _connection() -> tuple[BaseDatabaseWrapper, _Sql]:
    from taskstream.models import OutboxEvent

    connection = connections[router.db_for_write(OutboxEvent)]
    sql: _Sql | None = connection.__dict__.get(_CACHE_ATTR)
    if sql is None:
        sql = connection.__dict__[_CACHE_ATTR] = _Sql(connection)
    return connection, sql


def _marks(count: int) -> str:
    return f"({', '.join(['%s'] * count)})"


def outbox_insert(rows: Sequence[tuple[str, str, str, str, str]]) -> list[tuple[int, bool]] | None:
    """Store ``(topic, event, data, ts, key)`` rows in one statement. Returns each row's
    ``(id, an older row of its topic is unsent)`` in the order given, or ``None`` where
    the database cannot say in the same statement."""
    connection, sql = _connection()
    created = connection.ops.adapt_datetimefield_value(timezone.now())
    params: list[Any] = []
    for row in rows:
        params.extend(row)
        params.append(created)
    statement = sql.insert + ", ".join([sql.values] * len(rows))
    with connection.cursor() as cursor:
        if sql.returning is None:
            cursor.execute(statement, params)
            return None
        cursor.execute(statement + sql.returning, params)
        found = {key: (int(row_id), bool(older)) for row_id, key, older in cursor.fetchall()}
    return [found[row[4]] for row in rows]


def outbox_oldest(*, topics: Sequence[str] | None, limit: int) -> list[Row]:
    """The oldest stored events (of ``topics``, or of all), in id order."""
    connection, sql = _connection()
    params: list[Any] = []
    query = sql.select
    if topics is not None:
        query += sql.topic_in + _marks(len(topics))
        params.extend(topics)
    with connection.cursor() as cursor:
        cursor.execute(query + sql.order, [*params, limit])
        return [tuple(row) for row in cursor.fetchall()]


def outbox_delete(*, ids: Sequence[int]) -> None:
    connection, sql = _connection()
    # The caller waits for this commit, not for its event (already in Redis). A DELETE lost
    # in a crash only means the event is sent again, which the hub's keys make harmless:
    # no need to wait for the WAL flush (a few ms on a busy disk, per change).
    with connection.cursor() as cursor:
        cursor.execute(sql.delete + _marks(len(ids)) + sql.no_flush, list(ids))
