"""Group commit for the postback inbox (PostgreSQL): many request threads, one INSERT, one commit.

Under load most of an inbox INSERT's cost is its own transaction: a round trip, a commit and a WAL
flush each. With gunicorn's gthread worker a process serves several requests at once, so each
request thread hands its row to this process's committer and waits; the committer thread gathers
the rows of the requests already under way (up to ``POSTBACK_GROUP_COMMIT_WAIT_MS``), writes them
with ONE ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` on its own connection (one statement in
autocommit: one transaction), then wakes each request with its (id, created). A request answers
200 only after its row is committed.

A repeat of a row stored earlier, or of another row in the same batch, gets the stored row's id and
created=False (one SELECT for the keys the INSERT did not return). If the batch fails for a reason
one row can cause (a constraint, a value too long) each row is written alone, so a bad row fails
only its own request; if the database cannot be reached every waiting request gets the error (the
view answers 503).
"""

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from queue import Empty, SimpleQueue
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from attribution.models import Postback
from portal.lib.perprocess import PerProcess

logger = logging.getLogger(__name__)

# Rows one INSERT takes at most: far above the request threads of one process, so in practice a
# batch is whatever arrived in the window; a bound keeps the statement's parameters reasonable.
MAX_ROWS = 200
# A request gives up waiting after this long (the sender retries; the dedup key keeps it once).
WAIT_TIMEOUT = 30.0

Key = tuple[int | None, str, str]
# Put in the queue when the last request under way ends without a row: stop waiting for it.
_NUDGE = object()


def _key(row: dict[str, Any]) -> Key:
    return (row["source_id"], row["kind"], row["dedup_key"])


def _sort_key(key: Key) -> tuple[int, str, str]:
    source_id, kind, dedup_key = key
    return (-1 if source_id is None else source_id, kind, dedup_key)


class _Waiter:
    """One request's row, and the lock it sleeps on until the committer releases it."""

    __slots__ = ("error", "lock", "result", "row")

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.result: tuple[int, bool] | None = None
        self.error: BaseException | None = None
        # Held from the start; the committer releases it once, when result or error is set.
        # A bare lock: an Event (a Condition and two locks) cost a tenth of an insert per row.
        self.lock = threading.Lock()
        self.lock.acquire()

    def answer(self, result: tuple[int, bool] | None = None, error: BaseException | None = None):
        self.result, self.error = result, error
        self.lock.release()


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


class GroupCommitter:
    """One process's committer thread and its database connection."""

    def __init__(self, *, wait: float, max_rows: int = MAX_ROWS, alias: str = "default") -> None:
        self.wait = wait
        self.max_rows = max(1, max_rows)
        self.alias = alias
        self.pid = os.getpid()
        self._queue: SimpleQueue[_Waiter | object | None] = SimpleQueue()
        # Requests of this process on their way to submit() (see coming()): the committer
        # waits for them rather than for a fixed time.
        self._coming = 0
        self._coming_lock = threading.Lock()
        self._local = threading.local()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._db: BaseDatabaseWrapper | None = None
        self.batches = 0  # written by the committer thread only

    @contextmanager
    def coming(self) -> Iterator[None]:
        """Say that this thread is about to submit a row (it may turn out not to).

        A batch then waits for the requests already under way, and no longer: alone, a request
        is written at once; under load a batch holds about as many rows as requests were in
        flight. The wait is still bounded by ``wait``.
        """
        with self._coming_lock:
            self._coming += 1
        self._local.coming = True
        try:
            yield
        finally:
            if self._local.coming:  # it did not submit (a 404, an exception): stop waiting for it
                self._local.coming = False
                with self._coming_lock:
                    self._coming -= 1
                    last = self._coming == 0
                if last:
                    self._queue.put(_NUDGE)

    def submit(self, row: dict[str, Any]) -> tuple[int, bool]:
        """Store ``row`` with the next batch; (id, created) once committed. Raises DatabaseError."""
        if self._stopping:
            raise OperationalError("postback group commit is shut down")
        if self._thread is None:
            self._start()
        waiter = _Waiter(row)
        if getattr(self._local, "coming", False):
            # Before the put: the committer, seeing the row, also sees one fewer to wait for.
            self._local.coming = False
            with self._coming_lock:
                self._coming -= 1
        self._queue.put(waiter)
        if not waiter.lock.acquire(timeout=WAIT_TIMEOUT):
            raise OperationalError(f"postback group commit: no answer in {WAIT_TIMEOUT:g}s")
        if waiter.error is not None:
            # A fresh exception per request thread: they are raised concurrently.
            raise waiter.error.__class__(*waiter.error.args) from waiter.error
        assert waiter.result is not None
        return waiter.result

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="postback-group-commit")
                thread.daemon = True
                thread.start()
                self._thread = thread

    def _gather(self, first: _Waiter) -> tuple[list[_Waiter], bool]:
        """``first`` and the rows of requests under way, until ``wait``; True when told to stop."""
        batch = [first]
        deadline = time.monotonic() + self.wait
        while len(batch) < self.max_rows:
            try:
                waiter = self._queue.get_nowait()
            except Empty:
                left = deadline - time.monotonic()
                if self._coming <= 0 or left <= 0:
                    break
                try:
                    waiter = self._queue.get(timeout=left)
                except Empty:
                    break
            if waiter is None:
                return batch, True
            if isinstance(waiter, _Waiter):
                batch.append(waiter)
        return batch, False

    def _run(self) -> None:
        # The connection belongs to this thread alone (Django checks that on every use).
        self._db = connections.create_connection(self.alias)
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            if not isinstance(first, _Waiter):
                continue
            batch, stop = self._gather(first)
            try:
                self._commit(batch)
            except BaseException as exc:  # no request may wait forever on a batch
                for waiter in batch:
                    if waiter.lock.locked() and waiter.result is None and waiter.error is None:
                        waiter.answer(error=exc)
                if not isinstance(exc, Exception):
                    raise
        # Rows queued after the stop: tell their requests (their senders retry).
        while True:
            try:
                waiter = self._queue.get_nowait()
            except Empty:
                break
            if isinstance(waiter, _Waiter):
                waiter.answer(error=OperationalError("postback group commit is shut down"))
        self._db.close()

    def _commit(self, batch: list[_Waiter]) -> None:
        self.batches += 1
        try:
            results = self._write([w.row for w in batch])
        except (OperationalError, InterfaceError) as exc:
            # The database is unreachable (or went away): every request hears it, as it would
            # have alone. The next batch connects afresh.
            self._db.close()
            for waiter in batch:
                waiter.answer(error=exc)
            return
        except DatabaseError as exc:
            logger.warning(
                "postback group commit of %s rows failed, writing them one by one: %s",
                len(batch),
                exc,
            )
            self._one_by_one(batch)
            return
        for waiter, result in zip(batch, results, strict=True):
            waiter.answer(result)

    def _write(self, rows: list[dict[str, Any]]) -> list[tuple[int, bool]]:
        db = self._db
        reused = db.connection is not None
        try:
            return insert_rows(db, rows)
        except (OperationalError, InterfaceError):
            if not reused:
                raise
            # A kept connection the server has since closed (a restart, a failover): once more
            # on a new one before telling every sender the database is down.
            db.close()
            return insert_rows(db, rows)

    def _one_by_one(self, batch: list[_Waiter]) -> None:
        for waiter in batch:
            try:
                [result] = self._write([waiter.row])
            except DatabaseError as exc:
                if isinstance(exc, OperationalError | InterfaceError):
                    self._db.close()
                waiter.answer(error=exc)
            else:
                waiter.answer(result)

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, end the thread and close its connection."""
        self._stopping = True
        self._queue.put(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


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
