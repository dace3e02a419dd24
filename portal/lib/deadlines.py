"""Deadlines at the web tier's edges: a request body that trickles in, a database that goes silent.

Without them, 16 connections trickling a POST body held every thread of a 2-process node, and
during a 35 s network partition of the database requests waited the whole time instead of
answering 503. Three parts:

- ``BodyDeadline`` (WSGI, behind gunicorn): the body of a request (up to 1 MB: postbacks, forms,
  API calls) must arrive within REQUEST_BODY_TIMEOUT_SECONDS, or it is answered 408 before
  Django sees it. The reverse proxy in front should buffer bodies too (README).
- ``QueryWatchdog`` (web processes): no database round trip waits longer than
  DB_QUERY_DEADLINE_SECONDS. A silent server (a partition: no reply, no reset) is cut off by
  shutting the connection's socket, which fails the query at once; a statement timeout alone
  cannot help, since the server never hears of it.
- ``UnavailableMiddleware``: what then fails is answered 503 with Retry-After (408 for a body
  that never came), never a 500.
"""

import io
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from itertools import count
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError

logger = logging.getLogger(__name__)

# Bodies up to this size are read before the application runs (postbacks, forms, API calls);
# larger ones (a program import's files) are read as the application asks, under the deadline.
PREREAD_MAX = 1024 * 1024


class BodyTimeout(OSError):
    """The request body did not arrive in time."""


class _DeadlineInput:
    """``wsgi.input`` whose reads end at the deadline: the watchdog shuts the socket's reading
    side then (gunicorn's reader loops over many short reads, so a timeout per read is not
    enough), and a read after it raises BodyTimeout."""

    def __init__(self, stream: Any, fired: Callable[[], bool]) -> None:
        self.stream, self.fired = stream, fired

    def _check(self) -> None:
        if self.fired():
            raise BodyTimeout("the request body did not arrive in time")

    def read(self, *args: Any) -> bytes:
        self._check()
        data = self.stream.read(*args)
        self._check()
        return data

    def readline(self, *args: Any) -> bytes:
        self._check()
        line = self.stream.readline(*args)
        self._check()
        return line


class BodyDeadline:
    """WSGI middleware: the request body arrives within ``seconds`` or the answer is 408."""

    def __init__(self, app: Callable, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    @property
    def watchdog(self) -> "QueryWatchdog":
        return shared_watchdog()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if sock is None or self.seconds <= 0 or not (length or chunked):
            return self.app(environ, start_response)
        if length > PREREAD_MAX or (chunked and not environ.get("wsgi.input_terminated")):
            # A large upload is read as the application asks; the proxy in front bounds it.
            return self.app(environ, start_response)
        try:
            with self.watchdog.watching_fd(sock.fileno(), self.seconds, socket.SHUT_RD) as fired:
                stream = _DeadlineInput(environ["wsgi.input"], fired)
                body = stream.read(PREREAD_MAX + 1) if chunked else _read_exactly(stream, length)
        except BodyTimeout:
            logger.warning("request body too slow path=%s", environ.get("PATH_INFO"))
            start_response(
                "408 Request Timeout",
                [("Content-Type", "application/json"), ("Connection", "close")],
            )
            return [b'{"error": "the request body did not arrive in time"}']
        if chunked:
            if len(body) > PREREAD_MAX:
                start_response(
                    "413 Content Too Large",
                    [("Content-Type", "application/json"), ("Connection", "close")],
                )
                return [b'{"error": "a chunked body may be up to 1 MB"}']
            # Whole: Django can now read it by its length, as any other body.
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


def _read_exactly(stream: _DeadlineInput, length: int) -> bytes:
    parts, left = [], length
    while left > 0:
        part = stream.read(left)
        if not part:
            break  # the client stopped short: the application sees what came
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


class QueryWatchdog:
    """Cuts off a database round trip that outlives its deadline (one thread per process)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._watched: dict[int, tuple[float, int, int]] = {}
        self._fired: set[int] = set()
        self._ids = count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="query-watchdog")
                self._thread.daemon = True
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(0.2)
            now = time.monotonic()
            with self._lock:
                late = [
                    (key, fd, how) for key, (ends, fd, how) in self._watched.items() if ends <= now
                ]
                for key, _, _ in late:
                    del self._watched[key]
                    self._fired.add(key)
            for _, fd, how in late:
                _cut(fd, how)

    @contextmanager
    def watching(self, raw: Any) -> Iterator[None]:
        """Cut the DB-API connection ``raw`` off if the block outlives the deadline."""
        try:
            fd = raw.fileno() if raw is not None else -1
        except Exception:
            fd = -1
        with self.watching_fd(fd, self.seconds) as fired:
            try:
                yield
            except (OperationalError, InterfaceError) as exc:
                if fired():
                    raise OperationalError(
                        f"the database did not answer within {self.seconds:g} s"
                    ) from exc
                raise

    @contextmanager
    def watching_fd(
        self, fd: int, seconds: float, how: int = socket.SHUT_RDWR
    ) -> Iterator[Callable[[], bool]]:
        """Shut the socket ``fd`` down (``how``) if the block outlives ``seconds``; yields a
        function that says whether it did."""
        if fd < 0 or seconds <= 0:
            yield lambda: False
            return
        if self._thread is None:
            self._start()
        key = next(self._ids)
        with self._lock:
            self._watched[key] = (time.monotonic() + seconds, fd, how)
        try:
            yield lambda: key in self._fired
        finally:
            with self._lock:
                self._watched.pop(key, None)
                self._fired.discard(key)

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: dict):
        with self.watching(getattr(context["connection"], "connection", None)):
            return execute(sql, params, many, context)


def _cut(fd: int, how: int) -> None:
    """Shut the socket under ``fd`` down: the blocked read returns (and fails)."""
    with suppress(OSError):
        dup = socket.socket(fileno=os.dup(fd))
        with suppress(OSError):
            dup.shutdown(how)
        dup.close()
        logger.warning("a socket read cut off at its deadline")


_shared: list[QueryWatchdog] = []


def shared_watchdog() -> QueryWatchdog:
    """The process's watchdog (one thread), with the database deadline of the settings."""
    if not _shared:
        _shared.append(QueryWatchdog(settings.DB_QUERY_DEADLINE_SECONDS))
    return _shared[0]


def install_query_deadline() -> None:
    """Put the database deadline on every connection this process makes. Web processes only
    (gunicorn.conf.py's ``post_worker_init``): workers run long batches."""
    connection_created.connect(_watch_new_connection, weak=False)


def _watch_new_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    watch_connection(shared_watchdog(), connection)


def watch_connection(watchdog: QueryWatchdog, connection: Any) -> None:
    """Put ``watchdog`` on a database connection (for ``connection_created``): on its queries,
    and on the health check Django runs on a kept connection before reusing it (that one goes
    straight to the driver, past the query wrappers: ``portal.lib.postgresql``)."""
    if connection.vendor != "postgresql":
        return
    if watchdog not in connection.execute_wrappers:
        connection.execute_wrappers.append(watchdog)
    connection.watchdog = watchdog


class UnavailableMiddleware:
    """A database that is away is a 503 (retry later), a body that never came a 408: never 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, UnreadablePostError | BodyTimeout):
            return JsonResponse({"error": "the request body did not arrive in time"}, status=408)
        if isinstance(exc, OperationalError | InterfaceError):
            return self.unavailable(request, exc)
        return None

    @staticmethod
    def unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.error("database unavailable path=%s: %s", request.path, exc)
        response = JsonResponse(
            {"error": "temporarily unavailable: the database did not answer; retry later"},
            status=503,
        )
        response["Retry-After"] = "30"
        return response
