"""A payout run over 10,000 affiliates and 1,000,000 ledger entries on PostgreSQL: time and memory.

The data is generated with set-based SQL (generate_series, in chunks, with progress lines) in a
dedicated database, recreated and migrated by the harness; the ledger's secondary indexes are
dropped for the load and rebuilt from their exact definitions after it. What is generated:

* affiliates (and their users) in mixed time zones (UTC, Europe/Berlin, America/New_York,
  Asia/Tokyo) and currencies (EUR mostly, some GBP and USD), minimum payout 50.00 or, for about
  one in ten, 500.00; each affiliate gets a size (a log-uniform factor on its amounts), so some
  end up below their minimum and are carried; about 1% have switched currency, so a share of
  their entries is in a second currency (two payouts in one run);
* ledger entries spread over the affiliates: CPA, RevShare, sub-affiliate and adjustment
  (some negative) entries, statuses mostly approved, some pending, void and paid; available_at
  spread over the last 60 days; amounts in the affiliate's currency from an EUR or USD original
  at a frozen rate (original x rate = amount, to the cent). The paid ones are last-but-one
  month's and belong to that month's (paid) payout run; 4% of all entries are reversals
  (negative, approved) of paid CPA entries, which the run nets.

Then ``payout_run_create`` + ``payout_run_execute`` for last month run in a subprocess of their
own (so that its peak RSS is the run's, plus Django's), reporting wall time, CPU time (Python, its
PostgreSQL backend, PostgreSQL's checkpointer and WAL writer), peak RSS, the WAL written and the
checkpoints meanwhile (cluster-wide), the time spent in each kind of query (tallied by a Django
execute wrapper) and what the run made. A second ``payout_run_execute`` of the same run, in
another subprocess, must make nothing new. Other work on the host skews the figures: the
"host % busy" line says how much there was.

Baseline, in the same invocation: one plain SQL ``SELECT beneficiary_id, currency, sum(amount)
... GROUP BY`` over the same eligible entries (approved, unpaid, available before the end of the
period in the affiliate's time zone). Its result is also the oracle the run is checked against,
payout by payout; then: each payout equals the sum of its lines, lines are eligible entries of
that affiliate and currency, no void entry is in a payout, what is under the minimum (or not
positive) is carried with its entries untouched, and last run's payouts are untouched.

    cd /work/main && .venv/bin/python bench/payouts.py [--affiliates 10000] [--entries 1000000]
        [--timeout 900] [--tracemalloc] [--profile]

``--profile`` runs the first payout run under cProfile (slower) and prints where time goes, e.g.
with ``--affiliates 1000 --entries 100000`` for a 1/10 scale run. ``--tracemalloc`` adds
tracemalloc's peak to the first run (it made the run's Python CPU 5x at 1/10 scale, so the time
is then not comparable). The script exits 1 if a correctness check fails.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from bench import harness
from bench.harness import log

DB_NAME = "portal_bench_payouts"
CHUNK = 100_000
REVERSAL_SHARE = 0.04
SEED = 0.2026
LEDGER = "payouts_ledgerentry"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--affiliates", type=int, default=10_000, help="affiliates [10000]")
    parser.add_argument("--entries", type=int, default=1_000_000, help="ledger entries [1000000]")
    parser.add_argument("--db", default=DB_NAME, help=f"benchmark database [{DB_NAME}]")
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds allowed per payout run [900]"
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace Python allocations (slower)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the first run (slower) and print it"
    )
    # Internal: the measured subprocess.
    parser.add_argument("--child", choices=["first", "again"], help=argparse.SUPPRESS)
    parser.add_argument("--run-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--period", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.affiliates < 10 or args.entries < 1000 or args.timeout <= 0:
        parser.error("need --affiliates >= 10, --entries >= 1000 and a positive --timeout")
    if "bench" not in args.db:
        parser.error("the database name must contain 'bench' (it is dropped and recreated)")
    return args


# --- Periods --------------------------------------------------------------------------------


def month_before(first: date) -> tuple[date, date]:
    end = first - timedelta(days=1)
    return end.replace(day=1), end


def periods(today: date) -> tuple[tuple[date, date], tuple[date, date]]:
    """(last month, the month before): the run's period and the previous, paid run's."""
    last = month_before(today.replace(day=1))
    return last, month_before(last[0])


# --- Data generation --------------------------------------------------------------------------


AFFILIATES_SQL = """
CREATE TEMP TABLE bench_aff AS
SELECT i,
       %(a0)s + i AS id,
       %(u0)s + i AS user_id,
       CASE WHEN r_tz < 0.4 THEN 'UTC' WHEN r_tz < 0.7 THEN 'Europe/Berlin'
            WHEN r_tz < 0.9 THEN 'America/New_York' ELSE 'Asia/Tokyo' END AS time_zone,
       CASE WHEN r_cur < 0.8 THEN 'EUR' WHEN r_cur < 0.9 THEN 'GBP' ELSE 'USD' END AS currency,
       CASE WHEN r_min < 0.1 THEN 500.00 ELSE 50.00 END::numeric(18, 2) AS minimum_payout,
       -- the affiliate's size: amounts x 0.01 .. 2, log-uniform
       exp(ln(0.01) + ln(200.0) * r_scale) AS scale,
       r_mc < 0.01 AS switched
FROM (
    SELECT i, random() AS r_tz, random() AS r_cur, random() AS r_min, random() AS r_scale,
           random() AS r_mc
    FROM generate_series(1, %(n)s) AS i
) AS r;
ALTER TABLE bench_aff ADD PRIMARY KEY (i);
ALTER TABLE bench_aff
    ADD COLUMN other_currency text GENERATED ALWAYS AS
        (CASE WHEN currency = 'EUR' THEN 'USD' ELSE 'EUR' END) STORED;
"""

# {extra_cols} and {extra_vals}: NOT NULL columns without a default that the schema has beyond
# the ones listed (added by a migration since), filled from the row's unique number (see below).
USERS_SQL = """
INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined{extra_cols})
SELECT user_id, '!bench-unusable', false, 'bench-aff-' || lpad(i::text, 6, '0'), '', '',
       'aff' || i || '@bench.invalid', false, true, now() - interval '400 days'{extra_vals}
FROM bench_aff
"""

AFFILIATES_INSERT_SQL = """
INSERT INTO affiliates_affiliate (id, name, status, time_zone, currency, created_at, manager_id,
                                  parent_id, user_id, minimum_payout{extra_cols})
SELECT id, 'Bench affiliate ' || i, 'active', time_zone, currency, now() - interval '400 days',
       NULL, NULL, user_id, minimum_payout{extra_vals}
FROM bench_aff
"""

SEQUENCES_SQL = """
SELECT setval(pg_get_serial_sequence('auth_user', 'id'), (SELECT max(id) FROM auth_user));
SELECT setval(pg_get_serial_sequence('affiliates_affiliate', 'id'),
              (SELECT max(id) FROM affiliates_affiliate));
"""

PREVIOUS_RUN_SQL = """
INSERT INTO payouts_payoutrun (period_start, period_end, status, total_affiliates,
                               done_affiliates, created_at, finished_at,
                               created_by_id{extra_cols})
SELECT %(start)s, %(end)s, 'paid', %(n)s, %(n)s, %(at)s, %(at)s, NULL{extra_vals}
RETURNING id
"""

# One payout per affiliate and currency for the paid entries; amounts are set after the entries.
PREVIOUS_PAYOUTS_SQL = """
INSERT INTO payouts_payout (amount, currency, status, reference, paid_at, created_at,
                            affiliate_id, run_id{extra_cols})
SELECT 0, c.currency, 'paid', 'bench-previous-' || c.id, %(at)s, %(at)s, c.id,
       %(run)s{extra_vals}
FROM (SELECT id, currency FROM bench_aff
      UNION ALL SELECT id, other_currency FROM bench_aff WHERE switched) AS c
"""

ENTRIES_SQL = """
WITH g AS MATERIALIZED (
    SELECT n, 1 + floor(random() * %(n_aff)s)::int AS i, random() AS r_kind,
           random() AS r_status, random() AS r_time, random() AS r_orig, random() AS r_amount
    FROM generate_series(%(lo)s, %(hi)s) AS n
), e AS (
    SELECT g.n, b.id AS beneficiary_id, b.scale, g.r_time, g.r_amount,
           CASE WHEN g.r_kind < 0.62 THEN 'cpa' WHEN g.r_kind < 0.78 THEN 'revshare'
                WHEN g.r_kind < 0.94 THEN 'subaffiliate' ELSE 'adjustment' END AS kind,
           CASE WHEN g.r_status < 0.10 THEN 'paid' WHEN g.r_status < 0.18 THEN 'pending'
                WHEN g.r_status < 0.22 THEN 'void' ELSE 'approved' END AS status,
           CASE WHEN b.switched AND g.n %% 4 = 0 THEN b.other_currency
                ELSE b.currency END AS currency,
           CASE WHEN g.r_orig < 0.9 THEN 'EUR' ELSE 'USD' END AS original_currency
    FROM g JOIN bench_aff AS b ON b.i = g.i
), f AS (
    SELECT e.*,
           -- units of EUR one unit is worth (the FX table): EUR 1, USD 0.92, GBP 1.16
           round((CASE e.original_currency WHEN 'EUR' THEN 1 WHEN 'USD' THEN 0.92
                                           WHEN 'GBP' THEN 1.16 END)
                 / (CASE e.currency WHEN 'EUR' THEN 1 WHEN 'USD' THEN 0.92
                                  WHEN 'GBP' THEN 1.16 END), 10) AS fx_rate,
           CASE e.kind
               WHEN 'cpa' THEN greatest(0.01, round(((10 + floor(e.r_amount * 141))
                                                     * e.scale)::numeric, 2))
               WHEN 'revshare' THEN greatest(0.01, round((e.r_amount * 400 * e.scale)::numeric, 2))
               WHEN 'subaffiliate' THEN greatest(0.01,
                                                 round((e.r_amount * 20 * e.scale)::numeric, 2))
               ELSE coalesce(nullif(round(((e.r_amount * 100 - 40) * e.scale)::numeric, 2), 0),
                             0.01)
           END AS original_amount,
           CASE WHEN e.status = 'paid'
                THEN %(paid_from)s::timestamptz
                     + make_interval(secs => e.r_time * %(paid_seconds)s)
                ELSE %(now)s::timestamptz - make_interval(secs => e.r_time * 60 * 86400)
           END AS available_at
    FROM e
)
INSERT INTO payouts_ledgerentry
    (key, kind, period, amount, currency, original_amount, original_currency, fx_rate, status,
     available_at, note, created_at, beneficiary_id, conversion_id, source_entry_id, payout_id,
     plan_version_id{extra_cols})
SELECT f.kind || ':bench:n' || f.n, f.kind,
       CASE WHEN f.kind = 'revshare'
            THEN date_trunc('month', (f.available_at - interval '1 day') AT TIME ZONE 'UTC')::date
       END,
       round(f.original_amount * f.fx_rate, 2), f.currency, f.original_amount,
       f.original_currency, f.fx_rate, f.status, f.available_at, '',
       f.available_at - interval '30 days', f.beneficiary_id, NULL, NULL, p.id, NULL{extra_vals}
FROM f
LEFT JOIN payouts_payout AS p
       ON f.status = 'paid' AND p.run_id = %(prev_run)s AND p.affiliate_id = f.beneficiary_id
          AND p.currency = f.currency
"""

# A chargeback after payment: ledger._undo's reversal (approved, payable as early as the entry).
REVERSALS_SQL = """
INSERT INTO payouts_ledgerentry
    (key, kind, period, amount, currency, original_amount, original_currency, fx_rate, status,
     available_at, note, created_at, beneficiary_id, conversion_id, source_entry_id, payout_id,
     plan_version_id{extra_cols})
SELECT 'rev:e' || s.id, 'reversal', s.period, -s.amount, s.currency, -s.original_amount,
       s.original_currency, s.fx_rate, 'approved', least(%(now)s::timestamptz, s.available_at),
       'bench: chargeback after payment',
       %(now)s::timestamptz - make_interval(secs => random() * 20 * 86400),
       s.beneficiary_id, NULL, s.id, NULL, NULL{extra_vals}
FROM (SELECT * FROM payouts_ledgerentry
      WHERE kind = 'cpa' AND status = 'paid' AND payout_id IS NOT NULL
      ORDER BY id LIMIT %(n)s) AS s
"""

PREVIOUS_AMOUNTS_SQL = """
UPDATE payouts_payout AS p SET amount = s.total
FROM (SELECT payout_id, sum(amount) AS total FROM payouts_ledgerentry
      WHERE payout_id IS NOT NULL GROUP BY payout_id) AS s
WHERE p.id = s.payout_id AND p.run_id = %(run)s;
DELETE FROM payouts_payout AS p
WHERE p.run_id = %(run)s
  AND NOT EXISTS (SELECT 1 FROM payouts_ledgerentry AS e WHERE e.payout_id = p.id);
"""


def extras(conn, template: str, row: str) -> dict:
    """``template``'s {extra_cols}/{extra_vals}: the NOT NULL columns without a default that its
    table has beyond the ones it lists (a migration added them since), each filled from ``row``,
    an SQL expression unique per row (texts 'b<row>', so unique ones stay unique)."""
    table, listed = re.search(r"INSERT INTO (\w+)\s*\(([^)]*?)\{extra_cols\}", template).groups()
    known = {name.strip() for name in listed.split(",")}
    columns = conn.execute(
        """SELECT column_name, data_type, character_maximum_length
           FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = %s AND is_nullable = 'NO'
             AND column_default IS NULL AND is_identity = 'NO' AND is_generated = 'NEVER'
           ORDER BY ordinal_position""",
        [table],
    ).fetchall()
    names, values = [], []
    for name, kind, length in columns:
        if name in known:
            continue
        if kind in ("character varying", "text", "character"):
            value = f"'b' || ({row})::text"
            if length is not None and length < 12:
                value = f"left(md5(({row})::text), {length})"
        elif kind in ("smallint", "integer", "bigint", "numeric", "real", "double precision"):
            value = "0"
        elif kind in EXTRA_CONSTANTS:
            value = EXTRA_CONSTANTS[kind]
        else:
            raise RuntimeError(f"{table}.{name} ({kind}) is NOT NULL without a default: add it")
        names.append(sql.Identifier(name))
        values.append(sql.SQL(value))
        if name not in _reported:
            _reported.add(name)
            log(f"  note: {table}.{name} ({kind}) is new and NOT NULL: filled with {value}")
    if not names:
        return {"extra_cols": sql.SQL(""), "extra_vals": sql.SQL("")}
    return {
        "extra_cols": sql.SQL(", ") + sql.SQL(", ").join(names),
        "extra_vals": sql.SQL(", ") + sql.SQL(", ").join(values),
    }


EXTRA_CONSTANTS = {
    "boolean": "false",
    "timestamp with time zone": "now()",
    "date": "current_date",
    "jsonb": "'{}'::jsonb",
    "json": "'{}'::json",
    "uuid": "gen_random_uuid()",
}
_reported: set[str] = set()


def insert(conn, template: str, row: str, params: dict) -> psycopg.Cursor:
    """Run an INSERT template with its table's extra columns filled in."""
    return conn.execute(sql.SQL(template).format(**extras(conn, template, row)), params)


def execute_script(conn, script: str, params: dict) -> None:
    """Each ``;``-terminated statement of ``script`` in turn (server-side binding takes one)."""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement, params if "%(" in statement else None)


def drop_secondary_indexes(conn, table: str) -> list[str]:
    """Drop ``table``'s indexes that back no constraint; returns their exact definitions."""
    rows = conn.execute(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i
           JOIN pg_class AS c ON c.oid = i.indexrelid
           WHERE i.indrelid = %s::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)
           ORDER BY c.relname""",
        [table],
    ).fetchall()
    for name, _ in rows:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return [definition for _, definition in rows]


def generate(dbname: str, n_aff: int, n_entries: int, now: datetime) -> dict:
    """Users, affiliates, last-but-one month's paid run and the ledger, all in SQL."""
    t0 = time.perf_counter()
    (_, _), (prev_start, prev_end) = periods(now.date())
    # The previous period's paid entries were available before its end in every time zone.
    paid_from = datetime.combine(prev_start, datetime.min.time(), UTC)
    paid_until = datetime.combine(prev_end, datetime.min.time(), UTC) + timedelta(hours=10)
    n_reversals = int(n_entries * REVERSAL_SHARE)
    n_base = n_entries - n_reversals
    with harness.pg_connect(dbname) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET statement_timeout = '600s'")
        conn.execute("SELECT setseed(%s)", [SEED])
        a0 = conn.execute("SELECT coalesce(max(id), 0) FROM affiliates_affiliate").fetchone()[0]
        u0 = conn.execute("SELECT coalesce(max(id), 0) FROM auth_user").fetchone()[0]
        with conn.transaction():
            execute_script(conn, AFFILIATES_SQL, {"a0": a0, "u0": u0, "n": n_aff})
            insert(conn, USERS_SQL, "i", {})
            insert(conn, AFFILIATES_INSERT_SQL, "i", {})
            execute_script(conn, SEQUENCES_SQL, {})
        log(f"  {n_aff} users + affiliates ({time.perf_counter() - t0:.1f}s)")
        prev_run = insert(
            conn,
            PREVIOUS_RUN_SQL,
            "1",
            {"start": prev_start, "end": prev_end, "n": n_aff, "at": paid_until},
        ).fetchone()[0]
        insert(conn, PREVIOUS_PAYOUTS_SQL, "c.id", {"run": prev_run, "at": paid_until})
        params = {
            "n_aff": n_aff,
            "prev_run": prev_run,
            "paid_from": paid_from,
            "paid_seconds": (paid_until - paid_from).total_seconds(),
            "now": now,
        }
        # Loading into a table without its secondary indexes and building them afterwards is
        # several times faster than maintaining a dozen of them row by row.
        definitions = drop_secondary_indexes(conn, LEDGER)
        log(f"  dropped {len(definitions)} secondary indexes of {LEDGER} for the load")
        for lo in range(1, n_base + 1, CHUNK):
            hi = min(n_base, lo + CHUNK - 1)
            insert(conn, ENTRIES_SQL, "f.n", {**params, "lo": lo, "hi": hi})
            rate = hi / (time.perf_counter() - t0)
            log(f"  ledger entries {hi:>9,}/{n_entries:,} ({rate:,.0f} rows/s so far)")
        made = insert(conn, REVERSALS_SQL, "-s.id", {"now": now, "n": n_reversals}).rowcount
        log(f"  {made:,} reversals of paid CPA entries")
        execute_script(conn, PREVIOUS_AMOUNTS_SQL, {"run": prev_run})
        conn.execute("SET maintenance_work_mem = '256MB'")
        for definition in definitions:
            conn.execute(definition)
        log(f"  recreated the {len(definitions)} indexes ({time.perf_counter() - t0:.1f}s)")
        log("  VACUUM ANALYZE, CHECKPOINT")
        for table in (LEDGER, "payouts_payout", "affiliates_affiliate", "auth_user"):
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("CHECKPOINT")
        stats = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE status = 'approved'),
                       count(*) FILTER (WHERE kind = 'reversal'),
                       count(*) FILTER (WHERE amount < 0),
                       count(DISTINCT beneficiary_id),
                       pg_total_relation_size('payouts_ledgerentry'),
                       (SELECT count(*) FROM pg_indexes WHERE tablename = 'payouts_ledgerentry')
                FROM payouts_ledgerentry"""
        ).fetchone()
    return {
        "seconds": time.perf_counter() - t0,
        "previous_run": prev_run,
        "entries": stats[0],
        "approved": stats[1],
        "reversals": stats[2],
        "negative": stats[3],
        "beneficiaries": stats[4],
        "ledger_bytes": stats[5],
        "ledger_indexes": stats[6],
    }


# --- Baseline and checks ----------------------------------------------------------------------

# Entries a run for a period ending on %(end)s may pay: approved, in no payout, available before
# the day after the period's end began in the affiliate's time zone.
ELIGIBLE = """
FROM payouts_ledgerentry AS e JOIN affiliates_affiliate AS a ON a.id = e.beneficiary_id
WHERE e.status = 'approved' AND e.payout_id IS NULL
  AND e.available_at < ((%(end)s::date + 1)::timestamp AT TIME ZONE a.time_zone)
"""
BASELINE_SQL = (
    "SELECT e.beneficiary_id, e.currency, sum(e.amount), count(*)"
    + ELIGIBLE
    + ("GROUP BY e.beneficiary_id, e.currency")
)


@contextlib.contextmanager
def bounded_connection(dbname: str, seconds: int = 300):
    """A connection whose statements give up after ``seconds`` (a lock left behind, say)."""
    with harness.pg_connect(dbname) as conn:
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{seconds}s")))
        yield conn


def baseline(dbname: str, period_end: date) -> tuple[float, dict]:
    """The plain SQL netting (best of two, the first warms the cache) and its result."""
    times, rows = [], []
    with bounded_connection(dbname) as conn:
        for _ in range(2):
            t0 = time.perf_counter()
            rows = conn.execute(BASELINE_SQL, {"end": period_end}).fetchall()
            times.append(time.perf_counter() - t0)
        minimum = dict(conn.execute("SELECT id, minimum_payout FROM affiliates_affiliate"))
    groups = {(aff, cur): (total, count) for aff, cur, total, count in rows}
    log(f"  baseline SQL: {len(groups):,} (affiliate, currency) groups, runs {times}")
    return min(times), {"groups": groups, "minimum": minimum}


def expected_payouts(oracle: dict) -> tuple[dict, dict]:
    """(paid, carried): (affiliate, currency) -> (total, entries), as the run should decide."""
    paid, carried = {}, {}
    for (aff, cur), (total, count) in oracle["groups"].items():
        target = paid if total > 0 and total >= oracle["minimum"][aff] else carried
        target[(aff, cur)] = (total, count)
    return paid, carried


def snapshot(dbname: str, run_id: int) -> dict:
    with bounded_connection(dbname) as conn:
        payouts = conn.execute(
            "SELECT count(*), coalesce(sum(amount), 0), count(DISTINCT affiliate_id), "
            "coalesce(max(id), 0) FROM payouts_payout WHERE run_id = %s",
            [run_id],
        ).fetchone()
        lines = conn.execute(
            "SELECT count(*), coalesce(sum(e.amount), 0) FROM payouts_ledgerentry AS e "
            "JOIN payouts_payout AS p ON p.id = e.payout_id WHERE p.run_id = %s",
            [run_id],
        ).fetchone()
        run = conn.execute(
            "SELECT status, total_affiliates, done_affiliates FROM payouts_payoutrun WHERE id = %s",
            [run_id],
        ).fetchone()
    return {
        "payouts": payouts[0],
        "payout_sum": payouts[1],
        "affiliates_paid": payouts[2],
        "max_payout_id": payouts[3],
        "entries_assigned": lines[0],
        "entries_sum": lines[1],
        "run": run,
    }


def check_run(dbname: str, run_id: int, prev: dict, oracle: dict, period_end: date) -> list:
    """[(check, ok, detail)] for the run's payouts against the ledger and the oracle."""
    paid, carried = expected_payouts(oracle)
    snap = snapshot(dbname, run_id)
    checks = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append((name, bool(ok), detail))

    with bounded_connection(dbname) as conn:
        made = {
            (aff, cur): amount
            for aff, cur, amount in conn.execute(
                "SELECT affiliate_id, currency, amount FROM payouts_payout WHERE run_id = %s",
                [run_id],
            )
        }
        uneven = conn.execute(
            """SELECT count(*) FROM (
                    SELECT p.id, p.amount, sum(e.amount) AS lines FROM payouts_payout AS p
                    LEFT JOIN payouts_ledgerentry AS e ON e.payout_id = p.id
                    WHERE p.run_id = %s GROUP BY p.id, p.amount) AS x
                WHERE x.lines IS DISTINCT FROM x.amount""",
            [run_id],
        ).fetchone()[0]
        wrong_lines = conn.execute(
            """SELECT count(*) FROM payouts_ledgerentry AS e
                JOIN payouts_payout AS p ON p.id = e.payout_id
                JOIN affiliates_affiliate AS a ON a.id = e.beneficiary_id
                WHERE p.run_id = %(run)s AND (
                    e.status <> 'approved' OR e.beneficiary_id <> p.affiliate_id
                    OR e.currency <> p.currency
                    OR e.available_at >= ((%(end)s::date + 1)::timestamp AT TIME ZONE a.time_zone))
            """,
            {"run": run_id, "end": period_end},
        ).fetchone()[0]
        void_paid = conn.execute(
            "SELECT count(*) FROM payouts_ledgerentry "
            "WHERE status = 'void' AND payout_id IS NOT NULL"
        ).fetchone()[0]
        left = conn.execute("SELECT count(*)" + ELIGIBLE, {"end": period_end}).fetchone()[0]
        prev_now = conn.execute(
            "SELECT count(*), coalesce(sum(e.amount), 0) FROM payouts_ledgerentry AS e "
            "JOIN payouts_payout AS p ON p.id = e.payout_id WHERE p.run_id = %s",
            [prev["run_id"]],
        ).fetchone()

    want = {key: total for key, (total, _) in paid.items()}
    missing = len(want.keys() - made.keys())
    extra = len(made.keys() - want.keys())
    wrong_amount = sum(1 for key in want.keys() & made.keys() if want[key] != made[key])
    want_entries = sum(count for _, count in paid.values())
    carried_entries = sum(count for _, count in carried.values())
    below = sum(1 for (total, _) in carried.values() if total > 0)
    below_500 = sum(
        1 for (aff, _), (total, _) in carried.items() if total > 0 and oracle["minimum"][aff] >= 500
    )
    check(
        "sum(payout.amount) == sum(entries assigned)",
        snap["payout_sum"] == snap["entries_sum"],
        f"{snap['payout_sum']} vs {snap['entries_sum']}",
    )
    check("every payout == sum of its own lines", uneven == 0, f"{uneven} payouts differ")
    check(
        "payouts == the SQL oracle, per affiliate and currency, to the cent",
        not (missing or extra or wrong_amount),
        f"{len(made):,} made, {len(want):,} expected; missing {missing}, extra {extra}, "
        f"wrong amount {wrong_amount}",
    )
    check(
        "entries assigned == the oracle's eligible entries of paid groups",
        snap["entries_assigned"] == want_entries,
        f"{snap['entries_assigned']:,} vs {want_entries:,}",
    )
    check(
        "assigned entries are approved, the payout's affiliate+currency, before the cutoff",
        wrong_lines == 0,
        f"{wrong_lines} wrong",
    )
    check("void entries in a payout == 0", void_paid == 0, f"{void_paid}")
    check(
        "carried (below minimum or <= 0): no payout, eligible entries left unassigned",
        left == carried_entries and not (made.keys() & carried.keys()),
        f"{len(carried):,} groups carried ({below:,} positive but below the minimum, "
        f"{below_500:,} of them under a 500.00 one; "
        f"{len(carried) - below:,} <= 0), {left:,} eligible entries left "
        f"(oracle {carried_entries:,})",
    )
    check(
        "last month's paid run untouched",
        tuple(prev_now) == prev["lines"],
        f"{prev_now[0]:,} entries, {prev_now[1]}",
    )
    status, total, done = snap["run"]
    check(
        "run is draft, every candidate done",
        status == "draft" and total == done,
        f"status {status}, {done}/{total}",
    )
    return checks


# --- The measured subprocess -----------------------------------------------------------------


def _backend_cpu(pid: int) -> float:
    return harness.pids_cpu([pid])


def statement_kind(text: str) -> str:
    """'SELECT payouts_ledgerentry FOR UPDATE' and the like: what a query is, for the tally."""
    verb = text.split(None, 1)[0].upper() if text.strip() else "?"
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', text, re.IGNORECASE)
    kind = f"{verb} {table.group(1) if table else ''}".rstrip()
    if verb == "SELECT" and "DISTINCT" in text:
        kind += " DISTINCT"
    if "FOR UPDATE" in text:
        kind += " FOR UPDATE"
    return kind


def child_main(args: argparse.Namespace) -> int:
    """Inside the measured subprocess: one payout run (first, or again), measured."""
    import django

    django.setup()
    from django.db import connection

    from payouts import runs

    period_start, period_end = (date.fromisoformat(d) for d in args.period.split(":"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    done = [0]
    t0 = time.perf_counter()

    def progress(n: int) -> None:
        done[0] += n
        print(
            f"    [{args.child} run] {done[0]:>6,} affiliates done "
            f"({time.perf_counter() - t0:.1f}s)",
            flush=True,
        )

    def work():
        if args.child == "first":
            # The bench writes its RevShare entries itself, without statements: no month to close.
            run = runs.payout_run_create(
                period_start=period_start, period_end=period_end, open_months_confirmed=True
            )
        else:
            run = runs.PayoutRun.objects.get(pk=args.run_id)
        return runs.payout_run_execute(run_id=run.pk, progress=progress)

    profiler = None
    if args.profile and args.child == "first":
        import cProfile

        profiler = cProfile.Profile()
    if args.tracemalloc and args.child == "first":
        import tracemalloc

        tracemalloc.start()
    tally: dict[str, list] = {}

    def timed(execute, sql_text, params, many, context):
        # Django's cursors fetch the whole result at execute: this is the query's round trip.
        start = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            entry = tally.setdefault(statement_kind(sql_text), [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - start

    be0, cpu0 = _backend_cpu(backend), time.process_time()
    t0 = time.perf_counter()
    with connection.execute_wrapper(timed):
        run = profiler.runcall(work) if profiler else work()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    be_cpu = _backend_cpu(backend) - be0
    traced = None
    if args.tracemalloc and args.child == "first":
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "run_id": run.pk,
        "wall": wall,
        "cpu": cpu,
        "backend_cpu": be_cpu,
        "rss_start_kb": rss_start,
        "rss_peak_kb": rss_peak,
        "tracemalloc_peak": traced,
        "total_affiliates": run.total_affiliates,
        "done_affiliates": run.done_affiliates,
        "status": run.status,
        "statements": tally,
    }
    Path(args.result).write_text(json.dumps(result))
    if profiler:
        import pstats

        stats = pstats.Stats(profiler, stream=sys.stdout)
        print("\n--- cProfile, by cumulative time")
        stats.sort_stats("cumulative").print_stats(30)
        print("--- cProfile, by own time")
        stats.sort_stats("tottime").print_stats(20)
    return 0


def run_child(args: argparse.Namespace, env: dict, mode: str, period: str, run_id=None) -> dict:
    """One measured payout run in its own process group, bounded by --timeout."""
    fd, result_path = tempfile.mkstemp(prefix="bench-payouts-", suffix=".json")
    os.close(fd)
    cmd = [
        harness.PYTHON,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--period",
        period,
        "--result",
        result_path,
        "--db",
        args.db,
    ]
    if run_id is not None:
        cmd += ["--run-id", str(run_id)]
    if args.tracemalloc:
        cmd.append("--tracemalloc")
    if args.profile:
        cmd.append("--profile")
    proc = subprocess.Popen(cmd, cwd=harness.REPO_ROOT, env=env, start_new_session=True)
    try:
        try:
            code = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the {mode} payout run took over {args.timeout:g}s") from None
        if code != 0:
            raise RuntimeError(f"the {mode} payout run exited {code}")
        return json.loads(Path(result_path).read_text())
    finally:
        if proc.poll() is None:
            log(f"stopping the payout run subprocess (pid {proc.pid})")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            # Its query may still be running in PostgreSQL: end the sessions on our database.
            with harness.pg_connect("postgres") as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [args.db],
                )
        with contextlib.suppress(OSError):
            os.unlink(result_path)


def _host_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


AUX_PROCESSES = ("checkpointer", "background writer", "walwriter", "autovacuum")


def postgres_aux_cpu() -> float:
    """CPU seconds so far of PostgreSQL's own background processes (checkpointer, background
    writer, WAL writer, autovacuum workers): the writes a run causes that its backend does not
    pay for itself. Other databases' sessions are not counted."""
    aux = []
    for pid in harness.pids_named("postgres"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().decode(errors="replace")
        except OSError:
            continue
        if any(name in title for name in AUX_PROCESSES):
            aux.append(pid)
    return harness.pids_cpu(aux)


def measured_child(args, env: dict, mode: str, period: str, run_id=None) -> dict:
    """run_child, plus what the rest of the machine saw meanwhile: WAL written, checkpoints,
    PostgreSQL's background processes' CPU, and how busy the host was (other work included)."""
    checkpoints = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
    lsn, cp0 = wal_lsn(args.db), harness.query_scalar(checkpoints, dbname=args.db)
    pg0, host0 = postgres_aux_cpu(), _host_cpu()
    result = run_child(args, env, mode, period, run_id=run_id)
    host1 = _host_cpu()
    result["pg_aux_cpu"] = postgres_aux_cpu() - pg0
    result["host_busy"] = 100 * (host1[0] - host0[0]) / max(1, host1[1] - host0[1])
    result["wal"] = wal_bytes(args.db, lsn)
    result["checkpoints"] = harness.query_scalar(checkpoints, dbname=args.db) - cp0
    return result


def wal_lsn(dbname: str) -> str:
    return harness.query_scalar("SELECT pg_current_wal_lsn()::text", dbname=dbname)


def wal_bytes(dbname: str, start: str) -> int:
    return int(
        harness.query_scalar(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", [start], dbname=dbname
        )
    )


def relation_bytes(dbname: str) -> int:
    return int(
        harness.query_scalar("SELECT pg_total_relation_size('payouts_ledgerentry')", dbname=dbname)
    )


# --- Main -------------------------------------------------------------------------------------


def mb(kb: float) -> str:
    return f"{kb / 1024:.0f} MB"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    busy = harness.host_cpu_busy(1.0)
    if busy is not None:
        log(f"host CPU {busy:.0f}% busy before the benchmark ({os.cpu_count()} cores)")
        if busy > 15:
            log("  warning: something else is using the CPU; figures will be slower and noisier")
    now = datetime.now(UTC)
    (start, end), (prev_start, prev_end) = periods(now.date())
    env = harness.prepare_database(args.db)
    log(
        f"generating {args.affiliates:,} affiliates and {args.entries:,} ledger entries "
        f"(paid ones: {prev_start}..{prev_end}, the rest over the last 60 days)"
    )
    data = generate(args.db, args.affiliates, args.entries, now)
    log(
        f"generated in {data['seconds']:.1f}s: {data['entries']:,} entries "
        f"({data['approved']:,} approved, {data['reversals']:,} reversals, "
        f"{data['negative']:,} negative) for {data['beneficiaries']:,} affiliates; ledger "
        f"{data['ledger_bytes'] / 2**20:.0f} MB with {data['ledger_indexes']} indexes"
    )
    with harness.pg_connect(args.db) as conn:
        prev_lines = tuple(
            conn.execute(
                "SELECT count(*), coalesce(sum(e.amount), 0) FROM payouts_ledgerentry AS e "
                "JOIN payouts_payout AS p ON p.id = e.payout_id WHERE p.run_id = %s",
                [data["previous_run"]],
            ).fetchone()
        )
    prev = {"run_id": data["previous_run"], "lines": prev_lines}

    log(f"baseline: plain SQL GROUP BY over the entries eligible for {start}..{end}")
    base_s, oracle = baseline(args.db, end)
    paid, carried = expected_payouts(oracle)
    eligible = sum(count for _, count in oracle["groups"].values())
    log(
        f"  {base_s * 1000:.0f} ms; {eligible:,} eligible entries, {len(paid):,} payouts due, "
        f"{len(carried):,} groups carried"
    )

    period = f"{start.isoformat()}:{end.isoformat()}"
    size0 = relation_bytes(args.db)
    log(f"payout run {start}..{end}: payout_run_create + payout_run_execute, own subprocess")
    first = measured_child(args, env, "first", period)
    size1 = relation_bytes(args.db)
    snap1 = snapshot(args.db, first["run_id"])
    log(f"  done in {first['wall']:.1f}s; checking against the ledger and the oracle")
    checks = check_run(args.db, first["run_id"], prev, oracle, end)

    log("second payout_run_execute of the same run (must make nothing new), own subprocess")
    again = measured_child(args, env, "again", period, run_id=first["run_id"])
    snap2 = snapshot(args.db, first["run_id"])
    same = all(
        snap1[k] == snap2[k]
        for k in ("payouts", "payout_sum", "max_payout_id", "entries_assigned", "entries_sum")
    )
    checks.append(
        (
            "second execute makes nothing new",
            same,
            f"payouts {snap1['payouts']:,} -> {snap2['payouts']:,}, entries assigned "
            f"{snap1['entries_assigned']:,} -> {snap2['entries_assigned']:,}",
        )
    )

    print()
    print(
        f"payout run benchmark: {args.affiliates:,} affiliates, {data['entries']:,} ledger "
        f"entries, PostgreSQL {harness.PG_HOST}:{harness.PG_PORT}/{args.db}, "
        f"{os.cpu_count()} cores"
    )
    print(f"  data generation (SQL):       {data['seconds']:.1f}s")
    print(
        f"  period {start}..{end}: {eligible:,} eligible entries in {len(oracle['groups']):,} "
        "(affiliate, currency) groups"
    )
    for label, res, snap in (
        ("first run (create+execute)", first, snap1),
        ("second execute (no-op)", again, snap2),
    ):
        traced = res["tracemalloc_peak"]
        print(f"  {label}:")
        print(
            f"    wall {res['wall']:.2f}s, CPU {res['cpu']:.2f}s (python) + "
            f"{res['backend_cpu']:.2f}s (its PostgreSQL backend) + {res['pg_aux_cpu']:.2f}s "
            f"(checkpointer, WAL writer...); host {res['host_busy']:.0f}% busy meanwhile"
        )
        print(
            f"    peak RSS {mb(res['rss_peak_kb'])} (after django.setup: "
            f"{mb(res['rss_start_kb'])}, so +{mb(res['rss_peak_kb'] - res['rss_start_kb'])})"
            + (f", tracemalloc peak {traced / 2**20:.1f} MB" if traced is not None else "")
        )
        print(
            f"    candidates {res['total_affiliates']:,}, affiliates paid "
            f"{snap['affiliates_paid']:,}, payouts {snap['payouts']:,}, entries assigned "
            f"{snap['entries_assigned']:,}, total {snap['payout_sum']}"
        )
        print(
            f"    WAL written {res['wal'] / 2**20:.0f} MB, checkpoints {res['checkpoints']} "
            "(cluster-wide: other databases' writes count too)"
        )
        in_queries = sum(seconds for _, seconds in res["statements"].values())
        print(
            f"    time in queries {in_queries:.2f}s; the rest ({res['wall'] - in_queries:.2f}s) "
            "is Python, commits and progress:"
        )
        ranked = sorted(res["statements"].items(), key=lambda kv: -kv[1][1])
        for kind, (count, seconds) in ranked[:8]:
            print(f"      {seconds:8.2f}s {count:>7,}x  {kind}")
    print(
        f"  ledger table+indexes: {size0 / 2**20:.0f} MB before the run, "
        f"{size1 / 2**20:.0f} MB after"
    )
    ratio = first["wall"] / base_s if base_s else float("nan")
    print(f"  baseline SQL GROUP BY:       {base_s * 1000:.0f} ms")
    print(f"  payout run / baseline:       {ratio:.0f}x ({first['wall']:.2f}s vs {base_s:.3f}s)")
    print()
    for name, ok, detail in checks:
        print(f"  {'OK  ' if ok else 'FAIL'} {name}: {detail}")
    failed = [name for name, ok, _ in checks if not ok]
    print(f"\n{'all checks passed' if not failed else f'{len(failed)} checks FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; subprocess stopped")
        sys.exit(130)
