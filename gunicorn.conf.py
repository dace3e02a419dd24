"""gunicorn settings for production. ``gunicorn portal.wsgi`` reads this file from the working
directory; command-line flags (``--workers``, ``--threads``, ``--bind``) override it.

gthread workers: each process serves several requests at once, so concurrent postbacks share one
INSERT and one commit (POSTBACK_GROUP_COMMIT) and one task per batch (POSTBACK_HANDOFF), and MMPs'
keep-alive connections stay open. A request spends much of its time waiting on PostgreSQL, so a
few threads per process keep its core busy.
"""

import multiprocessing
import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = 8
keepalive = 5


def post_worker_init(worker) -> None:
    """No database round trip of a request waits longer than DB_QUERY_DEADLINE_SECONDS."""
    from portal.lib.deadlines import install_query_deadline

    install_query_deadline()


def worker_exit(server, worker) -> None:
    """Write what the worker's committers hold (clicks, postbacks), publish the postback ids it
    still has, write its counts of skipped clicks."""
    from attribution.clicks import visitors, writing
    from attribution.ingestion import groupcommit, handoff

    writing.stop()
    groupcommit.stop()
    handoff.flush()
    visitors.tally.flush()
