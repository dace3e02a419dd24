"""Player activity in, and the cohort report out, on PostgreSQL.

1. Ingestion: ``--rows`` player-day rows (default 1,000,000) sent to POST /api/v1/player-activity/
   in batches of ``--batch`` (10,000, the endpoint's limit) by one sender, as the operator's
   platform would send a day's file, to the portal under gunicorn. Rows/s beside, in the same
   run, a bare ``COPY`` of the same rows into a copy of the table (same columns, same unique
   index): the floor any ingestion path pays. Then the same batches again: every row unchanged.
2. The cohort report: ``--players`` players (100,000) with an FTD spread over ``--months`` (24)
   months, each active in the months after it with a decaying chance; GET
   /api/v1/reports/cohorts/?by=ftd_month&metric=ngr as a manager (the whole program) and as one
   affiliate, ``--requests`` times each: p50 and p95, once the cohort facts are worked out for
   every player (that time is printed too).

    .venv/bin/python bench/activity.py [--rows 1000000] [--players 100000] [--months 24]

Other work on the host skews every figure: read them as indicative.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import http.client
import io
import json
import os
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta

from bench import harness
from bench.harness import log

DB_NAME = "portal_bench_activity"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--affiliates", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args()


def rows_for(count: int) -> list[dict[str, str]]:
    rng = random.Random(15)
    start = date(2026, 1, 1)
    out = []
    per_day = max(1, count // 300)
    for n in range(count):
        out.append(
            {
                "player_id": f"B{n % per_day:08d}",
                "date": (start + timedelta(days=n // per_day)).isoformat(),
                "product": "casino" if n % 3 else "sportsbook",
                "currency": "EUR",
                "bets": f"{rng.randint(0, 500000) / 100:.2f}",
                "wins": f"{rng.randint(0, 450000) / 100:.2f}",
                "bonuses": f"{rng.randint(0, 2000) / 100:.2f}",
                "deposits": f"{rng.randint(0, 30000) / 100:.2f}",
            }
        )
    return out


def post(port: int, token: str, body: bytes) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(harness.HOST, port, timeout=600)
    try:
        conn.request(
            "POST",
            "/api/v1/player-activity/",
            body=body,
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def get(port: int, token: str, path: str) -> tuple[int, float]:
    conn = http.client.HTTPConnection(harness.HOST, port, timeout=600)
    started = time.perf_counter()
    try:
        conn.request("GET", path, headers={"Authorization": f"Token {token}"})
        response = conn.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000
    finally:
        conn.close()


def ingest(port: int, token: str, brand_id: int, rows: list[dict], batch: int) -> float:
    started = time.perf_counter()
    for first in range(0, len(rows), batch):
        part = [{**r, "brand": brand_id} for r in rows[first : first + batch]]
        status, answer = post(port, token, json.dumps(part).encode())
        if status != 200:
            raise RuntimeError(f"batch at {first}: {status} {str(answer)[:300]}")
    return time.perf_counter() - started


def bare_copy(rows: list[dict], brand_id: int) -> float:
    with harness.pg_connect(DB_NAME) as conn:
        conn.execute("CREATE TABLE bench_activity_copy (LIKE payouts_playeractivity INCLUDING ALL)")
        started = time.perf_counter()
        now = datetime.now(UTC)
        with conn.cursor().copy(
            "COPY bench_activity_copy (brand_id, player_id, day, product, currency, bets, wins,"
            " ggr, bonuses, chargebacks, taxes, fees, deposits, withdrawals, revision,"
            " received_at, updated_at) FROM STDIN"
        ) as copy:
            for r in rows:
                bets, wins = float(r["bets"]), float(r["wins"])
                copy.write_row(
                    (brand_id, r["player_id"], r["date"], r["product"], r["currency"],
                     r["bets"], r["wins"], f"{bets - wins:.2f}", r["bonuses"], 0, 0, 0,
                     r["deposits"], 0, 1, now, now)
                )  # fmt: skip
        return time.perf_counter() - started


def cohort_data(args: argparse.Namespace, campaign, affiliates: list) -> tuple[int, date]:
    """Players with an FTD each (postback, event, conversion), and their monthly activity."""
    from attribution.models import Conversion, Postback, PostbackEvent

    rng = random.Random(24)
    first = date(2026, 12, 1)
    for _ in range(args.months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    months = [first]
    for _ in range(args.months - 1):
        months.append((months[-1] + timedelta(days=32)).replace(day=1))
    chunk = 5000
    now = datetime.now(UTC)
    brand_id = campaign.brand_id
    activity = io.StringIO()
    rows = 0
    for start in range(0, args.players, chunk):
        ids = range(start, min(start + chunk, args.players))
        joined = {n: rng.randrange(args.months) for n in ids}
        postbacks = Postback.objects.bulk_create(
            Postback(kind="s2s", method="POST", received_at=now, dedup_key=f"bench:{n}",
                     status="processed")
            for n in ids
        )  # fmt: skip
        events = PostbackEvent.objects.bulk_create(
            PostbackEvent(postback=p, kind="event", conversion_type="ftd") for p in postbacks
        )
        Conversion.objects.bulk_create(
            Conversion(
                type="ftd", channel="web", platform="web", brand_id=brand_id,
                campaign=campaign, affiliate=affiliates[n % len(affiliates)],
                method="click_id", status="approved", reason="ok", claim_key=f"bench:{n}",
                event=e, player_key=f"player:{brand_id}:C{n:08d}", ledger_synced=True,
                occurred_at=datetime.combine(months[joined[n]], datetime.min.time(), UTC)
                + timedelta(days=rng.randrange(28)),
                revenue=50, currency="EUR",
            )
            for n, e in zip(ids, events, strict=True)
        )  # fmt: skip
        for n in ids:
            for k in range(joined[n], args.months):
                if k > joined[n] and rng.random() > 0.75 ** (k - joined[n]) + 0.1:
                    continue
                day = months[k] + timedelta(days=rng.randrange(28))
                ggr = rng.randint(-20000, 80000) / 100
                activity.write(
                    f"{brand_id}\tC{n:08d}\t{day}\tcasino\tEUR\t{ggr}\t{rng.randint(0, 1000) / 100}"
                    f"\t0\t0\t0\t{rng.randint(0, 30000) / 100}\t0\t1\t{now}\t{now}\n"
                )
                rows += 1
        log(f"  players {min(start + chunk, args.players):,}/{args.players:,}")
    with (
        harness.pg_connect(DB_NAME) as conn,
        conn.cursor().copy(
            "COPY payouts_playeractivity (brand_id, player_id, day, product, currency, ggr,"
            " bonuses, chargebacks, taxes, fees, deposits, withdrawals, revision, received_at,"
            " updated_at) FROM STDIN"
        ) as copy,
    ):
        copy.write(activity.getvalue())
    with harness.pg_connect(DB_NAME) as conn:
        conn.execute("ANALYZE")
    return rows, months[-1]


def main() -> int:
    args = parse_args()
    harness.stop_on_signals()
    env = harness.prepare_database(DB_NAME)
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from affiliates.models import Affiliate, Brand, Campaign
    from payouts.models import CommissionPlan, PlanAssignment, PlanVersion

    users = get_user_model()
    manager = users.objects.create(username="bench-manager", is_staff=True, is_superuser=True)
    manager_token = Token.objects.create(user=manager).key
    brand = Brand.objects.create(name="Bench Casino")
    cohort_brand = Brand.objects.create(name="Bench Cohorts")
    campaign = Campaign.objects.create(
        brand=cohort_brand, name="Cohorts", web_url="https://casino.example/?c={click_id}"
    )
    affiliates = [
        Affiliate.objects.create(
            user=users.objects.create(username=f"bench-aff-{n}"), name=f"Aff {n}", status="active"
        )
        for n in range(args.affiliates)
    ]
    affiliate_token = Token.objects.create(user=affiliates[0].user).key
    plan = CommissionPlan.objects.create(name="NGR", currency="EUR")
    PlanVersion.objects.create(
        plan=plan, valid_from=datetime(2020, 1, 1, tzinfo=UTC), revshare_percent=30,
        revshare_basis="ngr", product_percents={"sportsbook": "25"},
    )  # fmt: skip
    PlanAssignment.objects.create(plan=plan, campaign=campaign)
    from django.db import connection

    connection.close()

    log(f"making {args.rows:,} activity rows")
    rows = rows_for(args.rows)
    busy = harness.host_cpu_busy()
    with harness.Server(env, workers=args.workers) as server:
        log(f"ingesting through the API in batches of {args.batch:,}")
        first = ingest(server.port, manager_token, brand.pk, rows, args.batch)
        log("the same batches again (every row unchanged)")
        again = ingest(server.port, manager_token, brand.pk, rows, args.batch)
        log("bare COPY of the same rows")
        copied = bare_copy(rows, brand.pk)
        stored = harness.count_rows("payouts_playeractivity", dbname=DB_NAME)
        assert stored == args.rows, f"{stored} rows stored, {args.rows} sent"

        log(f"cohort data: {args.players:,} players over {args.months} months")
        activity_rows, through = cohort_data(args, campaign, affiliates)
        # The facts the report reads, worked out for every player as after a plan change (the
        # beat's refresh; the rows above were written straight to the tables, past the hooks).
        from payouts import cohort_facts

        cohort_facts.mark_all_stale()
        started = time.perf_counter()
        rebuilt = cohort_facts.refresh()
        rebuild_seconds = time.perf_counter() - started
        log(f"cohort facts of {rebuilt:,} players worked out in {rebuild_seconds:.1f} s")
        connection.close()
        timings = {}
        for who, token in (("manager", manager_token), ("one affiliate", affiliate_token)):
            path = f"/api/v1/reports/cohorts/?by=ftd_month&metric=ngr&through={through:%Y-%m}"
            if who == "manager":
                path += f"&campaign={campaign.pk}"
            times = []
            for _ in range(args.requests):
                status, ms = get(server.port, token, path)
                assert status == 200, status
                times.append(ms)
            times.sort()
            timings[who] = (statistics.median(times), times[int(0.95 * (len(times) - 1))])

    print()
    print(f"host busy before the run: {busy:.0f}%" if busy is not None else "host busy: unknown")
    print(
        f"ingestion: {args.rows:,} rows in {first:.1f} s = {args.rows / first:,.0f} rows/s "
        f"(API, batches of {args.batch:,}); again, all unchanged: {args.rows / again:,.0f} rows/s"
    )
    print(
        f"bare COPY of the same rows: {copied:.1f} s = {args.rows / copied:,.0f} rows/s; "
        f"API / COPY = {copied / first:.2f}"
    )
    print(
        f"cohort facts worked out for {rebuilt:,} players in {rebuild_seconds:.1f} s "
        "(every player, as after a plan change; the beat refreshes stale ones every minute)"
    )
    print(f"cohort report over {args.players:,} players, {activity_rows:,} activity rows:")
    for who, (p50, p95) in timings.items():
        print(f"  {who}: p50 {p50:.0f} ms, p95 {p95:.0f} ms ({args.requests} requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
