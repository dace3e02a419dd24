"""Group commit for the postback inbox (PostgreSQL): many request threads, one INSERT, one commit.

The committer (``portal.lib.groupcommit``) gathers the rows of the requests already under way (up
to ``POSTBACK_GROUP_COMMIT_WAIT_MS``) and writes them here with ONE ``INSERT ... ON CONFLICT DO
NOTHING RETURNING`` on its own connection (one statement in autocommit: one transaction), then
wakes each request with its (id, created). A request answers 200 only after its row is committed.

A repeat of a row stored earlier, or of another row in the same batch, gets the stored row's id and
created=False (one SELECT for the keys the INSERT did not return). If the batch fails for a reason
one row can cause (a constraint, a value too long) each row is written alone, so a bad row fails
only its own request; if the database cannot be reached every waiting request gets the error (the
view answers 503).
"""

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.backends.base.base import BaseDatabaseWrapper

from attribution.models import Postback
from portal.lib import groupcommit
from portal.lib.groupcommit import MAX_ROWS, WAIT_TIMEOUT
from portal.lib.perprocess import PerProcess

__all__ = ["MAX_ROWS", "WAIT_TIMEOUT", "GroupCommitter", "committer", "insert_rows"]

Key = tuple[int | None, str, str]


def _key(row: dict[str, Any]) -> Key:
    return (row["source_id"], row["kind"], row["dedup_key"])


def _sort_key(key: Key) -> tuple[int, str, str]:
    source_id, kind, dedup_key = key
    return (-1 if source_id is None else source_id, kind, dedup_key)


def _existing(cursor, keys: Sequence[Key]) -> dict[Key, int]:
    """Ids of stored rows with these keys, in one SELECT that each partial unique index serves."""
    table = cursor.db.ops.quote_name(Postback._meta.db_table)
    sourced = [(source_id, key) for source_id, _, key in keys if source_id is not None]
    sourceless = [(kind, key) for source_id, kind, key in keys if source_id is None]
    where, params = [], []
    if sourced:
        where.append(f"(source_id, dedup_key) IN ({', '.join(['(%s, %s)'] * len(sourced))})")
        params += [value for pair in sourced for value in pair]
    if sourceless:
        where.append(
            f"(source_id IS NULL AND (kind, dedup_key) IN "
            f"({', '.join(['(%s, %s)'] * len(sourceless))}))"
        )
        params += [value for pair in sourceless for value in pair]
    cursor.execute(
        f"SELECT id, source_id, kind, dedup_key FROM {table} WHERE {' OR '.join(where)}",  # noqa: S608
        params,
    )
    return {(source_id, kind, key): pk for pk, source_id, kind, key in cursor.fetchall()}


def insert_rows(db: BaseDatabaseWrapper, rows: Sequence[dict[str, Any]]) -> list[tuple[int, bool]]:
    """Insert ``rows`` (same columns) in one statement; (id, created) for each, in order.

    The first of several rows with one key in the batch is the created one; the others, and rows
    already stored, get the stored id with created=False.
    """
    # In key order: two processes' batches that share keys then wait on each other's index
    # entries in the same order, never in a cycle (a deadlock PostgreSQL would break after 1 s).
    order = sorted(range(len(rows)), key=lambda i: _sort_key(_key(rows[i])))
    rows = [rows[i] for i in order]
    columns = list(rows[0])
    quote = db.ops.quote_name
    values = f"({', '.join(['%s'] * len(columns))})"
    sql = (
        f"INSERT INTO {quote(Postback._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(c) for c in columns)}) VALUES {', '.join([values] * len(rows))} "
        "ON CONFLICT DO NOTHING RETURNING id, source_id, kind, dedup_key"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, [row[c] for row in rows for c in columns])
        new = {(source_id, kind, key): pk for pk, source_id, kind, key in cursor.fetchall()}
        keys = [_key(row) for row in rows]
        missing = sorted({key for key in keys if key not in new}, key=_sort_key)
        stored = _existing(cursor, missing) if missing else {}
    results, claimed = [], set()
    for key in keys:
        if key in new and key not in claimed:
            claimed.add(key)
            results.append((new[key], True))
        elif key in new:
            results.append((new[key], False))
        elif key in stored:
            results.append((stored[key], False))
        else:
            # ON CONFLICT skipped it, yet no row has its key: another unique index took it.
            raise DatabaseError(f"postback conflicts with a row of another key: {key!r}")
    in_order: list[tuple[int, bool]] = [(0, False)] * len(rows)
    for position, result in zip(order, results, strict=True):
        in_order[position] = result
    return in_order


class GroupCommitter(groupcommit.GroupCommitter[dict[str, Any], tuple[int, bool]]):
    """One process's committer of inbox rows: each request hears (id, created) for its row."""

    def __init__(self, *, wait: float, max_rows: int = MAX_ROWS, alias: str = "default") -> None:
        super().__init__(
            write=insert_rows, wait=wait, name="postback", max_rows=max_rows, alias=alias
        )


P = ParamSpec("P")
R = TypeVar("R")
_committers = PerProcess(lambda: GroupCommitter(wait=settings.POSTBACK_GROUP_COMMIT_WAIT_MS / 1000))


def committer() -> GroupCommitter:
    """This process's committer; a forked child (gunicorn worker) gets its own."""
    return _committers.get()


def enabled() -> bool:
    """Whether a row stored now goes through the committer: a request in autocommit, since
    inside a caller's transaction the row must commit (or roll back) with it, and another
    connection could not see what that transaction wrote."""
    return settings.POSTBACK_GROUP_COMMIT and not connection.in_atomic_block


def coming() -> AbstractContextManager[None]:
    """``GroupCommitter.coming`` of this process's committer, when rows go through one."""
    return committer().coming() if enabled() else nullcontext()


def counted(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` inside ``coming()``: a request on its way to storing a row."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with coming():
            return function(*args, **kwargs)

    return wrapper


def stop() -> None:
    """End this process's committer, if it has one (gunicorn worker exit)."""
    current = _committers.existing()
    if current is not None:
        current.stop()
