"""Framework-level helpers the benchmarks share: a throwaway PostgreSQL database, the portal
under gunicorn with ``bench.settings``, and a multi-process HTTP load generator.

Typical use (see ``bench/clicks.py``)::

    env = prepare_database()                  # DROP/CREATE portal_bench, migrate
    demo = seed_demo(env)                     # JSON of `manage.py seed_demo --clicks 0 --json`
    with Server(env, workers=2) as server:    # gunicorn on 127.0.0.1:<free port>
        before = count_rows("attribution_click")
        result = run_load(
            server.port, ["/bench/bare/redirect"], seconds=10, clients=4, expect_status=302,
            cpu_probes={"server": server.cpu_seconds, "postgres": db_cpu_seconds},
        )
    print(result.summary(), result.cpu_summary(), result.rps, result.p95_ms)

Requests that must differ (a unique transaction id each, so every one is a new row) come from a
``path_factory(client_index, n) -> path`` instead of a fixed list: each client process calls it
with its own index and its own request counter ``n`` (0, 1, 2, ...), so ``(client_index, n)`` is
unique within one ``run_load`` call; put a per-call tag in the factory to keep paths unique
across calls::

    def factory(client: int, n: int) -> str:
        return f"/postbacks/s2s/{token}/?event=ftd&txid={tag}-{client}-{n}"

    run_load(server.port, [], path_factory=factory, expect_status=200, ...)

A benchmark script needs no ``if __name__ == "__main__"`` guard for the load clients (they are
forked on Linux), but should have one anyway.

Everything stays on loopback, every wait is bounded, and the server is stopped (its whole
process group) on exit, exception or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import IO

import psycopg
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = REPO_ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
GUNICORN = str(VENV_BIN / "gunicorn")

HOST = "127.0.0.1"
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
BENCH_DB = "portal_bench"
SETTINGS_MODULE = "bench.settings"

_T0 = time.monotonic()


def stop_on_signals() -> None:
    """Make SIGTERM (and SIGINT, even when inherited as ignored, as in a background job of a
    non-interactive shell) raise KeyboardInterrupt in the main thread, so that a benchmark's
    cleanup (server, worker, queue) runs however it is told to stop."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def log(message: str) -> None:
    """A progress line, with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", flush=True)


# --- Database ---------------------------------------------------------------------------------


def database_url(name: str = BENCH_DB) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def server_env(name: str = BENCH_DB, **overrides: str) -> dict[str, str]:
    """The environment the portal (server and manage.py) runs with against database ``name``."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        DATABASE_URL=database_url(name),
        SECRET_KEY="bench-only-not-secret-" + "k" * 40,
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        STATIC_MANIFEST="false",
        ALLOWED_HOSTS=HOST,
        CONN_MAX_AGE="600",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def pg_connect(dbname: str = BENCH_DB, *, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        dbname=dbname,
        autocommit=autocommit,
        connect_timeout=10,
    )


def recreate_database(name: str = BENCH_DB) -> None:
    """DROP (forcing out any session) and CREATE database ``name``: benchmark databases only."""
    if "bench" not in name:
        raise ValueError(f"refusing to drop {name!r}: benchmark database names contain 'bench'")
    with pg_connect("postgres") as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def query_scalar(query: str, params: Sequence | None = None, *, dbname: str = BENCH_DB):
    """The first column of the first row of ``query`` (plain psycopg, not Django)."""
    with pg_connect(dbname) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def count_rows(table: str, *, dbname: str = BENCH_DB) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    with pg_connect(dbname) as conn:
        return conn.execute(query).fetchone()[0]


def manage(
    *args: str, env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py <args>`` in the repository; raise with its output if it fails."""
    proc = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=REPO_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def prepare_database(name: str = BENCH_DB, **env_overrides: str) -> dict[str, str]:
    """Recreate database ``name`` and migrate it; returns the environment that points at it."""
    env = server_env(name, **env_overrides)
    log(f"recreating database {name} on {PG_HOST}:{PG_PORT}")
    recreate_database(name)
    log("migrating (manage.py migrate)")
    manage("migrate", "--noinput", env=env)
    return env


def seed_demo(env: Mapping[str, str], *, clicks: int = 0) -> dict:
    """Run ``manage.py seed_demo --json`` and return its JSON (links, campaigns, logins)."""
    log(f"seeding the demo program (seed_demo --clicks {clicks})")
    proc = manage("seed_demo", "--clicks", str(clicks), "--json", env=env)
    return json.loads(proc.stdout)


# --- Server -----------------------------------------------------------------------------------


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def http_get(
    port: int,
    path: str,
    *,
    host: str = HOST,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5,
) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection, redirects not followed: (status, headers, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


# --- CPU accounting (Linux /proc; everything reads 0 elsewhere) ------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stats():
    """(pid, process group, CPU seconds) of every process /proc lets us read."""
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return
    for pid in entries:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        yield int(pid), int(fields[2]), (int(fields[11]) + int(fields[12])) / _CLK_TCK


def process_group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the live processes of group ``pgid``."""
    return sum(cpu for _, group, cpu in _proc_stats() if group == pgid)


def pids_cpu(pids: Sequence[int]) -> float:
    wanted = set(pids)
    return sum(cpu for pid, _, cpu in _proc_stats() if pid in wanted)


def db_backend_pids(dbname: str = BENCH_DB) -> list[int]:
    """Server processes of the sessions connected to ``dbname`` (other than this query's)."""
    with pg_connect(dbname) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [dbname],
        ).fetchall()
    return [pid for (pid,) in rows]


def db_cpu_seconds(dbname: str = BENCH_DB) -> float:
    """CPU seconds used so far by PostgreSQL's backends for ``dbname`` (local server only)."""
    return pids_cpu(db_backend_pids(dbname))


def postgres_server_cpu_seconds() -> float:
    """CPU seconds of the whole local PostgreSQL server so far: every live ``postgres`` process
    (backends of every database, WAL writer, checkpointer, ...) plus what its exited processes
    used (the kernel adds a reaped child's CPU to its parent's cutime/cstime). Unlike
    ``db_cpu_seconds`` it sees short-lived sessions, e.g. one connection per Celery task."""
    total = 0.0
    for pid in pids_named("postgres"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(x) for x in fields[11:15]) / _CLK_TCK  # utime stime cutime cstime
    return total


def postgres_cpu_seconds(dbname: str = BENCH_DB) -> float:
    """``postgres_server_cpu_seconds`` less what the live backends of other databases used: the
    server's CPU on behalf of ``dbname`` (and the shared WAL writer, checkpointer, ...), when
    other people's databases share the server. A backend of another database that ends between
    two readings still counts for its last moments."""
    with pg_connect("postgres") as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname IS NOT NULL AND datname <> %s "
            "AND pid <> pg_backend_pid()",
            [dbname],
        ).fetchall()
    return postgres_server_cpu_seconds() - pids_cpu([pid for (pid,) in rows])


def db_sessions(dbname: str = BENCH_DB) -> int:
    """Sessions (connections) established to ``dbname`` since the statistics were reset."""
    # Asked from the "postgres" database, so that asking opens no session to ``dbname``.
    value = query_scalar(
        "SELECT sessions FROM pg_stat_database WHERE datname = %s", [dbname], dbname="postgres"
    )
    return int(value or 0)


def db_transactions() -> dict[str, int]:
    """Transactions committed or rolled back so far, per database of the local server: the
    delta over a phase shows whether other databases (other people's work) were busy too."""
    with pg_connect("postgres") as conn:
        rows = conn.execute(
            "SELECT datname, xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname IS NOT NULL"
        ).fetchall()
    return {name: int(count) for name, count in rows}


def other_db_activity(before: Mapping[str, int], mine: str = BENCH_DB) -> dict[str, int]:
    """Transactions other databases than ``mine`` ran since ``before`` (db_transactions())."""
    after = db_transactions()
    busy = {name: after[name] - before.get(name, 0) for name in after if name != mine}
    return {name: n for name, n in busy.items() if n > 50}  # ignore monitoring noise


def pids_named(name: str) -> list[int]:
    """Pids of the processes whose command name (``/proc/<pid>/comm``) is ``name``."""
    found = []
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return found
    for pid in entries:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == name:
                    found.append(int(pid))
        except OSError:
            continue
    return found


def named_cpu_seconds(name: str) -> float:
    """CPU seconds used so far by the processes named ``name`` (e.g. "redis-server")."""
    return pids_cpu(pids_named(name))


class _LoggedProcess:
    """A subprocess with its output in a temporary file; a context manager that always stops it."""

    _log: IO[str]  # subclasses set it, and define start() and stop()

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()[-chars:]

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            self._log.close()


class Server(_LoggedProcess):
    """gunicorn serving the portal's WSGI app with ``bench.settings``; a context manager.

    Sync workers by default. gunicorn's sync worker closes the connection after every response
    (it forces ``Connection: close``), so with it each request pays a TCP connect on loopback,
    bare and real alike; the load clients reconnect by themselves. ``threads`` > 1 runs gthread
    workers (the production configuration, ``gunicorn.conf.py``), which keep connections alive.
    The repository's ``gunicorn.conf.py`` is read (for its worker hooks); the flags given here
    override its worker class, workers and threads.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        workers: int = 2,
        threads: int = 1,
        host: str = HOST,
        port: int | None = None,
        app: str = "portal.wsgi:application",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.env = dict(env)
        self.workers = workers
        self.threads = threads
        self.worker_class = "sync" if threads == 1 else "gthread"
        self.host = host
        self.port = port or free_port(host)
        self.app = app
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            mode="w+", prefix="bench-gunicorn-", suffix=".log"
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, *, ready_path: str = "/healthz", timeout: float = 30) -> Server:
        cmd = [
            GUNICORN,
            self.app,
            "--bind",
            f"{self.host}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--threads",
            str(self.threads),
            "--no-control-socket",
            *self.extra_args,
        ]
        log(f"starting gunicorn ({self.describe()}) on {self.base_url}")
        # Own session: Ctrl-C reaches only us, and we stop the server (all of its group) ourselves.
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(ready_path, timeout=timeout)
        log(f"server ready (pid {self.proc.pid})")
        return self

    def describe(self) -> str:
        if self.worker_class == "sync":
            return f"{self.workers} sync workers"
        return f"{self.workers} gthread workers x {self.threads} threads"

    def wait_ready(self, path: str = "/healthz", *, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | str = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited before answering:\n{self.log_tail()}")
            try:
                status, _, _ = http_get(self.port, path, host=self.host, timeout=2)
            except OSError as exc:
                last_error = exc
            else:
                if status == 200:
                    return
                last_error = f"HTTP {status}"
            time.sleep(0.1)
        raise TimeoutError(
            f"gunicorn not ready after {timeout}s ({last_error}):\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL to the group if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            log(f"stopping {self.worker_class} server (pid {proc.pid})")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # The arbiter is not reaped yet, so its group id cannot have been reused.
                log("gunicorn did not stop in time: SIGKILL to its process group")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def cpu_seconds(self) -> float:
        """CPU used so far by the arbiter and its workers (its process group); 0 if stopped."""
        return process_group_cpu(self.proc.pid) if self.proc is not None else 0.0


class GranianServer(Server):
    """granian (a Rust HTTP server) serving the same WSGI app: ``workers`` processes, each
    running the app in ``threads`` blocking threads. For comparison only: the portal ships on
    gunicorn (``gunicorn.conf.py``), whose worker hooks write what the committers hold."""

    def __init__(self, env: Mapping[str, str], *, workers: int = 2, threads: int = 8) -> None:
        super().__init__(env, workers=workers, threads=threads)
        self.worker_class = "granian"

    def describe(self) -> str:
        return f"granian, {self.workers} workers x {self.threads} blocking threads"

    def start(self, *, ready_path: str = "/healthz", timeout: float = 30) -> Server:
        cmd = [
            str(VENV_BIN / "granian"),
            "--interface",
            "wsgi",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--blocking-threads",
            str(self.threads),
            "--no-access-log",
            "portal.wsgi:application",
        ]
        log(f"starting {self.describe()} on {self.base_url}")
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(ready_path, timeout=timeout)
        log(f"server ready (pid {self.proc.pid})")
        return self


# --- Celery (Redis broker) --------------------------------------------------------------------

CELERY = str(VENV_BIN / "celery")
BENCH_BROKER_URL = "redis://127.0.0.1:6379/0"
CELERY_QUEUE = "celery"  # the default queue the portal's tasks go to


def celery_purge(env: Mapping[str, str], *, timeout: float = 60) -> int:
    """``celery -A portal purge -f`` with ``env`` (its broker): how many messages it dropped."""
    proc = subprocess.run(
        [CELERY, "-A", "portal", "purge", "-f"],
        cwd=REPO_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"celery purge exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    words = proc.stdout.split()
    # "Purged 1234 messages from 1 known task queue." or "No messages purged from 1 queue."
    return int(words[1]) if len(words) > 1 and words[0] == "Purged" else 0


def redis_queue_length(broker_url: str = BENCH_BROKER_URL, queue: str = CELERY_QUEUE) -> int:
    """Messages waiting in a Celery queue on a Redis broker (kombu keeps one list per priority
    step: ``<queue>`` and ``<queue>\\x06\\x16<n>``)."""
    import redis  # the portal's own dependency (Celery's Redis transport)

    client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = [queue.encode()] + [k for k in client.scan_iter(match=f"{queue}\x06\x16*")]
        return sum(client.llen(k) for k in keys if client.type(k) == b"list")
    finally:
        client.close()


def redis_queued_task_args(
    broker_url: str = BENCH_BROKER_URL, queue: str = CELERY_QUEUE
) -> list[tuple[str, list]]:
    """(task name, positional args) of every message waiting in a Celery queue on Redis, read
    without taking them (kombu's JSON envelope: base64 body of ``[args, kwargs, embed]``)."""
    import base64

    import redis

    client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = [queue.encode()] + [k for k in client.scan_iter(match=f"{queue}\x06\x16*")]
        found = []
        for key in keys:
            if client.type(key) != b"list":
                continue
            for raw in client.lrange(key, 0, -1):
                message = json.loads(raw)
                body = message["body"]
                if message.get("properties", {}).get("body_encoding") == "base64":
                    body = base64.b64decode(body)
                args = json.loads(body)[0]
                found.append((message.get("headers", {}).get("task", ""), args))
        return found
    finally:
        client.close()


def redis_consumers(broker_url: str = BENCH_BROKER_URL) -> list[str]:
    """Other clients that look like Celery workers on the broker's Redis database: blocked in
    (or last seen in) BRPOP, or subscribed (a worker's control channel). A worker of someone else
    on the same queue would take the benchmark's tasks (and run them against its own database),
    and the benchmark's purge would drop that worker's tasks; check before running."""
    import redis

    client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        db = int(client.connection_pool.connection_kwargs.get("db", 0))
        me = client.client_id()
        found = []
        for c in client.client_list():
            if int(c.get("db", -1)) != db or int(c.get("id", -1)) == me:
                continue
            cmd = str(c.get("cmd", ""))
            blocked = cmd in ("brpop", "blpop") or "b" in str(c.get("flags", ""))
            if blocked or int(c.get("sub", 0)) or int(c.get("psub", 0)):
                found.append(f"{c.get('addr')} (cmd={cmd}, idle {c.get('idle')}s)")
        return found
    finally:
        client.close()


def redis_unacked(broker_url: str = BENCH_BROKER_URL) -> int:
    """Messages a worker has taken but not yet acknowledged (kombu's ``unacked`` hash)."""
    import redis

    client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return int(client.hlen("unacked"))
    finally:
        client.close()


def redis_clear_unacked(broker_url: str = BENCH_BROKER_URL) -> int:
    """Drop kombu's record of taken-but-unacknowledged messages; only while no worker runs on
    this broker. A worker that died holding messages leaves them there, and kombu would put
    them back in the queue an hour later, in the middle of some other run. Returns how many."""
    import redis

    client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        stale = int(client.hlen("unacked"))
        client.delete("unacked", "unacked_index", "unacked_mutex")
        return stale
    finally:
        client.close()


class CeleryWorker(_LoggedProcess):
    """``celery -A portal worker`` in its own session; a context manager that stops its whole
    process group (warm shutdown with SIGTERM, then SIGKILL) on exit, exception or Ctrl-C."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        concurrency: int = 2,
        loglevel: str = "WARNING",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.env = dict(env)
        self.cmd = [
            CELERY,
            "-A",
            "portal",
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            *extra_args,
        ]
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the worker
            mode="w+", prefix="bench-celery-", suffix=".log"
        )

    def start(self) -> CeleryWorker:
        log("starting celery worker: celery " + " ".join(self.cmd[1:]))
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """CPU used so far by the worker's main process and its pool (its process group)."""
        return process_group_cpu(self.proc.pid) if self.proc is not None else 0.0

    def stop(self, timeout: float = 20) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # The group's members now (main process and pool), to end any the main one leaves behind.
        members = [pid for pid, group, _ in _proc_stats() if group == proc.pid]
        if proc.poll() is None:
            log(f"stopping celery worker (pid {proc.pid})")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log("celery worker did not stop in time: SIGKILL to its process group")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # A pool child left behind (its parent gone) would keep consuming: end it, by its pid.
        for pid, group, _ in _proc_stats():
            if pid in members and group == proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


# --- Load generator ---------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What one load run measured. ``rps`` counts only responses with the expected status."""

    label: str
    seconds: float
    clients: int
    ok: int
    errors: int
    statuses: dict[int, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    # CPU seconds used during the run: "clients" (the load generator), one entry per probe
    # given to run_load (e.g. "server", "postgres"), and "host" (every process on the machine).
    cpu_s: dict[str, float] = field(default_factory=dict)
    host_cpu_busy_pct: float | None = None

    @property
    def requests(self) -> int:
        return self.ok + self.errors

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, pct: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(pct) - 1]

    @property
    def p50_ms(self) -> float:
        return self.percentile(50)

    @property
    def p95_ms(self) -> float:
        return self.percentile(95)

    @property
    def p99_ms(self) -> float:
        return self.percentile(99)

    def summary(self) -> str:
        return (
            f"{self.label}: {self.rps:.0f} req/s (p50 {self.p50_ms:.2f} ms, "
            f"p95 {self.p95_ms:.2f} ms) n={self.ok} errors={self.errors}"
        )

    def cpu_summary(self) -> str:
        """CPU per successful request by consumer, and what the rest of the machine used."""
        if not self.ok or not self.seconds:
            return "CPU: no successful requests"
        named = {k: v for k, v in self.cpu_s.items() if k != "host"}
        parts = [f"{k} {1000 * v / self.ok:.2f} ms" for k, v in named.items()]
        text = "CPU per request: " + ", ".join(parts)
        if "host" in self.cpu_s:
            other = max(0.0, self.cpu_s["host"] - sum(named.values())) / self.seconds
            text += f"; host {self.host_cpu_busy_pct:.0f}% busy, other processes {other:.2f} cores"
        return text


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies over all cores from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def host_cpu_busy(seconds: float = 1.0) -> float | None:
    """Percent of all cores busy over ``seconds`` (None off Linux): run it before a benchmark
    to see whether something else on the machine is eating the CPU the figures depend on."""
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    if not before or not after or after[1] <= before[1]:
        return None
    return 100 * (after[0] - before[0]) / (after[1] - before[1])


def _client(
    index: int,
    host: str,
    port: int,
    paths: Sequence[str],
    seconds: float,
    expect_status: int,
    headers: Mapping[str, str],
    timeout: float,
    ready,
    go,
    results,
    path_factory: Callable[[int, int], str] | None = None,
) -> None:
    """One load-generating process: GET ``paths`` round-robin (or ``path_factory(index, n)``
    for its n-th request) until the deadline."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # and terminates us with SIGTERM if need be
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    samples: list[str] = []
    n_paths = len(paths)
    i = index  # clients start at different paths
    n = 0  # this client's request counter, for path_factory
    ready.put(index)
    if not go.wait(timeout=90):
        return  # the parent gave up (or died): no load without a measurement
    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        t0 = time.perf_counter()
        if t0 >= deadline:
            break
        if path_factory is not None:
            path = path_factory(index, n)
            n += 1
        else:
            path = paths[i % n_paths]
            i += 1
        try:
            # Keep-alive: http.client reuses the connection, and reconnects by itself when the
            # server closed it (as gunicorn's sync workers do after each response).
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException) as exc:
            errors += 1
            if len(samples) < 5:
                samples.append(f"{path}: {exc!r}")
            conn.close()
            time.sleep(0.01)
            continue
        elapsed = time.perf_counter() - t0
        statuses[resp.status] += 1
        if resp.status == expect_status:
            latencies.append(elapsed * 1000)
        else:
            errors += 1
            if len(samples) < 5:
                samples.append(f"{path}: HTTP {resp.status}")
    wall = time.perf_counter() - start
    conn.close()
    results.put(
        {
            "wall": wall,
            "ok": len(latencies),
            "errors": errors,
            "statuses": dict(statuses),
            "samples": samples,
            "latencies": latencies,
            "cpu": time.process_time() - cpu0,
        }
    )


def _collect(queue, n: int, *, deadline: float, what: str) -> list:
    items = []
    while len(items) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what} ({len(items)}/{n})")
        try:
            items.append(queue.get(timeout=0.2))
        except Empty:
            continue
    return items


def run_load(
    port: int,
    paths: Sequence[str],
    *,
    seconds: float = 10,
    clients: int = 4,
    expect_status: int = 302,
    headers: Mapping[str, str] | None = None,
    host: str = HOST,
    timeout: float = 10,
    label: str = "",
    cpu_probes: Mapping[str, Callable[[], float]] | None = None,
    path_factory: Callable[[int, int], str] | None = None,
) -> LoadResult:
    """Hit ``paths`` (round-robin) from ``clients`` processes for ``seconds``; redirects are not
    followed. A response with another status than ``expect_status``, or a failed request, is an
    error. Latency percentiles cover the successful requests. ``cpu_probes`` name callables
    returning cumulative CPU seconds (``Server.cpu_seconds``, ``db_cpu_seconds``), read before
    and after the run.

    ``path_factory(client_index, n)``, if given, replaces ``paths``: each client asks it for the
    path of its n-th request (n counts from 0 in every client), so every request can be unique.
    It runs in the forked client processes (with the spawn start method it must be picklable,
    e.g. a module-level function or a ``functools.partial`` of one).
    """
    if not paths and path_factory is None:
        raise ValueError("run_load needs at least one path, or a path_factory")
    # fork: the clients need nothing from a re-imported __main__, so a benchmark script works
    # without an `if __name__ == "__main__"` guard (spawn elsewhere, which needs one).
    probes = dict(cpu_probes or {})
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    ready, go, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(
            target=_client,
            args=(
                i,
                host,
                port,
                list(paths),
                seconds,
                expect_status,
                dict(headers or {}),
                timeout,
                ready,
                go,
                results,
                path_factory,
            ),
            daemon=True,
        )
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    parts: list[dict] = []
    finished = False
    try:
        # Short waits in a loop, so that Ctrl-C is seen at once rather than after the phase.
        _collect(ready, clients, deadline=time.monotonic() + 60, what="load clients to start")
        probes_before = {name: probe() for name, probe in probes.items()}
        cpu_before = _cpu_times()
        go.set()
        finish_by = time.monotonic() + seconds + timeout + 30
        parts = _collect(results, clients, deadline=finish_by, what="load clients to finish")
        cpu_after = _cpu_times()
        probes_after = {name: probe() for name, probe in probes.items()}
        finished = True
    finally:
        for p in procs:
            if not finished:
                p.terminate()
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        results.close()
        ready.close()
    cpu_s = {"clients": sum(part["cpu"] for part in parts)}
    cpu_s.update({name: probes_after[name] - probes_before[name] for name in probes})
    busy = None
    if cpu_before and cpu_after and cpu_after[1] > cpu_before[1]:
        busy = 100 * (cpu_after[0] - cpu_before[0]) / (cpu_after[1] - cpu_before[1])
        cpu_s["host"] = (cpu_after[0] - cpu_before[0]) / _CLK_TCK
    statuses: Counter[int] = Counter()
    for part in parts:
        statuses.update(part["statuses"])
    return LoadResult(
        label=label
        or (", ".join(paths[:2]) + (" ..." if len(paths) > 2 else "") if paths else "path_factory"),
        seconds=max(part["wall"] for part in parts),
        clients=clients,
        ok=sum(part["ok"] for part in parts),
        errors=sum(part["errors"] for part in parts),
        statuses=dict(statuses),
        error_samples=[s for part in parts for s in part["samples"]][:5],
        latencies_ms=[x for part in parts for x in part["latencies"]],
        cpu_s=cpu_s,
        host_cpu_busy_pct=busy,
    )


def pool_results(label: str, results: Sequence[LoadResult]) -> LoadResult:
    """Several runs of the same thing pooled: summed counts and time, all latencies."""
    return LoadResult(
        label=label,
        seconds=sum(r.seconds for r in results),
        clients=results[0].clients,
        ok=sum(r.ok for r in results),
        errors=sum(r.errors for r in results),
        statuses=dict(sum((Counter(r.statuses) for r in results), Counter())),
        latencies_ms=[x for r in results for x in r.latencies_ms],
        cpu_s=dict(sum((Counter(r.cpu_s) for r in results), Counter())),
        host_cpu_busy_pct=(
            statistics.fmean(r.host_cpu_busy_pct for r in results)
            if all(r.host_cpu_busy_pct is not None for r in results)
            else None
        ),
    )


def broker_preflight(broker_url: str) -> bool:
    """Refuse to share the broker with another worker; say how busy the host is. False: stop."""
    others = redis_consumers(broker_url)
    if others:
        log(
            f"another Celery worker consumes from {broker_url}: {', '.join(others[:4])}. It would "
            "take this benchmark's tasks and the purge would drop its own; not running (wait for "
            "it to finish, or pass --broker-url with another Redis database)"
        )
        return False
    busy = host_cpu_busy(1.0)
    if busy is not None:
        log(f"host CPU {busy:.0f}% busy before the benchmark ({os.cpu_count()} cores)")
        if busy > 15:
            log("  warning: something else is using the CPU; figures will be lower and noisier")
    return True
