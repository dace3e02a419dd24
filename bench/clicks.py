"""Click redirects per second: the real ``/c/<code>`` view against a bare 302 view.

Both run in the same gunicorn, with the same settings and middleware, on PostgreSQL, in the same
run: bare, then real, then bare again (``--rounds`` adds real/bare pairs), so drift shows. The
real view reads the link (one SELECT) and records the click (one INSERT); afterwards the number of
Click rows inserted must equal the number of real requests answered 302.

    cd /work/main && .venv/bin/python bench/clicks.py [--seconds 10] [--clients 4] [--workers 2]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os

from bench import harness
from bench.harness import LoadResult, log

BARE_PATH = "/bench/bare/redirect"
CLICK_TABLE = "attribution_click"
# A phone browser, as most affiliate clicks are; sent to both sides alike.
USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
HEADERS = {"User-Agent": USER_AGENT, "Accept": "text/html"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per measured phase [10]")
    parser.add_argument("--clients", type=int, default=4, help="load client processes [4]")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers [2]")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per side [2]")
    parser.add_argument(
        "--rounds", type=int, default=1, help="real/bare pairs after the first bare phase [1]"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1 or args.workers < 1 or args.rounds < 1:
        parser.error("--seconds, --clients, --workers and --rounds must be positive")
    return args


def check_once(port: int, path: str) -> str:
    status, headers, _ = harness.http_get(port, path, headers=HEADERS)
    location = headers.get("Location", "")
    if status != 302 or not location:
        raise RuntimeError(f"GET {path} answered {status} (Location {location!r}), expected 302")
    return location


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    idle = harness.host_cpu_busy(1.0)
    if idle is not None:
        log(f"host CPU {idle:.0f}% busy before the benchmark ({os.cpu_count()} cores)")
        if idle > 15:
            log("  warning: something else is using the CPU; figures will be lower and noisier")
    env = harness.prepare_database()
    demo = harness.seed_demo(env)
    codes = [link["code"] for link in demo["links"]]
    if not codes:
        raise RuntimeError("seed_demo returned no links")
    real_paths = [f"/c/{code}" for code in codes]
    log(f"{len(real_paths)} tracking links; real paths /c/<code> round-robin over all of them")

    def load(paths: list[str], seconds: float, label: str) -> LoadResult:
        return harness.run_load(
            server.port,
            paths,
            seconds=seconds,
            clients=args.clients,
            headers=HEADERS,
            label=label,
            cpu_probes={"server": server.cpu_seconds, "postgres": harness.db_cpu_seconds},
        )

    bare_runs: list[LoadResult] = []
    real_runs: list[LoadResult] = []
    inserted: list[int] = []
    with harness.Server(env, workers=args.workers) as server:
        log(f"sanity: GET {real_paths[0]} -> 302 {check_once(server.port, real_paths[0])}")
        log(f"sanity: GET {BARE_PATH} -> 302 {check_once(server.port, BARE_PATH)}")
        if args.warmup > 0:
            log(f"warm-up: {args.warmup:g}s per side, not measured")
            load([BARE_PATH], args.warmup, "warm-up bare")
            load(real_paths, args.warmup, "warm-up real")

        phases = ["bare"] + ["real", "bare"] * args.rounds
        for n, kind in enumerate(phases, 1):
            log(f"phase {n}/{len(phases)}: {kind}, {args.clients} clients, {args.seconds:g}s")
            if kind == "bare":
                result = load(
                    [BARE_PATH], args.seconds, f"bare 302 view (run {len(bare_runs) + 1})"
                )
                bare_runs.append(result)
            else:
                before = harness.count_rows(CLICK_TABLE)
                result = load(
                    real_paths, args.seconds, f"real /c/<code> (run {len(real_runs) + 1})"
                )
                inserted.append(harness.count_rows(CLICK_TABLE) - before)
                real_runs.append(result)
            log("  " + result.summary())
            log("  " + result.cpu_summary())
            if result.errors:
                log(f"  statuses {result.statuses}; samples: {result.error_samples}")
        server_log = server.log_tail()

    idle_after = harness.host_cpu_busy(1.0)
    if idle_after is not None:
        log(f"host CPU {idle_after:.0f}% busy after the benchmark (server stopped)")

    bare = harness.pool_results("bare 302 view", bare_runs)
    real = harness.pool_results("real /c/<code>", real_runs)
    ratio = real.rps / bare.rps if bare.rps else float("nan")
    rows, ok = sum(inserted), real.ok

    print()
    print(
        f"clicks benchmark: {args.clients} client processes, {args.workers} gunicorn sync "
        f"workers, {args.seconds:g}s per phase, PostgreSQL {harness.PG_HOST}:{harness.PG_PORT}"
    )
    for result in [*bare_runs, *real_runs]:
        print(f"  {result.summary()}")
        print(f"      {result.cpu_summary()}")
    if len(bare_runs) > 1:
        first, last = bare_runs[0].rps, bare_runs[-1].rps
        print(f"  bare drift first -> last run: {100 * (last - first) / first:+.1f}%")
    print()
    width = max(len(bare.label), len(real.label)) + 1
    for result in (bare, real):
        print(
            f"{result.label + ':':<{width}} {result.rps:7.0f} req/s "
            f"(p50 {result.p50_ms:.2f} ms, p95 {result.p95_ms:.2f} ms)"
        )
    print(f"{'ratio real/bare:':<{width}} {ratio:7.2f}")
    verdict = "OK" if rows == ok else "MISMATCH"
    print(f"click rows inserted: {rows}, successful real requests: {ok}  {verdict}")
    errors = bare.errors + real.errors
    if errors:
        print(f"errors: {errors} (bare {bare.statuses}, real {real.statuses})")
    if "Traceback" in server_log or "[ERROR]" in server_log:
        print(f"server log (tail):\n{server_log}")
    return 0 if rows == ok and not errors else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; server stopped")
        sys.exit(130)
