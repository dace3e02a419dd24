"""Dashboard page and stats API p50/p95 for one affiliate over 90 days, with 10 million clicks
and 1 million conversions generated in PostgreSQL.

Step 1 (data, in a dedicated database recreated and migrated by the harness): ``seed_demo``
makes the demo program (brand, four campaigns, apps, postback sources, FX rates, a plan and five
demo affiliates); a "bench" affiliate (Europe/Berlin, EUR, known password, an API token) is added
with the ORM, and everything else is set-based SQL (generate_series / INSERT ... SELECT, in
chunks, foreign-key triggers off, secondary indexes dropped and rebuilt from their exact
definitions):

* ~1,000 affiliates in all (mixed time zones incl. Asia/Kolkata, currencies EUR/USD/GBP), each
  with tracking links on 1-4 campaigns; the share of clicks follows a power law over the others
  (rank^-0.9: the largest ~9%, the smallest ~0.02%, every affiliate some) and the bench affiliate
  gets 1.5%;
* 10,000,000 clicks over the last 90 days in time order (platform by campaign, a home country per
  affiliate, sub1..sub3 by affiliate, repeat IPs, some without an IP, device ids);
* 1,000,000 conversions from one click in ten, each with its Postback and PostbackEvent rows:
  installs, registrations, FTDs, deposits, purchases and others; approved, pending, rejected,
  reversed; click-id, device-id, SKAN and organic; revenue (EUR, some USD/GBP) on money events;
* ledger entries: CPA for installs and FTDs (void for rejected FTDs), reversals of reversed ones,
  and monthly RevShare entries for the bench affiliate;
* DailyRollup and SubRollup built with one INSERT ... SELECT ... GROUP BY each, equivalent to
  ``attribution.rollup.rebuild``; then ``manage.py rebuild_rollups`` for two whole days proves
  the equality on that sample (rows compared with EXCEPT ALL both ways) and times the Python
  rebuild, which is extrapolated to ``--days 91``; if that fits in ``--rebuild-limit`` seconds
  (e.g. at ``--scale 0.1``) the full ``rebuild_rollups --days 91`` runs too and every row is
  compared. HourlyRollup (not read by the dashboard or the stats API) is not bulk-built.
* VACUUM ANALYZE at the end.

Step 2: gunicorn (harness.Server, DEBUG off) and ``run_load`` for the bench affiliate, each
after an unmeasured warm-up: /livez (a bare JsonResponse: the baseline), GET /dashboard/ with
?period=last30, a custom 90-day range and ?period=last7&by=sub1 (session cookie from a real
POST /login/ with CSRF), GET /api/v1/stats/ for the 90 days (``Authorization: Token``), then
/livez again for drift. p50/p95 and req/s, with the ratio to the bare view.

Step 3: in a separate process, Django's test client against the same database with
CaptureQueriesContext: the query count and SQL time of each measured request (median of three
warm runs), and EXPLAIN (ANALYZE, BUFFERS) of the slowest query.

    cd /work/main && .venv/bin/python bench/dashboard.py [--scale 0.1] [--seconds 10]
        [--clients 2] [--workers 2] [--reuse] [--full-rebuild auto|yes|no]

``--reuse`` skips step 1 and measures the database a previous run left (it is kept, ~5 GB at
full scale; ``--drop`` removes it at the end).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import subprocess
import time
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import partial
from urllib.parse import urlencode

import psycopg
from psycopg import sql

from bench import harness
from bench.harness import LoadResult, log

# Engineers sharing a PostgreSQL server each give their own (the name must contain "bench").
DB = os.environ.get("BENCH_DASHBOARD_DB", "portal_bench_dashboard")
CLICKS = 10_000_000
CONVERSIONS = 1_000_000
AFFILIATES = 1_000
DAYS = 90
BENCH_SHARE = 0.015
SLOTS = 200_000  # click "slots": each link gets a number proportional to its share
CHUNK = 1_000_000
PARALLEL = 2  # sessions loading clicks (2 cores; a busy host also gives each session a share)
SEED = 0.2026
BENCH_USERNAME = "bench"
BENCH_PASSWORD = "bench-dashboard-2026"  # noqa: S105 - a throwaway benchmark login
BENCH_ZONE = "Europe/Berlin"
ZONES = [
    "Europe/Berlin",
    "Europe/London",
    "Europe/Malta",
    "Europe/Stockholm",
    "America/New_York",
    "America/Sao_Paulo",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "UTC",
]
COUNTRIES = ["DE", "GB", "SE", "MT", "CA", "NZ", "FI", "NO", "AT", "IE", "BR", "IN"]
TRAFFIC_SOURCES = [
    "facebook",
    "google",
    "tiktok",
    "newsletter",
    "seo",
    "youtube",
    "instagram",
    "telegram",
    "reddit",
    "push",
    "native",
    "twitter",
]
UA = {
    "ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "android": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
    "win": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "mac": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
}
HEADERS = {"User-Agent": UA["mac"], "Accept": "text/html,application/json"}
BARE_PATH = "/livez"  # /healthz asks the database and the broker

# --- Step 1: data -----------------------------------------------------------------------------

CREATE_BENCH_USER = """
import json
from django.contrib.auth import get_user_model
from affiliates import terms
from affiliates.models import Affiliate
user = get_user_model().objects.create_user({u!r}, {u!r} + "@bench.example", {p!r})
aff = Affiliate.objects.create(user=user, name="Bench Affiliate GmbH", status="active",
                               time_zone={tz!r}, currency="EUR")
current = terms.terms_current()  # accepted at sign-up, or every page asks for it first
if current is not None:
    terms.terms_accept(user=user, terms=current, ip=None)
print(json.dumps({{"user_id": user.pk, "affiliate_id": aff.pk}}))
"""

USERS_SQL = """
INSERT INTO auth_user (password, last_login, is_superuser, username, first_name, last_name,
                       email, is_staff, is_active, date_joined)
SELECT '!', NULL, false, 'bench-aff-' || g, '', '', 'bench-aff-' || g || '@bench.example',
       false, true, now()
FROM generate_series(1, %(n)s) AS g
"""

AFFILIATES_SQL = """
INSERT INTO affiliates_affiliate (name, status, time_zone, currency, created_at, manager_id,
                                  parent_id, user_id, minimum_payout, referral_code,
                                  payment_details, company, vat_id, address, website,
                                  traffic_sources, country, messenger, two_factor)
SELECT 'Bench affiliate ' || x.id,
       CASE WHEN x.r1 < 0.97 THEN 'active' ELSE 'suspended' END,
       (%(zones)s::text[])[1 + floor(x.r2 * cardinality(%(zones)s::text[]))::int],
       CASE WHEN x.r3 < 0.6 THEN 'EUR' WHEN x.r3 < 0.8 THEN 'USD' ELSE 'GBP' END,
       now(), NULL, NULL, x.id, 50, 'bx' || x.id, '', '', '', '', '', '', '', '', false
FROM (SELECT u.id, random() AS r1, random() AS r2, random() AS r3
      FROM auth_user AS u WHERE starts_with(u.username, 'bench-aff-')) AS x
"""

# The bench affiliate on every campaign, the generated ones on one to four (one at least).
LINKS_SQL = """
INSERT INTO affiliates_trackinglink (code, name, sub1, sub2, sub3, sub4, sub5, deep_link,
                                     is_active, created_at, affiliate_id, campaign_id)
SELECT 'bl' || x.aid || 'c' || x.cid, 'bench', '', '', '', '', '', '', true, now(), x.aid, x.cid
FROM (SELECT a.id AS aid, c.id AS cid, random() AS r,
             row_number() OVER (PARTITION BY a.id ORDER BY c.id) AS k,
             mod(a.id, %(ncamp)s) + 1 AS pick
      FROM affiliates_affiliate AS a JOIN auth_user AS u ON u.id = a.user_id
      CROSS JOIN affiliates_campaign AS c
      WHERE a.id = %(bench)s OR starts_with(u.username, 'bench-aff-')) AS x
WHERE x.aid = %(bench)s OR x.k = x.pick OR x.r < 0.4
"""

WEIGHTS_SQL = [
    """CREATE TEMP TABLE bench_aff AS
       SELECT id AS affiliate_id, id = %(bench)s AS is_bench, random() AS r1, random() AS r2,
              random() AS r3, 0.0::float8 AS share, ''::text AS home, 0 AS sub_mode
       FROM affiliates_affiliate""",
    """UPDATE bench_aff AS b SET share = w.weight / w.total * (1 - %(share)s)
       FROM (SELECT affiliate_id, weight, sum(weight) OVER () AS total
             FROM (SELECT affiliate_id,
                          power((row_number() OVER (ORDER BY r3))::float8, -0.9) AS weight
                   FROM bench_aff WHERE NOT is_bench) AS z) AS w
       WHERE b.affiliate_id = w.affiliate_id""",
    """UPDATE bench_aff SET
         share = CASE WHEN is_bench THEN %(share)s ELSE share END,
         home = CASE WHEN is_bench THEN 'DE'
                ELSE (%(countries)s::text[])[1 + floor(r1 * %(ncountries)s)::int] END,
         sub_mode = CASE WHEN is_bench THEN 3 ELSE floor(r2 * 4)::int END""",
    "DROP TABLE IF EXISTS bench_slots",
    # Not a temp table: the parallel click loaders (other sessions) read it.
    """CREATE UNLOGGED TABLE bench_slots AS
       SELECT (row_number() OVER (ORDER BY l.id, k) - 1)::int AS slot, l.id AS link_id,
              l.affiliate_id, l.campaign_id, b.home, b.sub_mode, ck.kind
       FROM affiliates_trackinglink AS l
       JOIN bench_aff AS b ON b.affiliate_id = l.affiliate_id
       JOIN (SELECT affiliate_id, count(*) AS n FROM affiliates_trackinglink
             GROUP BY affiliate_id) AS nl ON nl.affiliate_id = l.affiliate_id
       JOIN bench_campaigns AS ck ON ck.campaign_id = l.campaign_id
       CROSS JOIN LATERAL generate_series(1, greatest(1, round(b.share / nl.n * %(slots)s)::int))
            AS k""",
    "ANALYZE bench_slots",
]

CLICKS_SQL = """
INSERT INTO attribution_click (click_id, created_at, ip, user_agent, platform, country, sub1,
                               sub2, sub3, sub4, sub5, referrer, gaid, idfa, affiliate_id,
                               campaign_id, link_id)
SELECT
  lpad(to_hex(floor(extract(epoch FROM x.at) * 1000)::bigint), 12, '0')
    || lpad(to_hex(x.g), 14, '0'),
  x.at,
  CASE WHEN x.r_ip < 0.01 THEN NULL
       WHEN x.r_ip < 0.21 THEN '100.64.0.0'::inet + (s.affiliate_id * 64 + floor(x.r_ip * 250)::int)
       ELSE '10.0.0.0'::inet + floor(x.r_ip2 * 16777215)::bigint END,
  CASE p.platform WHEN 'ios' THEN %(ua_ios)s WHEN 'android' THEN %(ua_android)s
       ELSE CASE WHEN x.r_ua < 0.6 THEN %(ua_win)s ELSE %(ua_mac)s END END,
  p.platform,
  CASE WHEN x.r_country < 0.75 THEN s.home
       ELSE (%(countries)s::text[])[1 + floor(x.r_country2 * %(ncountries)s)::int] END,
  CASE WHEN s.sub_mode >= 1
       THEN (%(sources)s::text[])[1 + floor(x.r_s1 * x.r_s1 * %(nsources)s)::int] ELSE '' END,
  CASE WHEN s.sub_mode >= 2 THEN 'ad' || floor(x.r_s2 * 40)::int ELSE '' END,
  CASE WHEN s.sub_mode >= 3 AND x.r_s3 < 0.5 THEN 'cr' || floor(x.r_s3 * 600)::int ELSE '' END,
  '', '',
  CASE WHEN p.platform = 'web' AND x.r_ref < 0.3
       THEN 'https://casino-reviews.example/top-' || mod(x.g, 50) ELSE '' END,
  CASE WHEN p.platform = 'android' AND x.r_dev < 0.6 THEN d.uuid ELSE '' END,
  CASE WHEN p.platform = 'ios' AND x.r_dev < 0.3 THEN upper(d.uuid) ELSE '' END,
  s.affiliate_id, s.campaign_id, s.link_id
FROM (SELECT g, %(t0)s::timestamptz + (g - 1 + random()) * %(step)s::interval AS at,
             floor(random() * %(nslots)s)::int AS slot, random() AS r_pf, random() AS r_ip,
             random() AS r_ip2, random() AS r_ua, random() AS r_country, random() AS r_country2,
             random() AS r_s1, random() AS r_s2, random() AS r_s3, random() AS r_ref,
             random() AS r_dev
      FROM generate_series(%(lo)s, %(hi)s, %(stride)s) AS g) AS x
JOIN bench_slots AS s ON s.slot = x.slot
CROSS JOIN LATERAL (SELECT CASE s.kind
    WHEN 'web' THEN CASE WHEN x.r_pf < 0.85 THEN 'web' WHEN x.r_pf < 0.93 THEN 'ios'
                         ELSE 'android' END
    WHEN 'ios' THEN CASE WHEN x.r_pf < 0.92 THEN 'ios' ELSE 'web' END
    WHEN 'android' THEN CASE WHEN x.r_pf < 0.92 THEN 'android' ELSE 'web' END
    ELSE CASE WHEN x.r_pf < 0.35 THEN 'ios' WHEN x.r_pf < 0.75 THEN 'android' ELSE 'web' END
    END AS platform) AS p
CROSS JOIN LATERAL (SELECT md5(x.g::text) AS h) AS hh
CROSS JOIN LATERAL (SELECT substr(hh.h, 1, 8) || '-' || substr(hh.h, 9, 4) || '-4'
    || substr(hh.h, 14, 3) || '-a' || substr(hh.h, 18, 3) || '-' || substr(hh.h, 21, 12) AS uuid)
    AS d
"""

# Every conversion's decisions, made once: the postback, its event and the conversion read them.
CONV_PLAN_SQL = """
CREATE TEMP TABLE bench_conv AS
SELECT z.n, z.click_pk, z.click_code, z.clicked_at, z.country, z.gaid, z.idfa, z.click_platform,
       o.organic, t.type, m.method, m.status,
       CASE WHEN o.organic THEN NULL ELSE z.affiliate_id END AS affiliate_id,
       CASE WHEN o.organic THEN NULL ELSE z.campaign_id END AS campaign_id,
       CASE WHEN o.organic OR m.method = 'skan' THEN NULL ELSE z.click_pk END AS click_id,
       CASE WHEN m.method = 'skan' THEN NULL ELSE z.ip END AS ip,
       CASE WHEN z.click_platform = 'web' THEN 'web' ELSE 'mobile' END AS channel,
       CASE WHEN o.organic THEN 'organic' WHEN m.status IN ('approved', 'pending') THEN 'ok'
            WHEN m.status = 'reversed' THEN 'declined'
            WHEN z.r_reason < 0.4 THEN 'low_ctit' WHEN z.r_reason < 0.7 THEN 'click_flooding'
            ELSE 'ip_burst' END AS reason,
       r.revenue,
       CASE WHEN r.revenue IS NULL THEN '' WHEN z.r_cur < 0.8 THEN 'EUR'
            WHEN z.r_cur < 0.92 THEN 'USD' ELSE 'GBP' END AS currency,
       least(z.clicked_at + CASE t.type
               WHEN 'install' THEN interval '1 minute' + z.r_time * interval '6 hours'
               WHEN 'registration' THEN interval '10 minutes' + z.r_time * interval '1 day'
               WHEN 'ftd' THEN interval '1 hour' + z.r_time * interval '3 days'
               ELSE interval '1 hour' + z.r_time * interval '20 days' END,
             %(latest)s::timestamptz) AS occurred_at,
       CASE WHEN m.method = 'skan' THEN 'skadnetwork' WHEN z.click_platform = 'ios' THEN 'appsflyer'
            WHEN z.click_platform = 'android' THEN 'adjust' ELSE 's2s' END AS source_kind
FROM (SELECT row_number() OVER (ORDER BY c.id) AS n, c.id AS click_pk, c.click_id AS click_code,
             c.affiliate_id, c.campaign_id, c.platform AS click_platform, c.country, c.ip,
             c.gaid, c.idfa, c.created_at AS clicked_at,
             random() AS r_type, random() AS r_status, random() AS r_method, random() AS r_rev,
             random() AS r_cur, random() AS r_org, random() AS r_time, random() AS r_reason
      FROM attribution_click AS c WHERE mod(c.id, %(every)s) = 0
      ORDER BY c.id LIMIT %(m)s) AS z
CROSS JOIN LATERAL (SELECT z.r_org < 0.05 AS organic) AS o
CROSS JOIN LATERAL (SELECT CASE
    WHEN z.r_type < 0.35 THEN CASE WHEN z.click_platform = 'web' THEN 'registration'
                                   ELSE 'install' END
    WHEN z.r_type < 0.60 THEN 'registration' WHEN z.r_type < 0.72 THEN 'ftd'
    WHEN z.r_type < 0.92 THEN 'deposit' WHEN z.r_type < 0.95 THEN 'purchase'
    WHEN z.r_type < 0.97 THEN 'withdrawal' WHEN z.r_type < 0.98 THEN 'bonus'
    WHEN z.r_type < 0.99 THEN 'chargeback' ELSE 'custom' END AS type) AS t
CROSS JOIN LATERAL (SELECT
    CASE WHEN o.organic THEN 'none'
         WHEN z.click_platform = 'ios' AND t.type = 'install' AND z.r_method < 0.15 THEN 'skan'
         WHEN z.click_platform = 'android' AND z.r_method < 0.10 THEN 'device_id'
         ELSE 'click_id' END AS method,
    CASE WHEN o.organic OR z.r_status < 0.72 THEN 'approved' WHEN z.r_status < 0.85 THEN 'pending'
         WHEN z.r_status < 0.96 THEN 'rejected' ELSE 'reversed' END AS status) AS m
CROSS JOIN LATERAL (SELECT CASE WHEN t.type IN ('install', 'registration') THEN NULL
    ELSE round((10 + z.r_rev * z.r_rev * 490)::numeric, 2) END AS revenue) AS r
"""

POSTBACKS_SQL = """
INSERT INTO attribution_postback (id, kind, method, query, body, content_type, headers,
                                  remote_addr, received_at, dedup_key, status, reason, signature,
                                  attempts, processed_at, source_id)
SELECT %(pb0)s + v.n, v.source_kind, 'GET',
       'click_id=' || coalesce(v.click_code, '') || '&event=' || v.type || '&txid=bench-' || v.n,
       '', '', '{}'::jsonb, NULL, v.occurred_at + interval '2 seconds', 'bench:' || v.n,
       'processed', '', CASE WHEN v.method = 'skan' THEN 'valid' ELSE '' END, 1,
       v.occurred_at + interval '3 seconds', s.id
FROM bench_conv AS v
LEFT JOIN attribution_postbacksource AS s ON s.kind = v.source_kind AND v.method <> 'skan'
WHERE v.n BETWEEN %(lo)s AND %(hi)s
ORDER BY v.n
"""

EVENTS_SQL = """
INSERT INTO attribution_postbackevent (id, kind, event_name, conversion_type, occurred_at,
    click_id, mmp_device_id, gaid, idfa, idfv, app_identifier, platform, revenue, currency,
    country, blocked_reason, touch_type, touch_time, installed_at, player_id, txid, status, ip,
    is_retargeting, skan, created_at, app_id, postback_id, source_id)
SELECT %(ev0)s + v.n, CASE WHEN v.type = 'install' THEN 'install' ELSE 'event' END, v.type, v.type,
       v.occurred_at, CASE WHEN v.click_id IS NULL THEN '' ELSE v.click_code END,
       CASE WHEN v.channel = 'mobile' THEN 'dev-' || v.click_pk ELSE '' END, v.gaid, v.idfa, '',
       CASE WHEN v.channel = 'mobile' THEN 'com.luckyspins.casino' ELSE '' END,
       CASE WHEN v.method = 'skan' THEN 'ios' ELSE v.click_platform END, v.revenue, v.currency,
       v.country, '', CASE WHEN v.click_id IS NULL THEN '' ELSE 'click' END,
       CASE WHEN v.click_id IS NULL THEN NULL ELSE v.clicked_at END,
       CASE WHEN v.type = 'install' THEN v.occurred_at END, 'player-' || v.click_pk,
       'bench-' || v.n, '', v.ip, false,
       CASE WHEN v.method = 'skan' THEN '{"conversion_value": 1}'::jsonb END,
       v.occurred_at + interval '4 seconds',
       CASE v.click_platform WHEN 'ios' THEN %(app_ios)s::bigint
                             WHEN 'android' THEN %(app_android)s::bigint END,
       %(pb0)s + v.n, s.id
FROM bench_conv AS v
LEFT JOIN attribution_postbacksource AS s ON s.kind = v.source_kind AND v.method <> 'skan'
WHERE v.n BETWEEN %(lo)s AND %(hi)s
ORDER BY v.n
"""

CONVERSIONS_SQL = """
INSERT INTO attribution_conversion (id, type, channel, platform, method, touch_type, occurred_at,
    ctit_seconds, revenue, currency, country, player_key, ip, status, reason, detail, claim_key,
    is_winner, skan_sequence_index, skan_conversion_value, skan_coarse_value, created_at,
    updated_at, affiliate_id, app_id, brand_id, campaign_id, click_id, duplicate_of_id, event_id,
    ledger_synced)
SELECT %(cv0)s + v.n, v.type, v.channel, v.click_platform, v.method,
       CASE WHEN v.click_id IS NULL THEN '' ELSE 'click' END, v.occurred_at,
       CASE WHEN v.type = 'install' AND v.click_id IS NOT NULL
            THEN extract(epoch FROM v.occurred_at - v.clicked_at)::bigint END,
       v.revenue, v.currency, v.country, 'player-' || v.click_pk, v.ip, v.status, v.reason, '',
       v.type || ':bench-' || v.n, true,
       CASE WHEN v.method = 'skan' THEN 0 END, CASE WHEN v.method = 'skan' THEN 1 END,
       CASE WHEN v.method = 'skan' THEN 'low' ELSE '' END,
       v.occurred_at + interval '5 seconds', v.occurred_at + interval '5 seconds',
       v.affiliate_id, CASE v.click_platform WHEN 'ios' THEN %(app_ios)s::bigint
                                             WHEN 'android' THEN %(app_android)s::bigint END,
       %(brand)s, v.campaign_id, v.click_id, NULL, %(ev0)s + v.n, true
FROM bench_conv AS v
WHERE v.n BETWEEN %(lo)s AND %(hi)s
ORDER BY v.n
"""

LEDGER_COLUMNS = """(key, kind, period, amount, currency, original_amount, original_currency,
    fx_rate, status, available_at, note, created_at, beneficiary_id, conversion_id,
    source_entry_id, payout_id, plan_version_id)"""

LEDGER_SQL = f"""
INSERT INTO payouts_ledgerentry {LEDGER_COLUMNS}
SELECT 'cpa:c' || v.id || ':a' || v.affiliate_id || ':g1', 'cpa', NULL, round(x.base * x.fx, 2),
       a.currency, x.base, 'EUR', x.fx,
       CASE v.status WHEN 'pending' THEN 'pending' WHEN 'rejected' THEN 'void' ELSE 'approved' END,
       v.occurred_at + interval '14 days', '', v.occurred_at + interval '1 minute',
       v.affiliate_id, v.id, NULL, NULL, %(plan_version)s
FROM attribution_conversion AS v JOIN affiliates_affiliate AS a ON a.id = v.affiliate_id
CROSS JOIN LATERAL (SELECT (CASE v.type WHEN 'ftd' THEN 100 ELSE 2 END)::numeric AS base,
    (CASE a.currency WHEN 'USD' THEN 1.0869565217 WHEN 'GBP' THEN 0.8620689655
                     ELSE 1 END)::numeric AS fx) AS x
WHERE v.affiliate_id IS NOT NULL
  AND ((v.type = 'install' AND v.status <> 'rejected') OR (v.type = 'ftd' AND v.revenue >= 20))
ORDER BY v.id
"""  # noqa: S608 - constant text

REVERSALS_SQL = f"""
INSERT INTO payouts_ledgerentry {LEDGER_COLUMNS}
SELECT 'reversal:' || e.key, 'reversal', NULL, -e.amount, e.currency, -e.original_amount,
       e.original_currency, e.fx_rate, 'approved', e.available_at, 'conversion reversed',
       e.created_at + interval '2 days', e.beneficiary_id, e.conversion_id, e.id, NULL, NULL
FROM payouts_ledgerentry AS e JOIN attribution_conversion AS v ON v.id = e.conversion_id
WHERE v.status = 'reversed' AND e.kind = 'cpa'
"""  # noqa: S608 - constant text

REVSHARE_SQL = f"""
INSERT INTO payouts_ledgerentry {LEDGER_COLUMNS}
SELECT 'revshare:a' || %(bench)s || ':' || m::date, 'revshare', m::date, x.amount, 'EUR',
       x.amount, 'EUR', 1, 'approved', m + interval '1 month 14 days', 'monthly RevShare',
       m + interval '1 month', %(bench)s, NULL, NULL, NULL, %(plan_version)s
FROM generate_series(date_trunc('month', %(t0)s::timestamptz), %(now)s::timestamptz,
                     interval '1 month') AS m
CROSS JOIN LATERAL (SELECT round((500 + 1500 * random())::numeric, 2) AS amount, m AS mm) AS x
"""  # noqa: S608 - constant text

# What attribution.rollup.conversion_counters counts: rejected ones as "rejected", approved and
# pending ones by type; a conversion that counts nothing makes no row.
COUNTED = "v.status IN ('approved', 'pending')"
MAKES_ROW = f"""(v.status = 'rejected' OR ({COUNTED} AND (
    v.type IN ('install', 'registration', 'ftd', 'deposit')
    OR (v.type IN ('purchase', 'custom') AND coalesce(v.revenue, 0) <> 0))))"""
CONVERSION_COUNTERS = f"""
    count(*) FILTER (WHERE {COUNTED} AND v.type = 'install'),
    count(*) FILTER (WHERE {COUNTED} AND v.type = 'registration'),
    count(*) FILTER (WHERE {COUNTED} AND v.type = 'ftd'),
    count(*) FILTER (WHERE {COUNTED} AND v.type IN ('ftd', 'deposit')),
    coalesce(sum(coalesce(v.revenue, 0)) FILTER (WHERE {COUNTED} AND v.type IN ('ftd', 'deposit')),
             0),
    coalesce(sum(v.revenue) FILTER (WHERE {COUNTED} AND v.type IN ('purchase', 'custom')), 0),
    count(*) FILTER (WHERE v.status = 'rejected')"""
SUMS = """sum(installs), sum(registrations), sum(ftds), sum(deposits), sum(deposit_amount),
       sum(revenue), sum(rejected)"""

# What attribution.rollups.keep counts as commission: every entry that is not void, in its
# beneficiary's rows on its conversion's local day and dimensions; monthly ones (no conversion)
# on their month's last day with no dimensions. (The bench makes no sub-affiliate shares: every
# amount is the beneficiary's own commission, sub_affiliate_id 0.)
NO_COUNTS = "0, 0, 0, 0, 0::numeric, 0::numeric, 0"
EARNED = "e.status <> 'void'"
MONTH_END = "(date_trunc('month', e.period) + interval '1 month' - interval '1 day')::date"

DAILY_ROLLUP_SQL = f"""
INSERT INTO attribution_dailyrollup (day, affiliate_id, campaign_id, channel, platform, country,
    currency, sub_affiliate_id, clicks, unique_clicks, installs, registrations, ftds, deposits,
    deposit_amount, revenue, rejected, commission, sub_commission)
SELECT day, affiliate_id, campaign_id, channel, platform, country, currency, 0,
       sum(clicks), sum(unique_clicks), {SUMS}, sum(commission), 0
FROM (
  SELECT (c.created_at AT TIME ZONE a.time_zone)::date AS day, c.affiliate_id::int AS affiliate_id,
         c.campaign_id::int AS campaign_id,
         CASE WHEN c.platform = 'web' THEN 'web' ELSE 'mobile' END AS channel, c.platform,
         c.country, ''::varchar AS currency, count(*) AS clicks,
         count(DISTINCT c.ip) + count(*) FILTER (WHERE c.ip IS NULL) AS unique_clicks,
         0 AS installs, 0 AS registrations, 0 AS ftds, 0 AS deposits, 0::numeric AS deposit_amount,
         0::numeric AS revenue, 0 AS rejected, 0::numeric AS commission
  FROM attribution_click AS c JOIN affiliates_affiliate AS a ON a.id = c.affiliate_id
  GROUP BY 1, 2, 3, 4, 5, 6
  UNION ALL
  SELECT (v.occurred_at AT TIME ZONE coalesce(a.time_zone, 'UTC'))::date,
         coalesce(v.affiliate_id, 0)::int, coalesce(v.campaign_id, 0)::int, v.channel,
         CASE WHEN v.method = 'skan' THEN 'skan' ELSE v.platform END, v.country,
         CASE WHEN v.revenue IS NOT NULL THEN v.currency ELSE '' END, 0, 0, {CONVERSION_COUNTERS},
         0
  FROM attribution_conversion AS v LEFT JOIN affiliates_affiliate AS a ON a.id = v.affiliate_id
  WHERE {MAKES_ROW}
  GROUP BY 1, 2, 3, 4, 5, 6, 7
  UNION ALL
  SELECT (v.occurred_at AT TIME ZONE b.time_zone)::date, e.beneficiary_id::int,
         coalesce(v.campaign_id, 0)::int, v.channel,
         CASE WHEN v.method = 'skan' THEN 'skan' ELSE v.platform END, v.country, e.currency,
         0, 0, {NO_COUNTS}, sum(e.amount)
  FROM payouts_ledgerentry AS e JOIN affiliates_affiliate AS b ON b.id = e.beneficiary_id
  JOIN attribution_conversion AS v ON v.id = e.conversion_id
  WHERE {EARNED}
  GROUP BY 1, 2, 3, 4, 5, 6, 7
  UNION ALL
  SELECT {MONTH_END}, e.beneficiary_id::int, 0, '', '', '', e.currency, 0, 0, {NO_COUNTS},
         sum(e.amount)
  FROM payouts_ledgerentry AS e
  WHERE e.conversion_id IS NULL AND e.period IS NOT NULL AND {EARNED}
  GROUP BY 1, 2, 7
) AS u
GROUP BY day, affiliate_id, campaign_id, channel, platform, country, currency
ORDER BY day, affiliate_id
"""  # noqa: S608 - constant text

SUB_ROLLUP_SQL = f"""
INSERT INTO attribution_subrollup (day, affiliate_id, campaign_id, channel, platform, country,
    currency, sub, value, clicks, installs, registrations, ftds, deposits, deposit_amount, revenue,
    rejected, commission, sub_commission)
SELECT day, affiliate_id, campaign_id, channel, platform, country, currency, sub, value,
       sum(clicks), {SUMS}, sum(commission), 0
FROM (
  SELECT (c.created_at AT TIME ZONE a.time_zone)::date AS day, c.affiliate_id::int AS affiliate_id,
         c.campaign_id::int AS campaign_id,
         CASE WHEN c.platform = 'web' THEN 'web' ELSE 'mobile' END AS channel, c.platform,
         c.country, ''::varchar AS currency, s.sub, s.value,
         count(*) AS clicks, 0 AS installs, 0 AS registrations, 0 AS ftds, 0 AS deposits,
         0::numeric AS deposit_amount, 0::numeric AS revenue, 0 AS rejected,
         0::numeric AS commission
  FROM attribution_click AS c JOIN affiliates_affiliate AS a ON a.id = c.affiliate_id
  CROSS JOIN LATERAL (VALUES (1, c.sub1), (2, c.sub2), (3, c.sub3), (4, c.sub4), (5, c.sub5))
       AS s (sub, value)
  WHERE s.value <> ''
  GROUP BY 1, 2, 3, 4, 5, 6, 8, 9
  UNION ALL
  SELECT (v.occurred_at AT TIME ZONE a.time_zone)::date, v.affiliate_id::int,
         coalesce(v.campaign_id, 0)::int, v.channel,
         CASE WHEN v.method = 'skan' THEN 'skan' ELSE v.platform END, v.country,
         CASE WHEN v.revenue IS NOT NULL THEN v.currency ELSE '' END, s.sub, s.value, 0,
         {CONVERSION_COUNTERS}, 0
  FROM attribution_conversion AS v JOIN affiliates_affiliate AS a ON a.id = v.affiliate_id
  JOIN attribution_click AS c ON c.id = v.click_id
  CROSS JOIN LATERAL (VALUES (1, c.sub1), (2, c.sub2), (3, c.sub3), (4, c.sub4), (5, c.sub5))
       AS s (sub, value)
  WHERE s.value <> '' AND {MAKES_ROW}
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
  UNION ALL
  SELECT (v.occurred_at AT TIME ZONE b.time_zone)::date, e.beneficiary_id::int,
         coalesce(v.campaign_id, 0)::int, v.channel,
         CASE WHEN v.method = 'skan' THEN 'skan' ELSE v.platform END, v.country, e.currency,
         s.sub, s.value, 0, {NO_COUNTS}, sum(e.amount)
  FROM payouts_ledgerentry AS e JOIN affiliates_affiliate AS b ON b.id = e.beneficiary_id
  JOIN attribution_conversion AS v ON v.id = e.conversion_id
  JOIN attribution_click AS c ON c.id = v.click_id
  CROSS JOIN LATERAL (VALUES (1, c.sub1), (2, c.sub2), (3, c.sub3), (4, c.sub4), (5, c.sub5))
       AS s (sub, value)
  WHERE s.value <> '' AND {EARNED}
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
) AS u
GROUP BY day, affiliate_id, campaign_id, channel, platform, country, currency, sub, value
ORDER BY day, affiliate_id
"""  # noqa: S608 - constant text

# The click counters cover the clicks up to the fill's watermark; the rest is read live.
WATERMARK_SQL = """
INSERT INTO attribution_fillstate (name, last_id, updated_at)
SELECT 'clicks', coalesce(max(id), 0), now() FROM attribution_click
ON CONFLICT (name) DO UPDATE SET last_id = EXCLUDED.last_id, updated_at = EXCLUDED.updated_at
"""

ROLLUP_COLUMNS = {
    "attribution_dailyrollup": "day, affiliate_id, campaign_id, channel, platform, country, "
    "currency, sub_affiliate_id, clicks, unique_clicks, installs, registrations, ftds, deposits, "
    "deposit_amount, revenue, rejected, commission, sub_commission",
    "attribution_subrollup": "day, affiliate_id, campaign_id, channel, platform, country, "
    "currency, sub, value, clicks, installs, registrations, ftds, deposits, deposit_amount, "
    "revenue, rejected, commission, sub_commission",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="of 10M clicks / 1M conversions [1.0]"
    )
    parser.add_argument("--affiliates", type=int, default=AFFILIATES, help="in all [1000]")
    parser.add_argument("--seconds", type=float, default=10, help="per measured phase [10]")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds [2]")
    parser.add_argument("--clients", type=int, default=2, help="load client processes [2]")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers [2]")
    parser.add_argument(
        "--full-rebuild",
        choices=["auto", "yes", "no"],
        default="auto",
        help="run rebuild_rollups --days 91 too (auto: if the estimate fits --rebuild-limit)",
    )
    parser.add_argument(
        "--rebuild-limit", type=float, default=600, help="seconds, for --full-rebuild auto [600]"
    )
    parser.add_argument("--reuse", action="store_true", help="measure the existing database")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1 or args.seconds <= 0 or args.clients < 1 or args.workers < 1:
        parser.error("--scale in (0, 1], --seconds, --clients and --workers positive")
    if args.affiliates < 10:
        parser.error("--affiliates: at least 10")
    return args


@contextlib.contextmanager
def step(name: str, timings: dict[str, float]):
    log(f"{name} ...")
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0
    log(f"{name}: {timings[name]:.1f}s")


def gen_connection() -> psycopg.Connection:
    """Client-side binding (the temp-table statements take parameters), FK triggers off."""
    conn = harness.pg_connect(DB)
    conn.cursor_factory = psycopg.ClientCursor
    for setting in (
        "SET session_replication_role = replica",  # no FK trigger per row: data is built valid
        "SET synchronous_commit = off",
        "SET work_mem = '512MB'",
        "SET maintenance_work_mem = '1GB'",
        "SET max_parallel_maintenance_workers = 2",
        "SET statement_timeout = '30min'",
    ):
        conn.execute(setting)
    conn.execute("SELECT setseed(%s)", [SEED])
    return conn


def index_definitions(conn, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass",
        [table],
    ).fetchall()
    return sorted(r[0] for r in rows)


@contextlib.contextmanager
def without_indexes(conn, table: str):
    """Load ``table`` without its secondary indexes and unique constraints, then rebuild them
    from their exact definitions (and check the set is the same as before)."""
    before = index_definitions(conn, table)
    uniques = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'u' ORDER BY conname",
        [table],
    ).fetchall()
    plain = conn.execute(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i
           JOIN pg_class AS c ON c.oid = i.indexrelid
           WHERE i.indrelid = %s::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)
           ORDER BY c.relname""",
        [table],
    ).fetchall()
    ident = sql.Identifier(table)
    for name, _ in uniques:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(ident, sql.Identifier(name))
        )
    for name, _ in plain:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    t0 = time.perf_counter()
    for name, definition in uniques:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(ident, sql.Identifier(name))
            + sql.SQL(definition)
        )
    for _, definition in plain:
        conn.execute(definition)
    if index_definitions(conn, table) != before:
        raise RuntimeError(f"the indexes of {table} differ from before the load")
    log(
        f"  {table}: {len(uniques) + len(plain)} indexes rebuilt "
        f"({time.perf_counter() - t0:.1f}s), same definitions as before"
    )


def chunks(total: int, size: int = CHUNK):
    for lo in range(1, total + 1, size):
        yield lo, min(total, lo + size - 1)


def create_program(env: dict[str, str]) -> dict:
    demo = harness.seed_demo(env)
    proc = harness.manage(
        "shell",
        "-c",
        CREATE_BENCH_USER.format(u=BENCH_USERNAME, p=BENCH_PASSWORD, tz=BENCH_ZONE),
        env=env,
    )
    bench = json.loads(proc.stdout.strip().splitlines()[-1])
    token = secrets.token_hex(20)
    with harness.pg_connect(DB) as conn:
        conn.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, now(), %s)",
            [token, bench["user_id"]],
        )
    return {"demo": demo, **bench, "token": token}


def generate(args: argparse.Namespace, program: dict, timings: dict[str, float]) -> dict:
    n_clicks = round(CLICKS * args.scale)
    n_conv = round(CONVERSIONS * args.scale)
    demo, bench = program["demo"], program["affiliate_id"]
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(days=DAYS)
    latest = now - timedelta(minutes=1)
    step_size = (latest - t0) / n_clicks
    with gen_connection() as conn:
        with step("affiliates, users and links", timings):
            existing = conn.execute("SELECT count(*) FROM affiliates_affiliate").fetchone()[0]
            n_new = max(0, args.affiliates - existing)
            conn.execute(USERS_SQL, {"n": n_new})
            conn.execute(AFFILIATES_SQL, {"zones": ZONES})
            campaigns = demo["campaigns"]  # kind -> id
            conn.execute(LINKS_SQL, {"bench": bench, "ncamp": len(campaigns)})
            conn.execute("CREATE TEMP TABLE bench_campaigns (campaign_id bigint, kind text)")
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO bench_campaigns VALUES (%s, %s)",
                    [(cid, kind) for kind, cid in campaigns.items()],
                )
            params = {
                "bench": bench,
                "share": BENCH_SHARE,
                "countries": COUNTRIES,
                "ncountries": len(COUNTRIES),
                "slots": SLOTS,
            }
            for statement in WEIGHTS_SQL:
                conn.execute(statement, params)
            n_slots, bench_slots = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE affiliate_id = %s) FROM bench_slots",
                [bench],
            ).fetchone()
            n_aff, n_links = conn.execute(
                "SELECT (SELECT count(*) FROM affiliates_affiliate), "
                "(SELECT count(*) FROM affiliates_trackinglink)"
            ).fetchone()
            log(
                f"  {n_aff} affiliates ({n_new} generated), {n_links} links, {n_slots:,} click "
                f"slots ({bench_slots} = {100 * bench_slots / n_slots:.2f}% the bench affiliate's)"
            )

        with step(f"clicks ({n_clicks:,})", timings), without_indexes(conn, "attribution_click"):
            params = {
                "t0": t0,
                "step": step_size,
                "nslots": n_slots,
                "countries": COUNTRIES,
                "ncountries": len(COUNTRIES),
                "sources": TRAFFIC_SOURCES,
                "nsources": len(TRAFFIC_SOURCES),
                "ua_ios": UA["ios"],
                "ua_android": UA["android"],
                "ua_win": UA["win"],
                "ua_mac": UA["mac"],
            }
            load_clicks(params, n_clicks)
            conn.execute("DROP TABLE bench_slots")

        with step(f"conversions ({n_conv:,}) with postbacks and events", timings):
            offsets = conn.execute(
                "SELECT (SELECT coalesce(max(id), 0) FROM attribution_postback), "
                "(SELECT coalesce(max(id), 0) FROM attribution_postbackevent), "
                "(SELECT coalesce(max(id), 0) FROM attribution_conversion), "
                "(SELECT min(id) FROM payouts_planversion)"
            ).fetchone()
            pb0, ev0, cv0, plan_version = offsets
            conn.execute(
                CONV_PLAN_SQL,
                {"every": max(1, n_clicks // n_conv), "m": n_conv, "latest": latest},
            )
            made = conn.execute("SELECT count(*) FROM bench_conv").fetchone()[0]
            log(f"  planned {made:,} conversions (one click in {max(1, n_clicks // n_conv)})")
            params = {
                "pb0": pb0,
                "ev0": ev0,
                "cv0": cv0,
                "app_ios": demo["apps"]["ios"],
                "app_android": demo["apps"]["android"],
                "brand": demo["brand_id"],
            }
            for table, statement in (
                ("attribution_postback", POSTBACKS_SQL),
                ("attribution_postbackevent", EVENTS_SQL),
                ("attribution_conversion", CONVERSIONS_SQL),
            ):
                with without_indexes(conn, table):
                    started = time.perf_counter()
                    for lo, hi in chunks(made):
                        conn.execute(statement, {**params, "lo": lo, "hi": hi})
                    log(f"  {table}: {made:,} rows ({time.perf_counter() - started:.1f}s)")
                conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({}, 'id'), max(id)) FROM {}"
                    ).format(sql.Literal(table), sql.Identifier(table))
                )

        with (
            step("ledger entries", timings),
            without_indexes(conn, "payouts_ledgerentry"),
        ):
            n_cpa = conn.execute(LEDGER_SQL, {"plan_version": plan_version}).rowcount
            n_rev = conn.execute(REVERSALS_SQL).rowcount
            n_rs = conn.execute(
                REVSHARE_SQL, {"bench": bench, "t0": t0, "now": now, "plan_version": plan_version}
            ).rowcount
            log(f"  {n_cpa:,} CPA, {n_rev:,} reversals, {n_rs} RevShare (bench affiliate)")

    build_rollups_sql(timings)
    return {"clicks": n_clicks, "conversions": n_conv, "now": now}


def load_clicks(params: dict, n_clicks: int) -> None:
    """Chunks of CLICKS_SQL; each chunk split over PARALLEL sessions by interleaving (g, g+2,
    ...), so they write the same time range at once and the ids stay in time order."""
    started = time.perf_counter()
    conns = [gen_connection() for _ in range(PARALLEL)]
    try:
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            for lo, hi in chunks(n_clicks):

                def part(w: int, lo: int = lo, hi: int = hi) -> None:
                    conns[w].execute("SELECT setseed(%s)", [((lo + w) % 9973) / 9973])
                    values = {**params, "lo": lo + w, "hi": hi, "stride": PARALLEL}
                    conns[w].execute(CLICKS_SQL, values)

                list(pool.map(part, range(PARALLEL)))
                rate = hi / (time.perf_counter() - started)
                log(f"  clicks {hi:>11,}/{n_clicks:,} ({rate:,.0f} rows/s, {PARALLEL} sessions)")
    finally:
        for c in conns:
            c.close()


def build_rollups_sql(timings: dict[str, float]) -> None:
    """DailyRollup and SubRollup at once, each in its own session."""

    def build(table: str, statement: str) -> tuple[str, int, float]:
        t0 = time.perf_counter()
        with gen_connection() as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
            with without_indexes(conn, table):
                rows = conn.execute(statement).rowcount
        return table, rows, time.perf_counter() - t0

    with gen_connection() as conn:
        conn.execute(WATERMARK_SQL)
    with step("rollups by SQL (INSERT ... SELECT ... GROUP BY, 2 sessions)", timings):
        with ThreadPoolExecutor(max_workers=2) as pool:
            done = list(
                pool.map(
                    build,
                    ["attribution_dailyrollup", "attribution_subrollup"],
                    [DAILY_ROLLUP_SQL, SUB_ROLLUP_SQL],
                )
            )
        for table, rows, seconds in done:
            timings[f"  {table} by SQL"] = seconds
            log(f"  {table}: {rows:,} rows ({seconds:.1f}s)")


def vacuum_analyze(timings: dict[str, float], tables: list[str] | None = None) -> None:
    name = "VACUUM ANALYZE" + (f" {', '.join(tables)}" if tables else " (whole database)")
    with step(name, timings), harness.pg_connect(DB) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        if tables:
            for table in tables:
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        else:
            conn.execute("VACUUM (ANALYZE)")


def snapshot(conn, table: str, since: date | None, until: date | None) -> str:
    name = f"snap_{table}"
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
    where = sql.SQL("")
    if since is not None:
        where = sql.SQL(" WHERE day BETWEEN {} AND {}").format(
            sql.Literal(since), sql.Literal(until)
        )
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {}").format(
            sql.Identifier(name), sql.SQL(ROLLUP_COLUMNS[table]), sql.Identifier(table)
        )
        + where
    )
    return name


def compare(conn, table: str, since: date | None, until: date | None) -> tuple[int, int, int]:
    """(rows in the snapshot, rows now, rows that differ either way) for the days compared."""
    cols = sql.SQL(ROLLUP_COLUMNS[table])
    where = sql.SQL("")
    if since is not None:
        where = sql.SQL(" WHERE day BETWEEN {} AND {}").format(
            sql.Literal(since), sql.Literal(until)
        )
    current = sql.SQL("SELECT {} FROM {}").format(cols, sql.Identifier(table)) + where
    snap = sql.SQL("SELECT {} FROM {}").format(cols, sql.Identifier(f"snap_{table}"))
    query = sql.SQL(
        "SELECT (SELECT count(*) FROM ({snap}) AS a), (SELECT count(*) FROM ({cur}) AS b), "
        "(SELECT count(*) FROM (({cur}) EXCEPT ALL ({snap})) AS c) + "
        "(SELECT count(*) FROM (({snap}) EXCEPT ALL ({cur})) AS d)"
    ).format(snap=snap, cur=current)
    return conn.execute(query).fetchone()


def verify_rollups(args, env, timings: dict[str, float], report: list[str]) -> bool:
    """rebuild_rollups for two whole days, compared with the SQL-built rows; then the full
    rebuild if it fits."""
    today = datetime.now(UTC).date()
    since, until = today - timedelta(days=2), today - timedelta(days=1)
    ok = True
    with harness.pg_connect(DB) as conn:
        for table in ROLLUP_COLUMNS:
            snapshot(conn, table, since, until)
        name = f"rebuild_rollups --since {since} --until {until} (Python)"
        with step(name, timings):
            harness.manage(
                "rebuild_rollups", "--since", str(since), "--until", str(until), env=env,
                timeout=1800,
            )  # fmt: skip
        empty = str(today - timedelta(days=400))  # no data: Django start-up and one day's queries
        fixed = f"rebuild_rollups --since {empty} --until {empty} (a day without data)"
        with step(fixed, timings):
            harness.manage("rebuild_rollups", "--since", empty, "--until", empty, env=env)
        seconds = max(0.0, timings[name] - timings[fixed])
        for table in ROLLUP_COLUMNS:
            before, after, differ = compare(conn, table, since, until)
            verdict = "MATCH" if differ == 0 and before == after else "MISMATCH"
            ok = ok and verdict == "MATCH"
            line = (
                f"{table} {since}..{until}: SQL-built {before:,} rows, rebuild_rollups "
                f"{after:,} rows, {differ} differing -> {verdict}"
            )
            log("  " + line)
            report.append(line)
        per_day = seconds / 2
        estimate = timings[fixed] + per_day * 93  # --days 91: today-91 .. tomorrow
        line = (
            f"rebuild_rollups: {timings[name]:.1f}s for 2 days, {timings[fixed]:.1f}s for an empty"
            f" day -> {per_day:.1f}s per day of data -> --days 91 (93 days) ~ {estimate:.0f}s "
            f"({estimate / 60:.1f} min) estimated"
        )
        log("  " + line)
        report.append(line)
        run_full = args.full_rebuild == "yes" or (
            args.full_rebuild == "auto" and estimate <= args.rebuild_limit
        )
        if not run_full:
            report.append(
                f"full rebuild_rollups --days 91 not run (estimate {estimate:.0f}s > "
                f"{args.rebuild_limit:.0f}s limit): bulk built by SQL, sample proven equal"
                if args.full_rebuild == "auto"
                else "full rebuild_rollups --days 91 not run (--full-rebuild no)"
            )
            return ok
        for table in ROLLUP_COLUMNS:
            snapshot(conn, table, None, None)
        name = "rebuild_rollups --days 91 (Python, all rows)"
        with step(name, timings):
            harness.manage("rebuild_rollups", "--days", "91", env=env, timeout=3600)
        line = f"rebuild_rollups --days 91: {timings[name]:.1f}s (estimate was {estimate:.0f}s)"
        report.append(line)
        for table in ROLLUP_COLUMNS:
            before, after, differ = compare(conn, table, None, None)
            verdict = "MATCH" if differ == 0 and before == after else "MISMATCH"
            ok = ok and verdict == "MATCH"
            line = (
                f"{table} all days: SQL-built {before:,} rows, rebuild_rollups {after:,} rows, "
                f"{differ} differing -> {verdict}"
            )
            log("  " + line)
            report.append(line)
    return ok


def data_summary(bench: int) -> list[str]:
    with harness.pg_connect(DB) as conn:
        c = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE affiliate_id = %s),
                      count(DISTINCT affiliate_id), min(created_at), max(created_at)
               FROM attribution_click""",
            [bench],
        ).fetchone()
        n_aff = conn.execute("SELECT count(*) FROM affiliates_affiliate").fetchone()[0]
        v = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE affiliate_id = %s) "
            "FROM attribution_conversion",
            [bench],
        ).fetchone()
        mix = conn.execute(
            "SELECT string_agg(type || ' ' || n, ', ' ORDER BY n DESC) FROM "
            "(SELECT type, count(*) AS n FROM attribution_conversion GROUP BY type) AS t"
        ).fetchone()[0]
        statuses = conn.execute(
            "SELECT string_agg(status || ' ' || n, ', ' ORDER BY n DESC) FROM "
            "(SELECT status, count(*) AS n FROM attribution_conversion GROUP BY status) AS t"
        ).fetchone()[0]
        ledger = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE beneficiary_id = %s) FROM payouts_ledgerentry",
            [bench],
        ).fetchone()
        rollups = {
            table: conn.execute(
                sql.SQL(
                    "SELECT count(*), count(*) FILTER (WHERE affiliate_id = %s) FROM {}"
                ).format(sql.Identifier(table)),
                [bench],
            ).fetchone()
            for table in ROLLUP_COLUMNS
        }
        sizes = conn.execute(
            """SELECT string_agg(relname || ' ' || pg_size_pretty(pg_total_relation_size(oid)),
                                 ', ' ORDER BY pg_total_relation_size(oid) DESC)
               FROM pg_class WHERE relname IN ('attribution_click', 'attribution_conversion',
                 'attribution_postback', 'attribution_postbackevent', 'payouts_ledgerentry',
                 'attribution_dailyrollup', 'attribution_subrollup')"""
        ).fetchone()[0]
        db_size = conn.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()[0]
    return [
        f"clicks: {c[0]:,} ({c[3]:%Y-%m-%d %H:%M} .. {c[4]:%Y-%m-%d %H:%M} UTC), bench affiliate "
        f"{c[1]:,} ({100 * c[1] / max(1, c[0]):.2f}%), {c[2]} of {n_aff} affiliates have clicks",
        f"conversions: {v[0]:,}, bench affiliate {v[1]:,}; {mix}",
        f"conversion statuses: {statuses}",
        f"ledger entries: {ledger[0]:,}, bench affiliate {ledger[1]:,}",
        *(f"{table}: {n:,} rows, bench affiliate {b:,}" for table, (n, b) in rollups.items()),
        f"sizes: {sizes}; database {db_size}",
    ]


def existing_program() -> dict:
    with harness.pg_connect(DB) as conn:
        row = conn.execute(
            """SELECT u.id, a.id, t.key FROM auth_user AS u
               JOIN affiliates_affiliate AS a ON a.user_id = u.id
               JOIN authtoken_token AS t ON t.user_id = u.id WHERE u.username = %s""",
            [BENCH_USERNAME],
        ).fetchone()
    if row is None:
        raise RuntimeError(f"--reuse: no bench user with a token in {DB}")
    return {"user_id": row[0], "affiliate_id": row[1], "token": row[2]}


# --- Step 2: load -----------------------------------------------------------------------------


def request(
    port: int, method: str, path: str, *, body: str = "", headers: dict | None = None
) -> tuple[int, list[str], bytes]:
    conn = http.client.HTTPConnection(harness.HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, resp.msg.get_all("Set-Cookie") or [], resp.read()
    finally:
        conn.close()


def cookie(set_cookies: list[str], name: str) -> str:
    for header in set_cookies:
        found = re.match(rf"\s*{re.escape(name)}=([^;]*)", header)
        if found:
            return found.group(1)
    return ""


def login(port: int) -> str:
    """A real sign-in: GET /login/ for the CSRF cookie and token, POST the form: sessionid."""
    status, cookies, body = request(port, "GET", "/login/", headers=HEADERS)
    csrf = cookie(cookies, "csrftoken")
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    if status != 200 or not csrf or not found:
        raise RuntimeError(f"GET /login/ answered {status} without a CSRF cookie and token")
    form = urlencode(
        {
            "username": BENCH_USERNAME,
            "password": BENCH_PASSWORD,
            "csrfmiddlewaretoken": found.group(1).decode(),
            "next": "/dashboard/",
        }
    )
    status, cookies, _ = request(
        port,
        "POST",
        "/login/",
        body=form,
        headers={
            **HEADERS,
            "Cookie": f"csrftoken={csrf}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    session = cookie(cookies, "sessionid")
    if status != 302 or not session:
        raise RuntimeError(f"POST /login/ answered {status} without a session cookie")
    return session


def endpoints(token: str, session: str, now: datetime) -> list[tuple[str, str, dict]]:
    today = now.astimezone(zoneinfo.ZoneInfo(BENCH_ZONE)).date()
    start, end = today - timedelta(days=DAYS - 1), today
    web = {**HEADERS, "Cookie": f"sessionid={session}"}
    api = {**HEADERS, "Accept": "application/json", "Authorization": f"Token {token}"}
    return [
        ("dashboard last30", "/dashboard/?period=last30", web),
        ("dashboard custom 90d", f"/dashboard/?period=custom&start={start}&end={end}", web),
        ("dashboard last7 by=sub1", "/dashboard/?period=last7&by=sub1", web),
        ("stats API custom 90d", f"/api/v1/stats/?period=custom&start={start}&end={end}", api),
    ]


def check_api(port: int, path: str, headers: dict, bench: int, now: datetime) -> str:
    """The API's 90-day clicks and FTDs against a count of the raw rows."""
    status, _, body = request(port, "GET", path, headers=headers)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
    data = json.loads(body)
    zone = zoneinfo.ZoneInfo(BENCH_ZONE)
    start = datetime.combine(date.fromisoformat(data["period"]["start"]), datetime.min.time(), zone)
    end = datetime.combine(
        date.fromisoformat(data["period"]["end"]) + timedelta(days=1), datetime.min.time(), zone
    )
    with harness.pg_connect(DB) as conn:
        clicks = conn.execute(
            "SELECT count(*) FROM attribution_click WHERE affiliate_id = %s "
            "AND created_at >= %s AND created_at < %s",
            [bench, start, end],
        ).fetchone()[0]
        ftds = conn.execute(
            "SELECT count(*) FROM attribution_conversion WHERE affiliate_id = %s AND type = 'ftd'"
            " AND status IN ('approved', 'pending') AND occurred_at >= %s AND occurred_at < %s",
            [bench, start, end],
        ).fetchone()[0]
    totals = data["totals"]
    api_clicks, api_ftds = int(float(totals["clicks"])), int(float(totals["ftds"]))
    verdict = "OK" if (api_clicks, api_ftds) == (clicks, ftds) else "MISMATCH"
    return (
        f"stats API 90d totals: clicks {api_clicks:,} (raw rows {clicks:,}), FTDs {api_ftds:,} "
        f"(raw rows {ftds:,}), commission {totals.get('commission')} {data['currency']} "
        f"-> {verdict}"
    )


def measure(args, env, program: dict, now: datetime) -> tuple[list[LoadResult], list[str]]:
    notes: list[str] = []
    results: list[LoadResult] = []
    db_cpu = partial(harness.db_cpu_seconds, DB)
    with harness.Server(env, workers=args.workers) as server:
        session = login(server.port)
        log("signed in with POST /login/ (CSRF): session cookie")
        targets = endpoints(program["token"], session, now)
        for label, path, headers in targets:
            status, _, body = request(server.port, "GET", path, headers=headers)
            if status != 200:
                raise RuntimeError(f"{label}: GET {path} answered {status}: {body[:300]!r}")
            log(f"sanity: {label}: GET {path} -> 200, {len(body):,} bytes")
        _, api_path, api_headers = targets[-1]
        notes.append(check_api(server.port, api_path, api_headers, program["affiliate_id"], now))
        log(notes[-1])

        def load(path: str, headers: dict, seconds: float, label: str) -> LoadResult:
            return harness.run_load(
                server.port,
                [path],
                seconds=seconds,
                clients=args.clients,
                expect_status=200,
                headers=headers,
                label=label,
                cpu_probes={"server": server.cpu_seconds, "postgres": db_cpu},
            )

        bare_headers = targets[0][2]
        phases = [("bare /livez", BARE_PATH, bare_headers), *targets]
        phases.append(("bare /livez (again)", BARE_PATH, bare_headers))
        other_before = harness.db_transactions()
        for n, (label, path, headers) in enumerate(phases, 1):
            if args.warmup > 0:
                load(path, headers, args.warmup, f"warm-up {label}")
            log(f"phase {n}/{len(phases)}: {label}, {args.clients} clients, {args.seconds:g}s")
            result = load(path, headers, args.seconds, label)
            results.append(result)
            log("  " + result.summary())
            log("  " + result.cpu_summary())
            if result.errors:
                log(f"  statuses {result.statuses}; samples: {result.error_samples}")
        busy = harness.other_db_activity(other_before, mine=DB)
        if busy:
            notes.append(f"other databases were busy during the load (transactions): {busy}")
        server_log = server.log_tail()
    if "Traceback" in server_log or "[ERROR]" in server_log:
        notes.append(f"server log (tail):\n{server_log}")
    return results, notes


# --- Step 3: queries of one request (a separate process, Django's test client) ---------------


def probe_main() -> int:
    """Runs in a child process: DJANGO_SETTINGS_MODULE=bench.settings against the bench DB."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    spec = json.loads(os.environ["BENCH_PROBE_SPEC"])
    user = get_user_model().objects.get(username=spec["username"])
    out: dict = {"requests": []}
    for label, path, token in spec["requests"]:
        if token:
            client = Client(HTTP_AUTHORIZATION=f"Token {token}")
        else:
            client = Client()
            client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        for _ in range(2):  # warm: templates, URL resolver, connections, caches
            client.get(path)
        runs = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get(path)
                wall = time.perf_counter() - t0
            queries = [
                {"sql": q["sql"], "ms": 1000 * float(q["time"])} for q in ctx.captured_queries
            ]
            runs.append({"wall_ms": 1000 * wall, "status": response.status_code, "q": queries})
        runs.sort(key=lambda r: r["wall_ms"])
        median = runs[1]
        out["requests"].append(
            {
                "label": label,
                "path": path,
                "status": median["status"],
                "wall_ms": median["wall_ms"],
                "walls_ms": sorted(r["wall_ms"] for r in runs),
                "queries": median["q"],
            }
        )
    # Every distinct statement EXPLAIN ANALYZEd (best of two) and ranked by the server's own
    # execution time: the captured times include the round trip and any CPU contention.
    explained: dict[str, dict] = {}
    for r in out["requests"]:
        for q in r["queries"]:
            text = DECLARE.sub("", q["sql"])
            if text in explained or not text.lstrip().upper().startswith("SELECT"):
                continue
            best = None
            for _ in range(2):
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + text)
                    plan = [row[0] for row in cursor.fetchall()]
                ms = float(EXEC_TIME.search("\n".join(plan)).group(1))
                if best is None or ms < best[0]:
                    best = (ms, plan)
            explained[text] = {
                "label": r["label"], "captured_ms": q["ms"], "exec_ms": best[0], "sql": text,
                "plan": best[1],
            }  # fmt: skip
    out["explained"] = sorted(explained.values(), key=lambda e: -e["exec_ms"])
    out["profile"] = profile_request(spec, user)
    print(json.dumps(out))
    return 0


DECLARE = re.compile(r"^\s*DECLARE\s+\S+\s+NO SCROLL CURSOR WITH HOLD FOR\s+", re.IGNORECASE)
EXEC_TIME = re.compile(r"Execution Time: ([0-9.]+) ms")
PROFILED = {
    "view: affiliates.views.dashboard": ("affiliates/views.py", "dashboard"),
    "reports.summary (incl. commission)": ("attribution/rollups/reports.py", "summary"),
    "reports.daily (incl. commission)": ("attribution/rollups/reports.py", "daily"),
    "reports.breakdown (incl. commission)": ("attribution/rollups/reports.py", "breakdown"),
    "reports._live_clicks (clicks since the fill)": (
        "attribution/rollups/reports.py",
        "_live_clicks",
    ),
    "payouts.fx.rate (FX lookups)": ("payouts/fx.py", "rate"),
    "django.shortcuts.render (template)": ("django/shortcuts.py", "render"),
    "  of which the |fmt filter": ("affiliates/templatetags/portal_tags.py", "fmt"),
    "  of which humanize.intcomma (in |fmt)": ("humanize/templatetags/humanize.py", "intcomma"),
    "StatsFilter (form, campaign choices)": ("affiliates/filters.py", "__init__"),
}


def profile_request(spec: dict, user) -> dict:
    """One warm GET of the 90-day dashboard under cProfile: where its time goes (cumulative;
    the profiler's overhead inflates Python-heavy parts more than waiting on the database)."""
    import cProfile
    import pstats

    from django.test import Client

    label, path, _ = next(r for r in spec["requests"] if r[0] == "dashboard custom 90d")
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    client.get(path)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    client.get(path)
    profiler.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(profiler).stats
    parts = {}
    for name, (file_end, func) in PROFILED.items():
        found = [
            (ct, calls) for (file, _, fn), (_, calls, _, ct, _) in stats.items()
            if fn == func and file.endswith(file_end)
        ]  # fmt: skip
        ct, calls = max(found, default=(0.0, 0))
        parts[f"{name} ({calls} calls)"] = 1000 * ct
    own = sorted(
        (
            (tt, f"{Path(file).name}:{line} {fn}")
            for (file, line, fn), (_, _, tt, _, _) in stats.items()
        ),
        reverse=True,
    )[:12]
    return {
        "label": label,
        "wall_ms": 1000 * wall,
        "parts_ms": parts,
        "top_own_ms": [(1000 * tt, where) for tt, where in own],
    }


def probe(program: dict, now: datetime) -> dict:
    targets = endpoints(program["token"], "", now)
    spec = {
        "username": BENCH_USERNAME,
        "requests": [
            (label, path, program["token"] if "Authorization" in headers else "")
            for label, path, headers in targets
        ],
    }
    env = harness.server_env(DB, ALLOWED_HOSTS="testserver,127.0.0.1")
    env["BENCH_PROBE_SPEC"] = json.dumps(spec)
    proc = subprocess.run(
        [harness.PYTHON, str(Path(__file__).resolve()), "--probe"],
        cwd=harness.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"query probe exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def short(text: str, width: int = 150) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def print_probe(data: dict) -> None:
    print()
    print("queries of one request (Django test client, CaptureQueriesContext, median of 3 warm):")
    for r in data["requests"]:
        total = sum(q["ms"] for q in r["queries"])
        walls = ", ".join(f"{w:.0f}" for w in r["walls_ms"])
        print(
            f"  {r['label']}: HTTP {r['status']}, {len(r['queries'])} queries, SQL {total:.1f} ms"
            f" of {r['wall_ms']:.1f} ms in the view (runs {walls} ms); Python/template"
            f" ~{r['wall_ms'] - total:.1f} ms"
        )
    main_request = next(r for r in data["requests"] if r["label"] == "dashboard custom 90d")
    print()
    print(f"  every query of '{main_request['label']}' ({main_request['path']}):")
    for n, q in enumerate(main_request["queries"], 1):
        print(f"    {n:2}. {q['ms']:7.1f} ms  {short(q['sql'], 140)}")
    print()
    print("  distinct statements by the server's execution time (EXPLAIN ANALYZE, best of 2):")
    for item in data["explained"][:8]:
        print(
            f"    {item['exec_ms']:8.2f} ms (captured {item['captured_ms']:5.1f} ms) "
            f"[{item['label']}] {short(item['sql'], 110)}"
        )
    top = data["explained"][0]
    print()
    print(f"  slowest query: {top['exec_ms']:.2f} ms on the server, in '{top['label']}':")
    print(f"    {short(top['sql'], 3000)}")
    print("    EXPLAIN (ANALYZE, BUFFERS):")
    for line in top["plan"]:
        print(f"      {line}")
    prof = data["profile"]
    print()
    print(
        f"  cProfile of one '{prof['label']}' request ({prof['wall_ms']:.0f} ms under the "
        "profiler), cumulative:"
    )
    for name, ms in prof["parts_ms"].items():
        print(f"    {ms:8.1f} ms  {name}")
    print("  largest own time:")
    for ms, where in prof["top_own_ms"]:
        print(f"    {ms:8.1f} ms  {where}")


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe:
        return probe_main()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    rollup_report: list[str] = []
    ok = True
    idle = harness.host_cpu_busy(1.0)
    if idle is not None:
        log(f"host CPU {idle:.0f}% busy before the benchmark ({os.cpu_count()} cores)")
        if idle > 15:
            log("  warning: something else is using the CPU; figures will be lower and noisier")
    if args.reuse:
        program = existing_program()
        env = harness.server_env(DB)
        log(f"--reuse: measuring {DB} as it is (bench affiliate #{program['affiliate_id']})")
    else:
        with step("database, migrations, demo program, bench affiliate", timings):
            env = harness.prepare_database(DB)
            program = create_program(env)
        generate(args, program, timings)
        vacuum_analyze(timings)
        ok = verify_rollups(args, env, timings, rollup_report)
        vacuum_analyze(timings, list(ROLLUP_COLUMNS))
    now = datetime.now(UTC)
    summary = data_summary(program["affiliate_id"])
    for line in summary:
        log(line)
    busy = harness.host_cpu_busy(2.0)
    if busy is not None:
        log(f"host CPU {busy:.0f}% busy just before the load phases")
    results, notes = measure(args, env, program, now)
    if busy is not None:
        notes.insert(0, f"host CPU {busy:.0f}% busy just before the load phases (2 cores)")
    log("query probe (test client, CaptureQueriesContext, EXPLAIN ANALYZE)")
    probe_data = probe(program, now)
    if args.drop:
        with harness.pg_connect("postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DB)))
        log(f"dropped {DB}")

    print()
    print(
        f"dashboard benchmark: scale {args.scale:g} ({round(CLICKS * args.scale):,} clicks, "
        f"{round(CONVERSIONS * args.scale):,} conversions), {args.clients} client processes, "
        f"{args.workers} gunicorn sync workers, {args.seconds:g}s per phase, PostgreSQL "
        f"{harness.PG_HOST}:{harness.PG_PORT}/{DB}"
    )
    for line in summary:
        print(f"  {line}")
    if timings:
        print("generation and rollup timings:")
        for name, seconds in timings.items():
            print(f"  {seconds:8.1f}s  {name}")
    for line in rollup_report:
        print(f"  {line}")
    print()
    bare_runs = [r for r in results if r.label.startswith("bare")]
    bare = harness.pool_results("bare /livez (pooled)", bare_runs)
    width = max(len(r.label) for r in results) + 1
    for result in results:
        ratio = ""
        if not result.label.startswith("bare"):
            ratio = (
                f"  x{result.p50_ms / bare.p50_ms:5.1f} p50, x{result.p95_ms / bare.p95_ms:5.1f} "
                f"p95, {result.rps / bare.rps:.3f} of bare req/s"
            )
        print(
            f"{result.label + ':':<{width}} {result.rps:7.1f} req/s  p50 {result.p50_ms:8.2f} ms"
            f"  p95 {result.p95_ms:8.2f} ms  n={result.ok}{ratio}"
        )
        print(f"{'':<{width}} {result.cpu_summary()}")
    if len(bare_runs) > 1:
        first, last = bare_runs[0].rps, bare_runs[-1].rps
        print(f"bare drift first -> last run: {100 * (last - first) / first:+.1f}%")
    for note in notes:
        print(note)
    print_probe(probe_data)
    errors = sum(r.errors for r in results)
    ok = ok and not errors and all("MISMATCH" not in n for n in notes)
    print()
    print(f"total wall time {time.perf_counter() - started:.0f}s; {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; server stopped")
        sys.exit(130)
