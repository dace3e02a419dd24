"""Durable postbacks accepted per second: the real ``/postbacks/<kind>/<token>/`` endpoint against
a bare view doing one INSERT of the same request into the same inbox table.

Both run in the same gunicorn, in the production configuration (``gunicorn.conf.py``: gthread
workers, ``--workers`` processes of ``--threads`` threads), with the same settings and
middleware, on PostgreSQL, in the same run: bare, then real, then bare again (``--rounds`` adds
real/bare pairs), so drift shows. ``--clients`` processes send at once over keep-alive
connections, as MMPs (which retry and send in parallel) do. Every request carries a unique
transaction id (s2s) or AppsFlyer id (``--kind appsflyer``), so each one is a new inbox row, never
a duplicate. The server runs with CELERY_BROKER_URL pointing at the local Redis, so the real
endpoint hands its rows to the workers as in production; no worker runs, the queue only grows,
and it is purged at the end.

What is compared is the whole design of the real endpoint against the naive one. The real
endpoint looks its source up by token, parses the request with the source's adapter, hands the
row to its process's group committer (POSTBACK_GROUP_COMMIT: concurrent requests share one
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` and one commit, and each answers only once its
row is committed), and its id to the hand-off thread (POSTBACK_HANDOFF=background: one
``attribution.process_postbacks`` task per batch of ids). The bare view
(``bench.views.bare_insert``) looks nothing up and parses nothing: ``Postback.objects.create(...)``
with the same fields, in its own transaction on the request's connection, and the same JSON
answer, enqueuing nothing. The real endpoint does more for each request (a token lookup, a parse,
a hand-off between threads); where it beats the bare view, it is by committing together and
publishing in batches what the bare view commits alone, so the figures depend on how many
requests a process has in flight at once (``--clients``, ``--threads``).

Afterwards the rows inserted must equal the real requests answered 200, and the ids inside the
tasks queued during the real phases must be as many. "postgres" in the CPU figures is the local
PostgreSQL server (backends, WAL writer, ...) less the live backends of other databases, "redis"
the redis-server process.

    cd /work/main && flock /tmp/bench.lock .venv/bin/python bench/postbacks.py \
        [--kind s2s|appsflyer] [--seconds 10] [--clients 16] [--workers 2] [--threads 8]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import secrets
import time
from dataclasses import dataclass

from bench import harness
from bench.harness import LoadResult, log

POSTBACK_TABLE = "attribution_postback"
BROKER_URL = harness.BENCH_BROKER_URL
# MMPs and operator backends send plain server-side HTTP clients; sent to both sides alike.
HEADERS = {"User-Agent": "bench-postback-sender/1.0", "Accept": "application/json"}
KINDS = ("s2s", "appsflyer")
# The hand-off thread publishes every 50 ms (attribution.handoff.FLUSH_INTERVAL): a phase's last
# ids are counted after this.
HANDOFF_SETTLE = 0.5


def queued_ids(broker_url: str) -> int:
    """Postback ids inside the attribution tasks waiting in the queue (a batch task holds many)."""
    total = 0
    for task, args in harness.redis_queued_task_args(broker_url):
        if task == "attribution.process_postbacks":
            total += len(args[0])
        elif task == "attribution.process_postback":
            total += 1
    return total


def s2s_query(tag: str, click_id: str, client: int, n: int, _now: int) -> str:
    """The operator's backend reporting a first deposit for one of our clicks."""
    return f"click_id={click_id}&event=ftd&txid={tag}-{client}-{n}&amount=10.00&currency=EUR"


def appsflyer_query(tag: str, click_id: str, client: int, n: int, now: int) -> str:
    """An AppsFlyer partner install postback (iOS), as a partner template fills it in."""
    tag_number = int(tag, 16)
    idfa = f"{tag_number & 0xFFFFFFFF:08X}-{client:04X}-4000-8000-{n:012X}"
    idfv = f"{n & 0xFFFFFFFF:08X}-{client:04X}-4000-9000-{tag_number & 0xFFFFFFFFFFFF:012X}"
    return (
        f"appsflyer_id={now}000-{tag_number}{client:02d}{n:09d}"
        "&event_name=install"
        f"&install_unix_ts={now}"
        f"&clickid={click_id}"
        f"&idfa={idfa}"
        f"&idfv={idfv}"
        "&app_id=id1234567890&bundle_id=com.luckyspins.casino&platform=ios"
        "&country_code=DE"
        f"&ip=203.0.{client % 256}.{n % 254 + 1}"
        "&attributed_touch_type=click"
        f"&attributed_touch_time={now - 600}"
        "&media_source=affportal_int&af_siteid=alice&campaign=iOS%20installs"
        "&device_model=iPhone15%2C2&os_version=17.5&app_version=3.2.1&sdk_version=v6.14.0"
        "&language=en-US&customer_user_id="
    )


QUERIES = {"s2s": s2s_query, "appsflyer": appsflyer_query}


@dataclass(frozen=True)
class PostbackPaths:
    """``path_factory`` for ``run_load``: a unique query per (client, n), under one tag.

    A module-level class, so it pickles (the harness forks, but spawn would work too).
    """

    prefix: str  # "/postbacks/s2s/<token>/" or "/bench/bare/insert/s2s/<source id>/"
    kind: str
    tag: str  # hex, unique per run_load call: keeps txids unique across phases
    click_ids: tuple[str, ...]
    now: int  # unix seconds, for install and touch times

    def __call__(self, client: int, n: int) -> str:
        click_id = self.click_ids[(client * 7919 + n) % len(self.click_ids)]
        return f"{self.prefix}?{QUERIES[self.kind](self.tag, click_id, client, n, self.now)}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=KINDS, default="s2s", help="postback source [s2s]")
    parser.add_argument("--seconds", type=float, default=10, help="per measured phase [10]")
    parser.add_argument("--clients", type=int, default=16, help="load client processes [16]")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes [2]")
    parser.add_argument(
        "--threads", type=int, default=8, help="threads per gunicorn worker (gthread) [8]"
    )
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per side [2]")
    parser.add_argument(
        "--rounds", type=int, default=1, help="real/bare pairs after the first bare phase [1]"
    )
    parser.add_argument(
        "--clicks", type=int, default=2000, help="demo clicks whose ids the postbacks carry [2000]"
    )
    parser.add_argument(
        "--broker-url",
        default=harness.BENCH_BROKER_URL,
        help=f"Redis broker on this machine [{harness.BENCH_BROKER_URL}]; no other Celery worker "
        "may consume from it (checked), and its default queue is purged",
    )
    args = parser.parse_args(argv)
    if not args.broker_url.startswith(("redis://127.0.0.1", "redis://localhost")):
        parser.error("--broker-url must be a Redis on loopback")
    if min(args.clients, args.workers, args.threads, args.rounds) < 1 or args.seconds <= 0:
        parser.error("--seconds, --clients, --workers, --threads and --rounds must be positive")
    if args.clicks < 1:
        parser.error("--clicks must be at least 1")
    return args


def check_once(port: int, path: str) -> dict:
    status, _, body = harness.http_get(port, path, headers=HEADERS)
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {"raw": body[:200].decode("utf-8", "replace")}
    if status != 200 or answer.get("status") != "accepted":
        raise RuntimeError(f"GET {path[:120]}... answered {status} {answer}, expected accepted")
    return answer


def purge(env: dict[str, str], when: str) -> None:
    try:
        dropped = harness.celery_purge(env)
    except Exception as exc:  # cleanup must not hide the result
        log(f"celery purge ({when}) failed: {exc}")
        return
    log(
        f"celery purge ({when}): {dropped} messages dropped from the '{harness.CELERY_QUEUE}' queue"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    global BROKER_URL  # one broker for the whole run, chosen on the command line
    BROKER_URL = args.broker_url
    if not harness.broker_preflight(BROKER_URL):
        return 2
    # Spelled out, whatever the calling shell has: the production path on both counts.
    env = harness.prepare_database(
        CELERY_BROKER_URL=BROKER_URL, POSTBACK_GROUP_COMMIT="true", POSTBACK_HANDOFF="background"
    )
    try:
        return run(args, env)
    finally:
        # Whatever happened (Ctrl-C included): the queue of a worker-less run must not pile up.
        purge(env, "end")


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    demo = harness.seed_demo(env, clicks=args.clicks)
    # The seed may itself send (and process) demo postbacks, publishing their tasks: drop them.
    purge(env, "after the seed")
    source = next((s for s in demo["postback_sources"] if s["kind"] == args.kind), None)
    if source is None:
        raise RuntimeError(f"seed_demo made no {args.kind} postback source")
    with harness.pg_connect() as conn:
        click_ids = tuple(
            row[0]
            for row in conn.execute(
                "SELECT click_id FROM attribution_click ORDER BY id LIMIT %s", [args.clicks]
            )
        )
    if not click_ids:
        raise RuntimeError("no clicks in attribution_click")
    real_prefix = f"/postbacks/{args.kind}/{source['token']}/"
    bare_prefix = f"/bench/bare/insert/{args.kind}/{source['id']}/"
    log(
        f"source {source['name']!r} (id {source['id']}); {len(click_ids)} click ids; "
        f"real {real_prefix}, bare {bare_prefix}"
    )
    log(
        f"server CELERY_BROKER_URL={BROKER_URL}: the real endpoint publishes "
        "attribution.process_postbacks per batch of ids; NO worker runs (the queue only grows)"
    )
    nonce = secrets.randbits(24)
    calls = iter(range(1, 10_000))

    def paths(prefix: str) -> PostbackPaths:
        tag = f"{nonce:06x}{next(calls):03x}"
        return PostbackPaths(prefix, args.kind, tag, click_ids, int(time.time()))

    def load(prefix: str, seconds: float, label: str) -> LoadResult:
        return harness.run_load(
            server.port,
            [],
            path_factory=paths(prefix),
            seconds=seconds,
            clients=args.clients,
            headers=HEADERS,
            expect_status=200,
            label=label,
            cpu_probes={
                "server": server.cpu_seconds,
                "postgres": harness.postgres_cpu_seconds,
                "redis": lambda: harness.named_cpu_seconds("redis-server"),
            },
        )

    bare_runs: list[LoadResult] = []
    real_runs: list[LoadResult] = []
    rows_real: list[int] = []
    rows_bare: list[int] = []
    enqueued: list[int] = []
    with harness.Server(env, workers=args.workers, threads=args.threads) as server:
        sanity_real = paths(real_prefix)(0, 0)
        log(f"sanity: GET {sanity_real[:90]}... -> {check_once(server.port, sanity_real)}")
        sanity_bare = paths(bare_prefix)(0, 0)
        log(f"sanity: GET {sanity_bare[:90]}... -> {check_once(server.port, sanity_bare)}")
        if args.warmup > 0:
            log(f"warm-up: {args.warmup:g}s per side, not measured")
            load(bare_prefix, args.warmup, "warm-up bare")
            load(real_prefix, args.warmup, "warm-up real")

        phases = ["bare"] + ["real", "bare"] * args.rounds
        for number, kind in enumerate(phases, 1):
            log(f"phase {number}/{len(phases)}: {kind}, {args.clients} clients, {args.seconds:g}s")
            rows_before = harness.count_rows(POSTBACK_TABLE)
            queued_before = queued_ids(BROKER_URL)
            if kind == "bare":
                label = f"bare one-INSERT view (run {len(bare_runs) + 1})"
                result = load(bare_prefix, args.seconds, label)
                bare_runs.append(result)
                rows_bare.append(harness.count_rows(POSTBACK_TABLE) - rows_before)
            else:
                label = f"real /postbacks/{args.kind}/ (run {len(real_runs) + 1})"
                result = load(real_prefix, args.seconds, label)
                real_runs.append(result)
                rows_real.append(harness.count_rows(POSTBACK_TABLE) - rows_before)
                time.sleep(HANDOFF_SETTLE)  # ids answered at the very end may not be published yet
                enqueued.append(queued_ids(BROKER_URL) - queued_before)
            log("  " + result.summary())
            log("  " + result.cpu_summary())
            if result.errors:
                log(f"  statuses {result.statuses}; samples: {result.error_samples}")
        server_log = server.log_tail()
        queued_total = harness.redis_queue_length(BROKER_URL)
        queued_total_ids = queued_ids(BROKER_URL)

    idle_after = harness.host_cpu_busy(1.0)
    if idle_after is not None:
        log(f"host CPU {idle_after:.0f}% busy after the benchmark (server stopped)")

    bare = harness.pool_results("bare one-INSERT view", bare_runs)
    real = harness.pool_results("real endpoint", real_runs)
    ratio = real.rps / bare.rps if bare.rps else float("nan")

    print()
    print(
        f"postbacks benchmark ({args.kind}): {args.clients} client processes, gunicorn "
        f"{args.workers} gthread workers x {args.threads} threads (bare and real alike), "
        f"{args.seconds:g}s per phase, PostgreSQL {harness.PG_HOST}:{harness.PG_PORT}, "
        f"broker {BROKER_URL}"
    )
    print(
        "  no Celery worker was running: the real endpoint's tasks were published to Redis and "
        f"left queued ({queued_total} messages holding {queued_total_ids} ids at the end), "
        "then purged"
    )
    for result in [*bare_runs, *real_runs]:
        print(f"  {result.summary()}")
        print(f"      {result.cpu_summary()}")
    if len(bare_runs) > 1:
        first, last = bare_runs[0].rps, bare_runs[-1].rps
        print(f"  bare drift first -> last run: {100 * (last - first) / first:+.1f}%")
    print()
    width = len("bare one-INSERT view:") + 1
    for name, result in (("bare one-INSERT view:", bare), ("real endpoint:", real)):
        print(
            f"{name:<{width}} {result.rps:7.0f} req/s "
            f"(p50 {result.p50_ms:.2f} ms, p95 {result.p95_ms:.2f} ms)"
        )
    print(f"{'ratio real/bare:':<{width}} {ratio:7.2f}")
    # The req/s above move with whatever else the machine runs; CPU per request hardly does.
    costs = [
        sum(1000 * r.cpu_s.get(k, 0.0) for k in ("server", "postgres", "redis")) / r.ok
        if r.ok
        else float("nan")
        for r in (bare, real)
    ]
    print(
        f"{'CPU per request:':<{width}} bare {costs[0]:.2f} ms, real {costs[1]:.2f} ms "
        f"(server + postgres + redis); cost ratio bare/real {costs[0] / costs[1]:.2f}"
    )
    rows_ok = sum(rows_real) == real.ok
    print(
        f"inbox rows inserted by real phases: {sum(rows_real)}, successful real requests: "
        f"{real.ok}  {'OK' if rows_ok else 'MISMATCH'}"
    )
    bare_ok = sum(rows_bare) == bare.ok
    print(
        f"inbox rows inserted by bare phases: {sum(rows_bare)}, successful bare requests: "
        f"{bare.ok}  {'OK' if bare_ok else 'MISMATCH'}"
    )
    queue_ok = sum(enqueued) == real.ok
    print(
        f"postback ids in the tasks enqueued during real phases: {sum(enqueued)}, successful "
        f"real requests: {real.ok}  {'OK' if queue_ok else 'MISMATCH'}"
    )
    errors = bare.errors + real.errors
    if errors:
        print(f"errors: {errors} (bare {bare.statuses}, real {real.statuses})")
    if "Traceback" in server_log or "[ERROR]" in server_log or "WARNING" in server_log:
        print(f"server log (tail):\n{server_log}")
    return 0 if rows_ok and bare_ok and queue_ok and not errors else 1


if __name__ == "__main__":
    harness.stop_on_signals()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; server stopped, queue purged")
        sys.exit(130)
