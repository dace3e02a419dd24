"""Stored postbacks reach the broker in batches: one ``process_postbacks`` task per batch of ids."""

import os
import time
from concurrent.futures import ThreadPoolExecutor
from queue import Empty

import pytest

from attribution.ingestion import handoff
from attribution.tasks import process_postbacks

APP = process_postbacks.app


@pytest.fixture
def broker_queue():
    """The broker's default queue, empty at the start; ``take()`` empties it again."""
    APP.control.purge()
    with APP.connection_for_read() as conn:
        queue = conn.SimpleQueue(APP.conf.task_default_queue)

        def take(wanted_ids: int = 0, timeout: float = 10) -> list[tuple[str, list[int]]]:
            """(task, its postback ids) of each message, waiting until ``wanted_ids`` came."""
            found: list[tuple[str, list[int]]] = []
            deadline = time.monotonic() + timeout
            while True:
                try:
                    message = queue.get(timeout=0.5)
                except Empty:
                    if sum(len(ids) for _, ids in found) >= wanted_ids:
                        return found
                    if time.monotonic() > deadline:
                        return found
                    continue
                args, _kwargs, _embed = message.decode()
                found.append((message.headers["task"], args[0]))
                message.ack()

        yield take
        queue.close()


def test_ids_stored_by_many_threads_reach_the_broker_one_task_per_batch(broker_queue):
    # given a process's publisher, with batches of 50
    publisher = handoff.Publisher(batch_size=50, interval=0.2)

    # when 16 request threads hand it 130 stored postbacks
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(publisher.add, range(1, 131)))

    # then three tasks carry them: two full batches, and the rest once the interval is over
    tasks = broker_queue(wanted_ids=130)
    assert [(name, len(ids)) for name, ids in tasks] == [
        ("attribution.process_postbacks", 50),
        ("attribution.process_postbacks", 50),
        ("attribution.process_postbacks", 30),
    ]
    assert sorted(i for _, ids in tasks for i in ids) == list(range(1, 131))


def test_flush_publishes_what_waits_at_once(broker_queue):
    # given ids waiting for a batch that will not fill before a long interval
    publisher = handoff.Publisher(batch_size=200, interval=60)
    for postback_id in (7, 8, 9):
        publisher.add(postback_id)

    # when the process exits (gunicorn's worker_exit hook, atexit)
    publisher.flush()

    # then they are on the broker already
    assert broker_queue(wanted_ids=3, timeout=1) == [("attribution.process_postbacks", [7, 8, 9])]


def test_a_forked_child_gets_its_own_publisher(settings):
    settings.POSTBACK_BATCH = 200
    parent = handoff.publisher()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        child = handoff.publisher()
        os._exit(0 if child is not parent and child.pid == os.getpid() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert handoff.publisher() is parent
