"""Postbacks attributed per second by a real Celery worker, against the ingestion rate measured
in the same run, on PostgreSQL with Redis as the broker.

Phase A, NO worker running: a mix of postbacks is sent through gunicorn (the production
configuration: gthread workers, group commit, batched hand-off) to the real
``/postbacks/<kind>/<token>/`` endpoint for ``--seconds``, every one unique; each is stored in the
inbox and its id is published to Redis in an ``attribution.process_postbacks`` batch task, where
it waits. That gives the ingestion rate. Phase B: gunicorn is stopped and ``celery -A portal worker
--concurrency=2`` starts; the inbox is polled until every row of phase A is ``processed``. That
gives the attribution rate (rows processed over the span between the first and the last
``processed_at``; the worker's start-up is excluded, and reported apart).

The mix, per client and per ten requests:

- 4 AppsFlyer iOS installs with the click id of a real demo click (attributed by click id)
- 1 AppsFlyer iOS install without a click id, with a device id no click has (organic, after the
  device-id lookup misses)
- 2 operator (s2s) registrations with a click id and a new player id
- 1 s2s first deposit with a click id (the player of the first registration)
- 1 s2s first deposit with only the player id (the second registration's player: chained through
  the registration's identity)
- 1 s2s deposit with only the player id (the first registration's player)

Every processed postback must have made exactly one conversion. Processing one may publish
follow-up tasks (the affiliate's outbound postbacks); the worker runs those too, after the
postbacks in the queue, and the time until the queue is empty is reported as well.

CPU figures name the consumer: "postgres" is the local PostgreSQL server, sessions that ended
included (a worker that reconnects for every task leaves no long-lived backend to measure), less
the live backends of other databases (other people's benchmarks); a note says when other
databases were busy.

    cd /work/main && .venv/bin/python bench/attribution.py [--seconds 10] [--clicks 5000]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
import secrets
import time
from dataclasses import dataclass

from bench import harness
from bench.harness import log
from bench.postbacks import HEADERS, check_once, purge

POSTBACK_TABLE = "attribution_postback"
BROKER_URL = harness.BENCH_BROKER_URL
# Installs are matched to clicks of the last days, inside the campaigns' 7-day click lookback.
CLICK_DAYS = 6


@dataclass(frozen=True)
class AttributionMix:
    """``path_factory`` for ``run_load``: the mix above, unique per (tag, client, n)."""

    appsflyer_prefix: str  # /postbacks/appsflyer/<token>/
    s2s_prefix: str  # /postbacks/s2s/<token>/
    tag: str  # hex, unique per run_load call
    ios_clicks: tuple[str, ...]  # click ids of iOS clicks (the AppsFlyer source is the iOS app)
    any_clicks: tuple[str, ...]  # click ids of any platform, for the operator's events
    now: int  # unix seconds: install and touch times

    def player(self, client: int, n: int) -> str:
        return f"pl-{self.tag}-{client}-{n}"

    def install(self, client: int, n: int, click_id: str) -> str:
        tag_number = int(self.tag, 16)
        idfa = f"{tag_number & 0xFFFFFFFF:08X}-{client:04X}-4000-8000-{n:012X}"
        click = f"&clickid={click_id}" if click_id else ""
        return (
            f"{self.appsflyer_prefix}?appsflyer_id={self.now}000-{tag_number}{client:02d}{n:09d}"
            f"&event_name=install&install_unix_ts={self.now}{click}&idfa={idfa}"
            "&app_id=id1234567890&bundle_id=com.luckyspins.casino&platform=ios&country_code=DE"
            f"&ip=198.51.{client % 256}.{n % 254 + 1}&attributed_touch_type=click"
            f"&attributed_touch_time={self.now - 600}&media_source=affportal_int"
            "&device_model=iPhone15%2C2&os_version=17.5&app_version=3.2.1&language=en-US"
        )

    def s2s(self, client: int, n: int, event: str, **params: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in params.items() if v)
        return f"{self.s2s_prefix}?event={event}&txid=tx-{self.tag}-{client}-{n}{extra}"

    def __call__(self, client: int, n: int) -> str:
        slot = n % 10
        spread = client * 7919 + n
        if slot < 4:
            return self.install(client, n, self.ios_clicks[spread % len(self.ios_clicks)])
        if slot == 4:
            return self.install(client, n, "")  # organic
        click_id = self.any_clicks[spread % len(self.any_clicks)]
        if slot in (5, 6):
            return self.s2s(client, n, "reg", click_id=click_id, player_id=self.player(client, n))
        if slot == 7:  # the FTD of slot 5's player, with a click id
            return self.s2s(
                client,
                n,
                "ftd",
                click_id=click_id,
                player_id=self.player(client, n - 2),
                amount="50.00",
                currency="EUR",
            )
        if slot == 8:  # the FTD of slot 6's player, by player id only
            return self.s2s(
                client,
                n,
                "ftd",
                player_id=self.player(client, n - 2),
                amount="20.00",
                currency="EUR",
            )
        # slot 9: a later deposit of slot 5's player, by player id only
        return self.s2s(
            client, n, "dep", player_id=self.player(client, n - 4), amount="30.00", currency="EUR"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="ingestion phase [10]")
    parser.add_argument("--clients", type=int, default=16, help="load client processes [16]")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers [2]")
    parser.add_argument(
        "--threads", type=int, default=8, help="threads per gunicorn worker (gthread) [8]"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="celery worker processes [2]")
    parser.add_argument("--clicks", type=int, default=5000, help="demo clicks to seed [5000]")
    parser.add_argument(
        "--drain-timeout", type=float, default=300, help="max seconds for phase B [300]"
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="experiments only: an environment variable for the worker alone, e.g. "
        "DJANGO_SETTINGS_MODULE of a settings variant (repeatable)",
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
    if any("=" not in item for item in args.worker_env):
        parser.error("--worker-env takes KEY=VALUE")
    if (
        min(args.seconds, args.clients, args.workers, args.threads, args.concurrency) <= 0
        or args.drain_timeout <= 0
    ):
        parser.error(
            "--seconds, --clients, --workers, --threads, --concurrency, --drain-timeout: positive"
        )
    if args.clicks < 100:
        parser.error("--clicks must be at least 100")
    return args


def inbox_status(base_id: int) -> dict[str, int]:
    """Inbox rows after ``base_id`` (this run's) by status."""
    with harness.pg_connect() as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM attribution_postback WHERE id > %s GROUP BY status",
            [base_id],
        ).fetchall()
    return dict(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    global BROKER_URL  # one broker for the whole run, chosen on the command line
    BROKER_URL = args.broker_url
    if not harness.broker_preflight(BROKER_URL):
        return 2
    env = harness.prepare_database(CELERY_BROKER_URL=BROKER_URL)
    try:
        return run(args, env)
    finally:
        purge(env, "end")
        clear_unacked("end")


def clear_unacked(when: str) -> None:
    try:
        stale = harness.redis_clear_unacked(BROKER_URL)
    except Exception as exc:  # cleanup must not hide the result
        log(f"clearing kombu's unacked messages ({when}) failed: {exc}")
        return
    if stale:
        log(f"dropped {stale} messages a stopped worker had left unacknowledged ({when})")


def click_ids(where: str, params: list) -> tuple[str, ...]:
    with harness.pg_connect() as conn:
        rows = conn.execute(
            f"SELECT click_id FROM attribution_click WHERE {where} ORDER BY id",  # noqa: S608
            params,
        ).fetchall()
    return tuple(r[0] for r in rows)


def other_db_note(before: dict[str, int]) -> str:
    busy = harness.other_db_activity(before)
    if not busy:
        return ""
    listed = ", ".join(f"{name} {n} transactions" for name, n in busy.items())
    return f"other databases were busy meanwhile ({listed}): the postgres CPU figure includes them"


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    demo = harness.seed_demo(env, clicks=args.clicks)
    # The seed may itself send (and process) demo postbacks, publishing their tasks: drop them,
    # so that the worker meets only this run's.
    purge(env, "after the seed")
    sources = {s["kind"]: s for s in demo["postback_sources"]}
    recent = "created_at > now() - make_interval(days => %s)"
    ios_clicks = click_ids(f"platform = 'ios' AND {recent}", [CLICK_DAYS])
    any_clicks = click_ids(recent, [CLICK_DAYS])
    if not ios_clicks or not any_clicks:
        raise RuntimeError(f"no demo clicks in the last {CLICK_DAYS} days; raise --clicks")
    base_id = harness.query_scalar("SELECT coalesce(max(id), 0) FROM attribution_postback")
    log(
        f"{harness.count_rows('attribution_click')} clicks and {base_id} demo postbacks seeded; "
        f"this run's postbacks use {len(ios_clicks)} iOS and {len(any_clicks)} other click ids "
        f"of the last {CLICK_DAYS} days"
    )
    nonce = secrets.randbits(24)
    mix = AttributionMix(
        appsflyer_prefix=f"/postbacks/appsflyer/{sources['appsflyer']['token']}/",
        s2s_prefix=f"/postbacks/s2s/{sources['s2s']['token']}/",
        tag=f"{nonce:06x}",
        ios_clicks=ios_clicks,
        any_clicks=any_clicks,
        now=int(time.time()),
    )

    # --- phase A: ingestion, no worker ---------------------------------------------------------
    with harness.Server(env, workers=args.workers, threads=args.threads) as server:
        sanity = AttributionMix(**{**mix.__dict__, "tag": f"{nonce:06x}0"})
        for n in (0, 5):
            log(f"sanity: GET {sanity(9, n)[:80]}... -> {check_once(server.port, sanity(9, n))}")
        rows_before = harness.count_rows(POSTBACK_TABLE)
        queued_before = harness.redis_queue_length(BROKER_URL)
        log(
            f"phase A: ingestion through gunicorn, {args.clients} clients, {args.seconds:g}s; "
            f"NO worker running (tasks wait in {BROKER_URL})"
        )
        activity = harness.db_transactions()
        ingest = harness.run_load(
            server.port,
            [],
            path_factory=mix,
            seconds=args.seconds,
            clients=args.clients,
            headers=HEADERS,
            expect_status=200,
            label="ingestion (real endpoint, mix)",
            cpu_probes={
                "server": server.cpu_seconds,
                "postgres": harness.postgres_cpu_seconds,
                "redis": lambda: harness.named_cpu_seconds("redis-server"),
            },
        )
        note_a = other_db_note(activity)
        rows_ingested = harness.count_rows(POSTBACK_TABLE) - rows_before
        queued = harness.redis_queue_length(BROKER_URL)
        log("  " + ingest.summary())
        log("  " + ingest.cpu_summary())
        if note_a:
            log("  " + note_a)
        if ingest.errors:
            log(f"  statuses {ingest.statuses}; samples: {ingest.error_samples}")
        server_log = server.log_tail()
    statuses = inbox_status(base_id)
    to_process = statuses.get("received", 0)
    log(
        f"this run's inbox rows after phase A: {statuses}; inserted {rows_ingested} for "
        f"{ingest.ok} requests answered 200; Redis queue {queued} tasks (+{queued - queued_before})"
    )

    # --- phase B: the worker drains the inbox --------------------------------------------------
    # Loopback only: affiliates' outbound postback URLs would make the worker call out.
    endpoints = harness.query_scalar(
        "SELECT CASE WHEN to_regclass('attribution_outboundendpoint') IS NULL THEN 0 "
        "ELSE (SELECT count(*) FROM attribution_outboundendpoint) END"
    )
    if endpoints:
        raise RuntimeError(
            f"{endpoints} outbound postback endpoints are configured in the seeded data: the "
            "worker would send HTTP requests off this machine; not starting it"
        )
    clear_unacked("before the worker starts")
    worker_env = dict(env, **dict(item.split("=", 1) for item in args.worker_env))
    if args.worker_env:
        log(f"worker environment changed for this run: {args.worker_env}")
    worker = harness.CeleryWorker(
        worker_env,
        concurrency=args.concurrency,
        extra_args=[f"--hostname=bench-attribution-{os.getpid()}@%h"],
    )
    probes = {
        "worker": worker.cpu_seconds,
        "postgres": harness.postgres_cpu_seconds,
        "redis": lambda: harness.named_cpu_seconds("redis-server"),
    }
    drained = False
    # One connection for the polling, and a query the partial index on waiting rows answers, so
    # that watching costs PostgreSQL next to nothing (no session per poll, no table scan).
    poll = harness.pg_connect()
    waiting_sql = "SELECT count(*) FROM attribution_postback WHERE status = 'received' AND id > %s"
    sessions_before = harness.db_sessions()
    first_seen = cpu_at_first = processed_at_first = None
    try:
        with worker:
            started = time.monotonic()
            deadline = started + args.drain_timeout
            next_report = started + 2
            while time.monotonic() < deadline:
                if not worker.alive():
                    raise RuntimeError(f"the celery worker exited:\n{worker.log_tail()}")
                waiting = poll.execute(waiting_sql, [base_id]).fetchone()[0]
                if first_seen is None and waiting < to_process:
                    first_seen = time.monotonic()
                    cpu_at_first = {name: probe() for name, probe in probes.items()}
                    activity = harness.db_transactions()
                    processed_at_first = to_process - waiting
                    log(f"  worker took its first task {first_seen - started:.1f}s after its start")
                if waiting == 0:
                    drained = True
                    break
                now = time.monotonic()
                if now >= next_report:
                    log(f"  {now - started:5.1f}s: {to_process - waiting} done, {waiting} waiting")
                    next_report = now + 2
                time.sleep(0.1)
            done = time.monotonic()
            cpu_at_end = {name: probe() for name, probe in probes.items()}
            note_b = other_db_note(activity) if first_seen is not None else ""
            # Follow-up tasks the processing published (outbound postbacks) still queue behind.
            follow_ups = harness.redis_queue_length(BROKER_URL) + harness.redis_unacked(BROKER_URL)
            queue_empty = None
            if drained:
                log(f"  all postbacks processed; {follow_ups} follow-up tasks still queued")
                while time.monotonic() < deadline and worker.alive():
                    queued = harness.redis_queue_length(BROKER_URL)
                    if queued + harness.redis_unacked(BROKER_URL) == 0:
                        queue_empty = time.monotonic()
                        break
                    now = time.monotonic()
                    if now >= next_report:
                        log(f"  {now - started:5.1f}s: {queued} follow-up tasks queued")
                        next_report = now + 2
                    time.sleep(0.1)
            worker_log = worker.log_tail()
    finally:
        poll.close()
    current = inbox_status(base_id)
    log(f"this run's inbox rows after phase B: {current}" + ("" if drained else " (TIMED OUT)"))
    time.sleep(1)  # let PostgreSQL flush its session statistics
    sessions = harness.db_sessions() - sessions_before

    with harness.pg_connect() as conn:
        first_at, last_at, n_processed = conn.execute(
            "SELECT min(processed_at), max(processed_at), count(*) FROM attribution_postback "
            "WHERE status = 'processed' AND id > %s",
            [base_id],
        ).fetchone()
        # A batch's rows share one processed_at: the first batch's are done at the span's start.
        n_first = conn.execute(
            "SELECT count(*) FROM attribution_postback "
            "WHERE status = 'processed' AND id > %s AND processed_at = %s",
            [base_id, first_at],
        ).fetchone()[0]
        mine = (
            "FROM attribution_conversion c JOIN attribution_postbackevent e ON e.id = c.event_id "
            "WHERE e.postback_id > %s"
        )
        outcomes = conn.execute(
            f"SELECT c.type, c.method, c.status, c.reason, count(*) {mine} "
            "GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC",
            [base_id],
        ).fetchall()
        conversions = conn.execute(f"SELECT count(*) {mine}", [base_id]).fetchone()[0]
        events = conn.execute(
            "SELECT count(*) FROM attribution_postbackevent WHERE postback_id > %s", [base_id]
        ).fetchone()[0]

    span = (last_at - first_at).total_seconds() if n_processed > 1 else 0.0
    attributed_rps = (n_processed - n_first) / span if span > 0 else float("nan")
    wall = done - started
    polled = (
        (n_processed - processed_at_first) / (done - first_seen)
        if first_seen is not None and done > first_seen
        else float("nan")
    )
    ratio = attributed_rps / ingest.rps if ingest.rps else float("nan")

    print()
    print(
        f"attribution benchmark: {args.clients} client processes, gunicorn {server.describe()}, "
        f"{args.seconds:g}s ingestion, celery worker --concurrency={args.concurrency}, "
        f"PostgreSQL {harness.PG_HOST}:{harness.PG_PORT}, broker {BROKER_URL}"
    )
    if args.worker_env:
        print(f"  EXPERIMENT: worker environment {args.worker_env}")
    print(f"  phase A (no worker): {ingest.summary()}")
    print(f"      {ingest.cpu_summary()}")
    if note_a:
        print(f"      {note_a}")
    startup = (first_seen - started) if first_seen is not None else float("nan")
    print(
        f"  phase B (worker): {n_processed} postbacks processed; first..last processed_at "
        f"{span:.2f}s ({n_processed - n_first} processed after the first batch of {n_first}); "
        f"{wall:.1f}s from the worker's start (start-up {startup:.1f}s); rate by polling "
        f"{polled:.0f}/s"
    )
    if cpu_at_first is not None and n_processed > processed_at_first:
        handled = n_processed - processed_at_first
        parts = ", ".join(
            f"{name} {1000 * (cpu_at_end[name] - cpu_at_first[name]) / handled:.2f} ms"
            for name in probes
        )
        busy = sum(cpu_at_end[name] - cpu_at_first[name] for name in probes) / (done - first_seen)
        print(f"      CPU per attributed postback (after the first one): {parts}; {busy:.2f} cores")
    if note_b:
        print(f"      {note_b}")
    if queue_empty is not None and first_seen is not None:
        print(
            f"      follow-up tasks: {follow_ups} still queued when the last postback was done; "
            f"queue empty {queue_empty - first_seen:.1f}s after the first task "
            f"({(n_processed - processed_at_first) / (queue_empty - first_seen):.0f} postbacks/s "
            "with their follow-ups)"
        )
    elif drained:
        print(f"      follow-up tasks: {follow_ups} still queued; the queue did not empty in time")
    print(
        f"      PostgreSQL sessions opened during phase B: {sessions} "
        f"({sessions / max(n_processed, 1):.2f} per postback)"
    )
    print("  conversions by type / method / status / reason:")
    for kind, method, status, reason, count in outcomes:
        print(f"      {count:6d}  {kind} / {method} / {status} / {reason}")
    print()
    width = len("ratio attributed/ingested:") + 1
    print(
        f"{'ingested (endpoint):':<{width}} {ingest.rps:7.0f} postbacks/s "
        f"(p50 {ingest.p50_ms:.2f} ms, p95 {ingest.p95_ms:.2f} ms)"
    )
    print(f"{'attributed (worker):':<{width}} {attributed_rps:7.0f} postbacks/s")
    verdict = "goal met" if ratio >= 1 else "BELOW the goal of 1"
    print(f"{'ratio attributed/ingested:':<{width}} {ratio:7.2f}  ({verdict})")
    if cpu_at_first is not None and n_processed > processed_at_first and ingest.ok:
        # Rates move with whatever else the machine runs; CPU per postback hardly does.
        cost_in = sum(ingest.cpu_s.get(k, 0.0) for k in ("server", "postgres", "redis"))
        cost_in = 1000 * cost_in / ingest.ok
        cost_out = sum(cpu_at_end[k] - cpu_at_first[k] for k in probes)
        cost_out = 1000 * cost_out / (n_processed - processed_at_first)
        print(
            f"{'CPU per postback:':<{width}} ingestion {cost_in:.2f} ms (server + postgres + "
            f"redis), attribution {cost_out:.2f} ms (worker + postgres + redis); cost ratio "
            f"ingestion/attribution {cost_in / cost_out:.2f}"
        )
    rows_ok = rows_ingested == ingest.ok
    print(
        f"inbox rows inserted in phase A: {rows_ingested}, successful requests: {ingest.ok}  "
        f"{'OK' if rows_ok else 'MISMATCH'}"
    )
    all_ok = drained and n_processed == to_process and current.get("failed", 0) == 0
    print(
        f"rows to process: {to_process}, processed: {n_processed}, still waiting: "
        f"{current.get('received', 0)}, failed: {current.get('failed', 0)}  "
        f"{'OK' if all_ok else 'INCOMPLETE'}"
    )
    conv_ok = conversions == n_processed == events
    print(
        f"conversions created: {conversions}, postback events: {events}, processed postbacks: "
        f"{n_processed}  {'OK' if conv_ok else 'MISMATCH'}"
    )
    for name, text in (("server", server_log), ("worker", worker_log)):
        if "Traceback" in text or "ERROR" in text:
            print(f"{name} log (tail):\n{text}")
    return 0 if rows_ok and all_ok and conv_ok and not ingest.errors else 1


if __name__ == "__main__":
    harness.stop_on_signals()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; server and worker stopped, queue purged")
        sys.exit(130)
