"""Group commit: many request threads, one statement, one commit.

Under load most of a small INSERT's cost is its own transaction: a round trip, a commit and a WAL
flush each. With threaded web workers a process serves several requests at once, so each request
thread hands its row to this process's committer and waits; the committer thread gathers the rows
of the requests already under way (up to ``wait`` seconds), writes them with one call of
``write(connection, rows)`` on its own connection (one statement in autocommit, or a few in one
transaction: one commit), then wakes each request with its own result. A request answers only
after its row is committed.

If the batch fails for a reason one row can cause (a constraint, a value too long) each row is
written alone, so a bad row fails only its own request; if the database cannot be reached every
waiting request gets the error.

Used by the postback inbox (``attribution.ingestion.groupcommit``) and the click redirect
(``attribution.clicks.writing``); each owns what a row is and how a batch is written.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from queue import Empty, SimpleQueue
from typing import Any, Generic, TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

# Rows one statement takes at most: far above the request threads of one process, so in practice
# a batch is whatever arrived in the window; a bound keeps the statement's parameters reasonable.
MAX_ROWS = 200
# A request gives up waiting after this long (the sender retries; the dedup key keeps it once).
WAIT_TIMEOUT = 30.0

Row = TypeVar("Row")
Result = TypeVar("Result")
# Put in the queue when the last request under way ends without a row: stop waiting for it.
_NUDGE = object()


class _Waiter:
    """One request's row, and the lock it sleeps on until the committer releases it."""

    __slots__ = ("detached", "error", "lead", "lock", "result", "row")

    def __init__(self, row: Any, *, detached: bool = False) -> None:
        self.row = row
        self.lead = False  # LeaderCommitter: woken to lead the next batch, not answered
        # Nobody waits for a detached row (answered before it is stored): an error is logged.
        self.detached = detached
        self.result: Any = None
        self.error: BaseException | None = None
        # Held from the start; the committer releases it once, when result or error is set.
        # A bare lock: an Event (a Condition and two locks) cost a tenth of an insert per row.
        self.lock = threading.Lock()
        self.lock.acquire()

    def answer(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        if error is not None and self.detached:
            logger.error("a row answered before it was stored is lost: %s: %r", error, self.row)
        self.lock.release()

    def outcome(self) -> Any:
        """The result, or the error raised afresh (request threads raise it concurrently)."""
        if self.error is not None:
            raise self.error.__class__(*self.error.args) from self.error
        return self.result


def _answer_unanswered(batch: list[_Waiter], error: BaseException) -> None:
    """No request may wait forever on a batch whose writing failed outright."""
    for waiter in batch:
        if waiter.lock.locked() and waiter.result is None and waiter.error is None:
            waiter.answer(error=error)


class GroupCommitter(Generic[Row, Result]):
    """One process's committer thread and its database connection.

    ``write(db, rows)`` stores ``rows`` on ``db`` (the committer's own connection, in autocommit)
    and returns one result per row, in order; ``name`` says whose committer it is in errors,
    logs and the thread's name.
    """

    def __init__(
        self,
        *,
        write: Callable[[BaseDatabaseWrapper, Sequence[Row]], Sequence[Result]],
        wait: float,
        name: str,
        max_rows: int = MAX_ROWS,
        alias: str = "default",
    ) -> None:
        self.write = write
        self.name = name
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
        if getattr(self._local, "coming", False):  # said already, further out in the request
            yield
            return
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
                    if self._coming == 0:
                        self._none_coming()

    def _none_coming(self) -> None:
        """The last request under way ended without a row (under ``_coming_lock``): the batch
        being gathered stops waiting for it."""
        self._queue.put(_NUDGE)

    def submit(self, row: Row) -> Result:
        """Store ``row`` with the next batch; its result once committed. Raises DatabaseError."""
        if self._stopping:
            raise OperationalError(f"{self.name} group commit is shut down")
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
            raise OperationalError(f"{self.name} group commit: no answer in {WAIT_TIMEOUT:g}s")
        return waiter.outcome()

    def submit_nowait(self, row: Row) -> None:
        """Queue ``row`` for the next batch and return at once, before it is stored.

        What was queued and not yet committed is lost if the process dies; a batch the database
        refuses is logged, row by row. Only for rows whose loss the caller accepts.
        """
        if self._stopping:
            raise OperationalError(f"{self.name} group commit is shut down")
        if self._thread is None:
            self._start()
        if getattr(self._local, "coming", False):
            self._local.coming = False
            with self._coming_lock:
                self._coming -= 1
        self._queue.put(_Waiter(row, detached=True))

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=f"{self.name}-group-commit")
                thread.daemon = True
                thread.start()
                self._thread = thread

    def _gather(self, first: _Waiter) -> tuple[list[_Waiter], bool]:
        """``first`` and the rows of requests under way, until ``wait``; True when told to stop."""
        batch = [first]
        start = time.monotonic()
        # Only for the requests already under way (coming()): waiting for one more that nobody
        # announced cost more (each waiting request holds its visitor) than it saved in commits.
        deadline = start + self.wait
        while len(batch) < self.max_rows:
            try:
                waiter = self._queue.get_nowait()
            except Empty:
                now = time.monotonic()
                left = deadline - now
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
            except BaseException as exc:
                _answer_unanswered(batch, exc)
                if not isinstance(exc, Exception):
                    raise
        # Rows queued after the stop: tell their requests (their senders retry).
        while True:
            try:
                waiter = self._queue.get_nowait()
            except Empty:
                break
            if isinstance(waiter, _Waiter):
                waiter.answer(error=OperationalError(f"{self.name} group commit is shut down"))
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
                "%s group commit of %s rows failed, writing them one by one: %s",
                self.name,
                len(batch),
                exc,
            )
            self._one_by_one(batch)
            return
        for waiter, result in zip(batch, results, strict=True):
            waiter.answer(result)

    def _write(self, rows: list[Row]) -> Sequence[Result]:
        db = self._db
        reused = db.connection is not None
        try:
            return self.write(db, rows)
        except (OperationalError, InterfaceError):
            if not reused:
                raise
            # A kept connection the server has since closed (a restart, a failover): once more
            # on a new one before telling every sender the database is down.
            db.close()
            return self.write(db, rows)

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


class LeaderCommitter(GroupCommitter[Row, Result]):
    """Group commit without a committer thread: the first request of a batch writes it.

    The request that finds no batch being written leads: it waits for the requests under way
    (``coming``) to add their rows, writes them all with one ``write`` on the process's one
    connection, answers each, and hands the lead to the first row that came in meanwhile. A
    batch thus costs one thread switch a follower, where a committer thread costs the switches
    to it and back, its queue and its own turn on the interpreter: measured on the click
    redirect, a fifth of the click's CPU. For rows someone waits for (``submit``); rows
    answered first (``submit_nowait``) need the committer thread of ``GroupCommitter``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._mutex = threading.Lock()
        self._arrived = threading.Condition(self._mutex)
        self._pending: list[_Waiter] = []
        self._leading = False
        self._coming_lock = self._mutex  # one lock for what a leader waits on

    def _none_coming(self) -> None:
        self._arrived.notify()  # the leader stops waiting

    def submit(self, row: Row) -> Result:
        if self._stopping:
            raise OperationalError(f"{self.name} group commit is shut down")
        waiter = _Waiter(row)
        with self._mutex:
            if getattr(self._local, "coming", False):
                self._local.coming = False
                self._coming -= 1
            self._pending.append(waiter)
            lead = not self._leading
            if lead:
                self._leading = True
            else:
                self._arrived.notify()  # a leader may be waiting for this row
        if not lead:
            if not waiter.lock.acquire(timeout=WAIT_TIMEOUT):
                with self._mutex:
                    handed = waiter.lead  # the lead reached it just now: it must not be lost
                    if not handed and waiter in self._pending:
                        self._pending.remove(waiter)
                if not handed:
                    raise OperationalError(
                        f"{self.name} group commit: no answer in {WAIT_TIMEOUT:g}s"
                    )
                waiter.lock.acquire()  # released with the lead: held until its own answer
            if not waiter.lead:
                return waiter.outcome()
        self._lead(waiter)
        return waiter.outcome()

    def submit_nowait(self, row: Row) -> None:
        raise NotImplementedError("rows answered first need GroupCommitter's committer thread")

    def _lead(self, own: _Waiter) -> None:
        """Gather, write and answer one batch (``own``, this thread's row, in it), then hand the
        lead on."""
        batch: list[_Waiter] = []
        try:
            deadline = time.monotonic() + self.wait
            with self._mutex:
                while self._coming > 0 and len(self._pending) < self.max_rows:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._arrived.wait(left)
                batch = self._pending[: self.max_rows]
                del self._pending[: self.max_rows]
            if self._db is None:
                self._db = connections.create_connection(self.alias)
                self._db.inc_thread_sharing()  # used by one leader at a time, whichever thread
            self._commit(batch)
        except BaseException as exc:
            with self._mutex:
                if own in self._pending:  # failed before taking its batch: never hand it the lead
                    self._pending.remove(own)
                    batch.append(own)
            _answer_unanswered(batch, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            with self._mutex:
                if self._pending:
                    following = self._pending[0]
                    following.lead = True
                    following.lock.release()
                else:
                    self._leading = False
                    self._arrived.notify_all()  # stop() may be waiting for the last batch

    def stop(self, timeout: float = 10.0) -> None:
        """Refuse new rows, let the batch being written finish, close the connection."""
        self._stopping = True
        deadline = time.monotonic() + timeout
        with self._mutex:
            while self._leading and time.monotonic() < deadline:
                self._arrived.wait(deadline - time.monotonic())
        if self._db is not None:
            self._db.close()
