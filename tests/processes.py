"""Real processes for integration tests: a Celery worker and a web server on the test database."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_database_url() -> str:
    """A DATABASE_URL naming the database this test run uses (pytest-django's test copy)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "STATIC_MANIFEST": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    if not settings.EMBEDDED_BROKER:
        env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen, log: Path) -> str:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return log.read_text(errors="replace")


@contextmanager
def celery_worker(
    tmp_path: Path,
    *,
    concurrency: int = 2,
    env: dict[str, str] | None = None,
    queues: str = "celery,outbound",
) -> Iterator[subprocess.Popen]:
    """A real `celery worker` process over the configured broker, until the block ends.

    ``queues``: what it serves; production runs attribution (``celery``) and outbound postbacks
    (``outbound``) on workers of their own."""
    log = tmp_path / f"worker-{time.monotonic_ns()}.log"
    cmd = [
        str(BIN / "celery"),
        "-A",
        "portal",
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        f"--queues={queues}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        f"--hostname=test-{time.monotonic_ns()}@%h",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env or process_env(), stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"celery worker did not start:\n{_stop(proc, log)}")
        time.sleep(0.2)
    try:
        yield proc
    finally:
        _stop(proc, log)


@contextmanager
def web_server(
    tmp_path: Path, *, env: dict[str, str] | None = None, threads: int = 4
) -> Iterator[str]:
    """A real gunicorn (one gthread worker, as gunicorn.conf.py) on loopback; yields its URL."""
    port = free_port()
    log = tmp_path / f"web-{port}.log"
    cmd = [
        str(BIN / "gunicorn"),
        "portal.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        str(threads),
        "--access-logfile",
        "-",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env or process_env(), stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            # Alive, not ready: some tests start it with the broker or the database away.
            with urllib.request.urlopen(f"{base}/livez", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"web server did not start:\n{_stop(proc, log)}") from None
            time.sleep(0.2)
    try:
        yield base
    finally:
        _stop(proc, log)


@contextmanager
def gunicorn(
    tmp_path: Path, *, env: dict[str, str] | None = None, workers: int = 2, threads: int = 8
) -> Iterator[tuple[str, subprocess.Popen]]:
    """gunicorn with ``gunicorn.conf.py`` (gthread) in a session of its own, so that a test can
    kill it outright (``os.killpg(proc.pid, SIGKILL)``); yields its URL and its process."""
    port = free_port()
    log = tmp_path / f"gunicorn-{port}.log"
    cmd = [
        str(BIN / "gunicorn"),
        "portal.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env or process_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{_stop(proc, log)}") from None
            time.sleep(0.2)
    try:
        yield base, proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        _stop(proc, log)


def purge_queue(env: dict[str, str] | None = None) -> None:
    """Drop messages left in the broker by earlier runs, so a worker sees only this test's."""
    subprocess.run(
        [str(BIN / "celery"), "-A", "portal", "purge", "-f", "--queues", "celery,outbound"],
        cwd=ROOT,
        env=env or process_env(),
        check=True,
        capture_output=True,
        timeout=60,
    )


def wait_until(predicate, *, timeout: float = 30, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
