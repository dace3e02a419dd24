"""Hand stored postbacks to the workers: one ``process_postbacks`` task per batch of inbox ids.

Publishing one task per request cost the postback endpoint more CPU than storing the row
(bench/postbacks.py: kombu builds a new Redis client for every publish). So each web process keeps
the ids of the rows it stored in a buffer, and one daemon thread publishes them every
``FLUSH_INTERVAL``, or as soon as ``POSTBACK_BATCH`` ids wait, as a single task, over the producer
pool's kept connection.

Nothing depends on the publish succeeding: the rows are durable before anyone calls us, and the
beat task ``attribution.sweep_postbacks`` re-queues rows still ``received`` after
``POSTBACK_SWEEP_GRACE_SECONDS``. So a failed publish (the broker is down) is logged and dropped,
and a process killed with ids in its buffer loses only a little latency.

``POSTBACK_HANDOFF=sync`` publishes in the caller's thread instead, one task per stored row: the
embedded default (the filesystem broker under ``make run``) and tests that count messages.
"""

import atexit
import logging
import os
import threading
import time

from django.conf import settings

from portal.lib import queue
from portal.lib.perprocess import PerProcess

logger = logging.getLogger(__name__)

# How long the first id of a batch waits for company. A publish costs about 0.6 ms of CPU
# whatever it carries, and one web process stores a few hundred postbacks a second at most: 50 ms
# make that a tenth of it per postback, a delay nobody waiting on an attribution worker can see.
FLUSH_INTERVAL = 0.05
# Past this many waiting ids (the broker is down and every publish times out) new ones are not
# buffered: the sweep will find their rows anyway, and the process must not grow without bound.
MAX_PENDING_BATCHES = 50


def publish_batch(postback_ids: list[int]) -> None:
    """Publish ``process_postbacks`` for ``postback_ids``; log and drop them if that fails."""
    size = max(1, settings.POSTBACK_BATCH)
    try:
        # The producer pool's producer, and its broker connection, kept for the next batch.
        with queue.producer() as producer:
            for start in range(0, len(postback_ids), size):
                queue.publish(
                    "attribution.process_postbacks",
                    postback_ids[start : start + size],
                    producer=producer,
                )
    except Exception:
        logger.warning(
            "postback hand-off failed; the sweep will pick them up ids=%s..%s count=%s",
            postback_ids[0],
            postback_ids[-1],
            len(postback_ids),
            exc_info=True,
        )


class Publisher:
    """A buffer of stored postback ids and the daemon thread that publishes it in batches."""

    def __init__(self, *, batch_size: int, interval: float = FLUSH_INTERVAL) -> None:
        self.batch_size = max(1, batch_size)
        self.interval = interval
        self.pid = os.getpid()
        self.max_pending = self.batch_size * MAX_PENDING_BATCHES
        self.dropped = 0
        # Ids stay in _pending until they are published (by the thread, or by flush()), so
        # that flush() finds every id not yet on its way.
        self._cond = threading.Condition(threading.Lock())
        self._pending: list[int] = []
        self._in_flight = 0
        self._thread: threading.Thread | None = None

    def add(self, postback_id: int) -> None:
        """Queue one stored row's id for the next batch (its row must already be committed)."""
        with self._cond:
            if len(self._pending) >= self.max_pending:
                self.dropped += 1
                return
            self._pending.append(postback_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="postback-handoff")
                self._thread.daemon = True
                self._thread.start()
            # The thread sleeps until a first id arrives, then until a batch is full.
            if len(self._pending) in (1, self.batch_size):
                self._cond.notify_all()  # all: flush() may be waiting on the condition too

    def _take(self) -> list[int]:
        ids, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
        self._in_flight += len(ids)
        return ids

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                deadline = time.monotonic() + self.interval
                while 0 < len(self._pending) < self.batch_size:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                ids = self._take()
            self._publish(ids)

    def _publish(self, ids: list[int]) -> None:
        if not ids:
            return
        try:
            publish_batch(ids)
        except Exception:  # nothing may end the thread; publish_batch logs what it expects
            logger.exception("postback hand-off: publish raised")
        with self._cond:
            self._in_flight -= len(ids)
            dropped, self.dropped = self.dropped, 0
            self._cond.notify_all()
        if dropped:
            logger.warning("postback hand-off buffer full: %s ids left to the sweep", dropped)

    def flush(self, timeout: float = 10.0) -> None:
        """Publish every id waiting, from this thread, and wait for the batch in flight."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                ids = self._take()
                if not ids:
                    while self._in_flight and time.monotonic() < deadline:
                        self._cond.wait(deadline - time.monotonic())
                    return
            self._publish(ids)


_publishers = PerProcess(lambda: Publisher(batch_size=settings.POSTBACK_BATCH))


def publisher() -> Publisher:
    """This process's publisher; a forked child (gunicorn, Celery prefork) gets its own."""
    return _publishers.get()


def postback_stored(postback_id: int) -> None:
    """Hand a committed inbox row to the workers (``POSTBACK_HANDOFF`` says how)."""
    if settings.POSTBACK_HANDOFF == "sync":
        publish_batch([postback_id])
    else:
        publisher().add(postback_id)


def flush() -> None:
    """Publish what this process still holds: at worker exit (gunicorn.conf.py) and atexit."""
    current = _publishers.existing()
    if current is not None:
        current.flush()


# Registered once: a forked child inherits it, and flush() only touches its own publisher.
atexit.register(flush)
