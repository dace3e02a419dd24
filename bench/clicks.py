"""Click redirects per second: the real ``/c/<code>`` against a bare Django 302 view.

Both run in the same server, with the same settings, on PostgreSQL, in the same run. The bare
view goes through Django's handler and middleware, as any page does; ``/c/`` is answered by the
click fast path in front of them (``attribution.fastpath``), as deployed. In turn: bare, then
real, then bare again (``--rounds`` adds real/bare pairs), so drift shows. The server is the
production one by default: gunicorn with ``gunicorn.conf.py``'s gthread workers (one process per
core, 8 threads each), clicks written by group commit; ``--server`` adds gunicorn's sync workers
and granian for comparison. Afterwards the number of Click rows inserted must equal the number
of real requests answered 302.

16 load clients by default: as many requests as the shipped server takes at once (2 processes x 8
threads). With 4 the real side waits on its commits (about one click a group) while the bare view
already fills the CPU; the summary prints the client count, and ``--clients 4`` shows that case.

    .venv/bin/python bench/clicks.py [--seconds 10] [--clients 16] [--write sync|buffered]
        [--server gthread sync granian]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
import subprocess
import time
from dataclasses import dataclass

from bench import harness
from bench.harness import LoadResult, log

BARE_PATH = "/bench/bare/redirect"
CLICK_TABLE = "attribution_click"
GOAL = 0.8
# A phone browser, as most affiliate clicks are; sent to both sides alike.
USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
HEADERS = {"User-Agent": USER_AGENT, "Accept": "text/html"}
SERVERS = ("gthread", "sync", "granian")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per measured phase [10]")
    parser.add_argument(
        "--clients",
        type=int,
        default=16,
        help="load client processes [16: the requests the server takes at once, 2 x 8 threads]",
    )
    parser.add_argument(
        "--write",
        choices=("sync", "buffered"),
        default="sync",
        help="CLICK_WRITE: sync (shipped: the 302 once the click is committed) or buffered [sync]",
    )
    parser.add_argument(
        "--server",
        nargs="+",
        choices=SERVERS,
        default=["gthread"],
        help="servers to measure: gthread (gunicorn.conf.py, shipped), sync, granian [gthread]",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="processes [one per core]"
    )
    parser.add_argument("--threads", type=int, default=8, help="threads per process [8]")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per side [2]")
    parser.add_argument(
        "--rounds", type=int, default=1, help="real/bare pairs after the first bare phase [1]"
    )
    parser.add_argument(
        "--database",
        default="portal_bench_clicks",
        help="benchmark database, dropped and made anew [portal_bench_clicks]",
    )
    parser.add_argument("--no-steps", action="store_true", help="skip the per-step timings")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1 or args.workers < 1 or args.rounds < 1:
        parser.error("--seconds, --clients, --workers and --rounds must be positive")
    if "bench" not in args.database:
        parser.error("--database must contain 'bench' (it is dropped)")
    return args


def check_once(port: int, path: str) -> str:
    status, headers, _ = harness.http_get(port, path, headers=HEADERS)
    location = {k.lower(): v for k, v in headers.items()}.get("location", "")
    if status != 302 or not location:
        raise RuntimeError(f"GET {path} answered {status} (Location {location!r}), expected 302")
    return location


@dataclass
class Measured:
    server: str
    bare_runs: list[LoadResult]
    real_runs: list[LoadResult]
    rows: int
    log_tail: str

    @property
    def bare(self) -> LoadResult:
        return harness.pool_results("bare 302 view", self.bare_runs)

    @property
    def real(self) -> LoadResult:
        return harness.pool_results("real /c/<code>", self.real_runs)

    @property
    def ratio(self) -> float:
        return self.real.rps / self.bare.rps if self.bare.rps else float("nan")


def make_server(kind: str, env: dict[str, str], args: argparse.Namespace) -> harness.Server:
    if kind == "granian":
        return harness.GranianServer(env, workers=args.workers, threads=args.threads)
    threads = 1 if kind == "sync" else args.threads
    return harness.Server(env, workers=args.workers, threads=threads)


def measure(kind: str, env: dict[str, str], paths: list[str], args) -> Measured:
    bare_runs: list[LoadResult] = []
    real_runs: list[LoadResult] = []
    inserted: list[int] = []
    with make_server(kind, env, args) as server:

        def load(paths: list[str], seconds: float, label: str) -> LoadResult:
            return harness.run_load(
                server.port,
                paths,
                seconds=seconds,
                clients=args.clients,
                headers=HEADERS,
                label=label,
                cpu_probes={
                    "server": server.cpu_seconds,
                    "postgres": lambda: harness.db_cpu_seconds(args.database),
                },
            )

        log(f"sanity: GET {paths[0]} -> 302 {check_once(server.port, paths[0])}")
        log(f"sanity: GET {BARE_PATH} -> 302 {check_once(server.port, BARE_PATH)}")
        if args.warmup > 0:
            log(f"warm-up: {args.warmup:g}s per side, not measured")
            load([BARE_PATH], args.warmup, "warm-up bare")
            load(paths, args.warmup, "warm-up real")
        phases = ["bare"] + ["real", "bare"] * args.rounds
        for n, side in enumerate(phases, 1):
            log(
                f"{kind} phase {n}/{len(phases)}: {side}, {args.clients} clients, {args.seconds:g}s"
            )
            if side == "bare":
                result = load([BARE_PATH], args.seconds, f"{kind} bare (run {len(bare_runs) + 1})")
                bare_runs.append(result)
            else:
                before = harness.count_rows(CLICK_TABLE, dbname=args.database)
                result = load(paths, args.seconds, f"{kind} real (run {len(real_runs) + 1})")
                # sync: written before each 302, nothing is still on its way. buffered: written
                # within CLICK_GROUP_COMMIT_WAIT_MS (10) of its 302.
                if args.write == "buffered":
                    time.sleep(0.5)
                inserted.append(harness.count_rows(CLICK_TABLE, dbname=args.database) - before)
                real_runs.append(result)
            log("  " + result.summary())
            log("  " + result.cpu_summary())
            if result.errors:
                log(f"  statuses {result.statuses}; samples: {result.error_samples}")
        tail = server.log_tail()
    return Measured(kind, bare_runs, real_runs, sum(inserted), tail)


def per_request_ms(result: LoadResult, name: str) -> float:
    return 1000 * result.cpu_s.get(name, 0.0) / result.ok if result.ok else float("nan")


def report(measured: Measured, args: argparse.Namespace) -> bool:
    bare, real = measured.bare, measured.real
    print()
    print(f"{measured.server}: {args.clients} client processes, {args.seconds:g}s per phase")
    for result in [*measured.bare_runs, *measured.real_runs]:
        print(f"  {result.summary()}")
        print(f"      {result.cpu_summary()}")
    if len(measured.bare_runs) > 1:
        first, last = measured.bare_runs[0].rps, measured.bare_runs[-1].rps
        print(f"  bare drift first -> last run: {100 * (last - first) / first:+.1f}%")
    for result in (bare, real):
        print(
            f"  {result.label + ':':<16} {result.rps:7.0f} req/s  p50 {result.p50_ms:.2f} ms  "
            f"p95 {result.p95_ms:.2f} ms  p99 {result.p99_ms:.2f} ms"
        )
    verdict = "met" if measured.ratio >= GOAL else "NOT met"
    print(f"  ratio real/bare: {measured.ratio:.2f} (goal {GOAL}: {verdict})")
    server_bare, server_real = per_request_ms(bare, "server"), per_request_ms(real, "server")
    pg_real = per_request_ms(real, "postgres")
    print(
        f"  CPU a request: server {server_bare:.3f} ms bare, {server_real:.3f} ms real "
        f"(the click's own {server_real - server_bare:+.3f} ms); PostgreSQL "
        f"{per_request_ms(bare, 'postgres'):.3f} ms bare, {pg_real:.3f} ms a click; load "
        f"clients {per_request_ms(real, 'clients'):.3f} ms"
    )
    cores = server_real + pg_real
    if cores > 0:
        print(
            f"  clicks/s per core (web + PostgreSQL CPU): {1000 / cores:,.0f}; web alone "
            f"{1000 / server_real:,.0f}, PostgreSQL alone {1000 / pg_real:,.0f}"
            if pg_real > 0
            else f"  clicks/s per core (web CPU): {1000 / server_real:,.0f}"
        )
    ok = measured.rows == real.ok
    print(
        f"  click rows inserted: {measured.rows}, real requests answered 302: {real.ok}  "
        f"{'OK' if ok else 'MISMATCH'}"
    )
    errors = bare.errors + real.errors
    if errors:
        print(f"  errors: {errors} (bare {bare.statuses}, real {real.statuses})")
    if "Traceback" in measured.log_tail or "[ERROR]" in measured.log_tail:
        print(f"  server log (tail):\n{measured.log_tail}")
    return ok and not errors


def steps(env: dict[str, str], code: str) -> str:
    proc = subprocess.run(
        [harness.PYTHON, "-m", "bench.click_steps", code],
        cwd=harness.REPO_ROOT,
        env={**env, "CLICK_GROUP_COMMIT": "false"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else f"  (failed: {proc.stderr[-2000:]})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    busy = harness.host_cpu_busy(1.0)
    if busy is not None:
        log(f"host CPU {busy:.0f}% busy before the benchmark ({os.cpu_count()} cores)")
        if busy > 15:
            log("  warning: something else is using the CPU; figures will be lower and noisier")
    env = harness.prepare_database(args.database, CLICK_WRITE=args.write)
    demo = harness.seed_demo(env)
    codes = [link["code"] for link in demo["links"]]
    if not codes:
        raise RuntimeError("seed_demo returned no links")
    paths = [f"/c/{code}" for code in codes]
    log(f"{len(paths)} tracking links; real paths /c/<code> round-robin over all of them")

    measured = [measure(kind, env, paths, args) for kind in args.server]
    busy_after = harness.host_cpu_busy(1.0)
    if busy_after is not None:
        log(f"host CPU {busy_after:.0f}% busy after the benchmark (server stopped)")

    print()
    print(f"clicks benchmark, PostgreSQL {harness.PG_HOST}:{harness.PG_PORT}/{args.database}")
    print(
        f"  {args.workers} processes x {args.threads} threads (sync: 1); {len(paths)} links; "
        f"CLICK_WRITE={args.write}"
    )
    good = [report(m, args) for m in measured]
    if not args.no_steps:
        print()
        print("where a click's own Python time goes (each step alone, one process):")
        print(steps(env, codes[0]), end="")
    if len(measured) > 1:
        print()
        print("summary:")
        for m in measured:
            print(
                f"  {m.server:<8} bare {m.bare.rps:7.0f}/s  real {m.real.rps:7.0f}/s  "
                f"ratio {m.ratio:.2f}  real p50/p95/p99 {m.real.p50_ms:.1f}/"
                f"{m.real.p95_ms:.1f}/{m.real.p99_ms:.1f} ms"
            )
    return 0 if all(good) else 1


if __name__ == "__main__":
    harness.stop_on_signals()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; server stopped")
        sys.exit(130)
