"""The outbox's three statements, written out rather than ORM-built.

Every state change pays for them (the INSERT in its transaction, the SELECT and DELETE
of the fast path after it). Built by the ORM they cost about three times the CPU of the
change's own INSERT (``python -m bench.outbox``); written out, through Django's cursor
(so query logging and wrappers still see them), they cost a fraction of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router, transaction
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
                       f"{qn('created_at')}) VALUES (%s, %s, %s, %s, %s, %s)")
        self.select = f"SELECT {self.columns} FROM {table}"
        self.delete = f"DELETE FROM {table} WHERE {qn('id')} IN "
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


def outbox_insert(*, topic: str, event: str, data: str, ts: str, key: str) -> None:
    connection, sql = _connection()
    created = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql.insert, [topic, event, data, ts, key, created])


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
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql.delete + _marks(len(ids)), list(ids))
        return
    # The caller waits for this commit, not for its event (already in Redis). A DELETE lost
    # in a crash only means the event is sent again, which the hub's keys make harmless:
    # no need to wait for the WAL flush (a few ms on a busy disk, per change).
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(sql.delete + _marks(len(ids)), list(ids))
