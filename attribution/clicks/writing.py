"""Storing click rows. On PostgreSQL the clicks one web process serves at the same moment share
one COPY and one commit (``portal.lib.groupcommit``), on the committer's own connection.

``CLICK_WRITE``:

- ``sync`` (the default): a request answers 302 only once its row is committed, alone
  (SQLite, or inside a caller's transaction) or with the rows of the requests under way
  (PostgreSQL: group commit, ``CLICK_GROUP_COMMIT_WAIT_MS``). A 302 that was sent is a stored
  click; a request whose row the database refused answers 503 and is not a click.
- ``buffered`` (PostgreSQL only, off by default): the request queues its row and answers at once;
  the committer writes it within ``CLICK_GROUP_COMMIT_WAIT_MS`` plus a round trip. The loss
  window: clicks answered and not yet committed when the process is killed outright (SIGKILL,
  OOM, power; a graceful stop writes them), and the clicks of any batch the database refuses
  (logged). Its gain over ``sync`` is the request's wait, not CPU.
"""

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper

from attribution.models import Click
from portal.lib.groupcommit import GroupCommitter, LeaderCommitter
from portal.lib.perprocess import PerProcess

# The click's columns in the order a row carries them; ``id`` comes from the table.
COLUMNS = (
    "click_id",
    "link_id",
    "affiliate_id",
    "campaign_id",
    "created_at",
    "ip",
    "user_agent",
    "platform",
    "country",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "referrer",
    "gaid",
    "idfa",
)
Row = tuple[Any, ...]


def _columns(db: BaseDatabaseWrapper) -> str:
    return ", ".join(db.ops.quote_name(Click._meta.get_field(n).column) for n in COLUMNS)


_copy_sql: dict[str, str] = {}  # database alias -> the COPY statement, made once


def copy_rows(db: BaseDatabaseWrapper, rows: Sequence[Row]) -> list[bool]:
    """Write ``rows`` with one COPY (PostgreSQL), in autocommit: one transaction, one commit.

    COPY takes psycopg's own adaptation of the plain values: no per-field preparation, and the
    server parses no statement text per row. psycopg's own cursor, not Django's wrapper (this
    runs once a group of clicks); its errors are turned into Django's, as any query's are, so
    that the committer tells a refused row (IntegrityError) from a lost database.
    """
    statement = _copy_sql.get(db.alias)
    if statement is None:
        table = db.ops.quote_name(Click._meta.db_table)
        statement = _copy_sql[db.alias] = f"COPY {table} ({_columns(db)}) FROM STDIN"
    with db.wrap_database_errors:
        db.ensure_connection()
        with db.connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    return [True] * len(rows)


def insert_row(row: Row) -> None:
    """One INSERT on the request's own connection (SQLite; or inside a caller's transaction)."""
    db = connection
    ops = db.ops
    table = ops.quote_name(Click._meta.db_table)
    values = list(row)
    values[4] = ops.adapt_datetimefield_value(values[4])
    values[5] = ops.adapt_ipaddressfield_value(values[5])
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({_columns(db)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(COLUMNS))})",
            values,
        )


def _committer() -> GroupCommitter[Row, bool]:
    # sync: the first request of a group writes it (no thread to hand rows to); buffered: the
    # rows are answered first, so a committer thread of its own writes them.
    kind = GroupCommitter if settings.CLICK_WRITE == "buffered" else LeaderCommitter
    return kind(write=copy_rows, wait=settings.CLICK_GROUP_COMMIT_WAIT_MS / 1000, name="click")


_committers = PerProcess(_committer)


def grouped() -> bool:
    """Whether a click stored now goes through this process's committer: on PostgreSQL, from a
    request in autocommit (inside a caller's transaction the row must commit with it)."""
    return settings.CLICK_GROUP_COMMIT and not connection.in_atomic_block


def committer() -> GroupCommitter[Row, bool]:
    return _committers.get()


def coming() -> AbstractContextManager[None]:
    """``GroupCommitter.coming``: a request on its way to storing a click (the committer waits
    for the requests under way rather than a fixed time)."""
    return committer().coming() if grouped() else nullcontext()


def click_store(row: Row) -> None:
    """Store one click row as ``CLICK_WRITE`` says; raises DatabaseError when it is not stored
    (``sync``)."""
    if not grouped():
        insert_row(row)
    elif settings.CLICK_WRITE == "buffered":
        committer().submit_nowait(row)
    else:
        committer().submit(row)


def stop() -> None:
    """Write what this process's committer holds and end it (gunicorn worker exit)."""
    current = _committers.forget()
    if current is not None:
        current.stop()
