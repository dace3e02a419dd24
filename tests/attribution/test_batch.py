"""The batch path (attribution.batch) decides exactly what the one-at-a-time path decides.

The simulated month (tests/simulation.py) goes into the inbox through the real endpoints, in
timeline order. Then the same inbox is attributed twice from the same starting point: row by row
(``single.postbacks_one_by_one``) and in batches of several sizes. Every conversion, identity,
ledger entry, rollup row and audit row must come out the same, and both must match the month's
truth. Batches of 1 put every step in its own batch; odd sizes split stories across batches, so a
deposit meets its registration inside a batch as well as across two.
"""

import re
import threading
from collections import Counter
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.db import connection, transaction

from affiliates.models import AuditEvent
from attribution.models import (
    Click,
    Conversion,
    DailyRollup,
    FraudPolicy,
    HourlyRollup,
    Identity,
    Postback,
    PostbackEvent,
    SubRollup,
)
from attribution.processing import batch, single, turns
from payouts.models import LedgerEntry
from tests import simulation
from tests.attribution.test_crediting import T0, click
from tests.attribution.test_simulated_month import SEED, USER_AGENTS, Played, check
from tests.payouts.helpers import plan

# The batch path is PostgreSQL's; on SQLite every postback goes one at a time.
pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _play(month: simulation.Month, client) -> Played:
    """Every click and postback of the month through the test client, in timeline order."""
    played = Played()
    for step in month.timeline:
        if isinstance(step, simulation.ClickStep):
            response = client.get(
                f"/c/{step.link}",
                step.query,
                HTTP_USER_AGENT=step.user_agent,
                HTTP_CF_IPCOUNTRY=step.country,
            )
            params = parse_qs(urlsplit(response.get("Location", "")).query)
            click_id = next(params[k][0] for k in ("clickid", "click_id", "cid") if k in params)
            Click.objects.filter(click_id=click_id).update(created_at=step.at)
            played.click_ids[step.ref] = click_id
            continue
        data = step.resolved(played.click_ids)
        headers = {"HTTP_USER_AGENT": USER_AGENTS[step.source]}
        if step.source == "skadnetwork":
            url = "/.well-known/skadnetwork/report-attribution/"
        else:
            url = f"/postbacks/{step.source}/{month.program.source(step.source).token}/"
        if step.method == "GET":
            response = client.get(f"{url}?{urlencode(data)}", **headers)
        elif step.body_format == "form":
            response = client.post(
                url, urlencode(data), content_type="application/x-www-form-urlencoded", **headers
            )
        else:
            response = client.post(url, data, content_type="application/json", **headers)
        played.answers[step.label] = (response.status_code, response.json())
    return played


def _snapshot() -> dict[str, object]:
    """Everything attribution wrote, with database ids replaced by the postbacks behind them."""
    postback_of = dict(Conversion.objects.values_list("pk", "event__postback_id"))

    def named(text: str) -> str:
        return re.sub(r"#(\d+)", lambda m: f"#pb{postback_of.get(int(m[1]), m[1])}", text)

    conversions = {}
    for c in Conversion.objects.all():
        fields = {
            f.attname: getattr(c, f.attname)
            for f in Conversion._meta.concrete_fields
            if f.attname not in ("id", "event_id", "created_at", "updated_at", "duplicate_of_id")
        }
        fields["detail"] = named(c.detail)
        if c.method == "skan":
            # Apple sends no event time: an SKAN install happens when it is processed.
            fields.pop("occurred_at")
        fields["duplicate_of"] = postback_of.get(c.duplicate_of_id)
        conversions[postback_of[c.pk]] = fields
    identities = Counter(
        (key, postback_of[conversion], at)
        for key, conversion, at in Identity.objects.values_list("key", "conversion", "occurred_at")
    )
    skan = set(Conversion.objects.filter(method="skan").values_list("pk", flat=True))
    entries = Counter(
        (
            postback_of.get(e.conversion_id),
            e.beneficiary_id,
            e.kind,
            e.amount,
            e.currency,
            e.original_amount,
            e.fx_rate,
            e.status,
            None if e.conversion_id in skan else e.available_at,
            e.note,
            e.plan_version_id,
            e.source_entry.kind if e.source_entry else None,
            re.sub(r"c\d+", "c", re.sub(r"e\d+", "e", e.key)),
        )
        for e in LedgerEntry.objects.select_related("source_entry")
    )
    rollups = {
        model.__name__: Counter(
            tuple(row.values()) for row in model.objects.values().order_by() if row.pop("id")
        )
        for model in (DailyRollup, HourlyRollup, SubRollup)
    }
    audits = Counter(
        (a.content_type_id, a.field, named(a.old), named(a.new), named(a.note))
        for a in AuditEvent.objects.all()
    )
    statuses = Counter(Postback.objects.values_list("status", flat=True))
    return {
        "conversions": conversions,
        "identities": identities,
        "ledger": entries,
        "rollups": rollups,
        "audits": audits,
        "inbox": statuses,
    }


def _differences(one: dict, other: dict) -> list[str]:
    lines = []
    for part in one:
        a, b = one[part], other[part]
        if a == b:
            continue
        if part == "conversions":
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    lines.append(f"postback {key}: one by one {a.get(key)}\n  batch {b.get(key)}")
        else:
            lines.append(f"{part}: one by one {a}\n  batch {b}")
    return lines


@pytest.fixture
def month_in_inbox(client):
    month = simulation.generate(SEED)
    simulation.install(month)
    played = _play(month, client)
    ids = list(
        Postback.objects.filter(status=Postback.Status.RECEIVED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    assert len(ids) > 200
    return month, played, ids


@pytest.mark.parametrize("size", [1, 7, 64, 500])
def test_batches_of_any_size_decide_what_one_at_a_time_decides(month_in_inbox, size):
    # given the month's postbacks waiting in the inbox
    month, played, ids = month_in_inbox

    # when they are attributed one at a time, and then, from the same start, in batches
    start = transaction.savepoint()
    single.postbacks_one_by_one(ids)
    one_by_one = _snapshot()
    transaction.savepoint_rollback(start)
    assert Conversion.objects.count() == 0
    counts = Counter()
    for first in range(0, len(ids), size):
        counts.update(batch.postbacks_attribute(ids[first : first + size]))
    batched = _snapshot()

    # then both wrote the same rows, and both are the month's truth
    assert counts == {"processed": len(ids)}
    differences = _differences(one_by_one, batched)
    assert not differences, "\n".join(differences[:20])
    problems, _ = check(month, played)
    assert not problems, "\n".join(problems[:20])


def test_a_redelivered_batch_changes_nothing(month_in_inbox):
    # given a batch already attributed
    _, _, ids = month_in_inbox
    batch.postbacks_attribute(ids[:100])
    before = _snapshot()

    # when the same batch arrives again (a redelivery after a lost ack, or the sweep)
    again = batch.postbacks_attribute(ids[:100])

    # then every row is skipped and nothing changes
    assert again == {"skipped": 100}
    assert _snapshot() == before


def test_a_task_takes_the_oldest_rows_still_waiting_whichever_it_names(month_in_inbox):
    # given the month's postbacks waiting, and a task naming five of them, not the oldest
    month, played, ids = month_in_inbox
    # (the operator's later reports change a conversion, and make none of their own)
    reports = {played.answers[s.label][1]["id"] for s in month.postbacks if s.report_of}

    # when the worker takes that task with a batch size of 40
    counts = batch.postbacks_attribute(ids[50:55], top_up=40)

    # then it attributes the 40 oldest, in the order they arrived; its own five wait their turn
    assert counts == {"processed": 40, "skipped": 5}
    done = set(
        Postback.objects.filter(status=Postback.Status.PROCESSED).values_list("pk", flat=True)
    )
    assert done == set(ids[:40])
    assert Conversion.objects.count() == 40 - len(reports & set(ids[:40]))
    # and the next tasks take the rest, each at least as many rows as it names
    assert batch.postbacks_attribute(ids[50:55], top_up=15) == {"processed": 15}
    assert batch.postbacks_attribute(ids[:10], top_up=0) == {"skipped": 10}
    assert Postback.objects.filter(status=Postback.Status.PROCESSED).count() == 55
    # and no worker is left holding the step of taking rows
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::bigint",
            [batch._Taking.KEY[0]],
        )
        assert cursor.fetchone()[0] == 0


def test_fraud_counts_inside_one_batch_are_the_row_paths(client, alice, campaign, appsflyer):
    # given a campaign with tight flooding and burst rules, many clicks, and installs waiting,
    # several of them from one IP
    FraudPolicy.objects.create(
        campaign=campaign, flood_clicks_per_install=2, flood_min_clicks=3, burst_max_per_ip=2
    )
    clicks = [click(client, alice, campaign, at=T0 + timedelta(minutes=n)) for n in range(14)]
    for n in range(9):
        query = urlencode(
            {
                "appsflyer_id": f"af-{n}",
                "app_id": "id1234567890",
                "platform": "ios",
                "install_unix_ts": int((T0 + timedelta(hours=1, minutes=n)).timestamp()),
                "clickid": clicks[n].click_id,
                "idfa": f"00000000-0000-0000-0000-0000000000{n + 10}",
                "ip": "203.0.113.50" if n % 2 else f"198.51.100.{n + 1}",
            }
        )
        assert client.get(f"/postbacks/appsflyer/{appsflyer.token}/?{query}").status_code == 200
    ids = list(Postback.objects.order_by("pk").values_list("pk", flat=True))

    # when they are attributed one at a time, and then, from the same start, as one batch
    start = transaction.savepoint()
    single.postbacks_one_by_one(ids)
    one_by_one = _snapshot()
    transaction.savepoint_rollback(start)
    assert batch.postbacks_attribute(ids) == {"processed": 9}
    batched = _snapshot()

    # then the rules found the same, and found something
    differences = _differences(one_by_one, batched)
    assert not differences, "\n".join(differences[:20])
    reasons = Counter(c["reason"] for c in batched["conversions"].values())
    assert reasons["click_flooding"] and reasons["ip_burst"], reasons


@pytest.mark.parametrize("size", [1, 2, 100])
def test_the_operators_later_reports_are_the_row_paths(client, alice, campaign, s2s, size):
    # given a player's registration, first deposit and deposits waiting in the inbox, each
    # deposit reported again later with another status (confirmed, declined, re-approved), the
    # later reports naming only the transaction
    plan(campaign, cpa={"ftd": "100.00"})
    made = click(client, alice, campaign, at=T0)
    Click.objects.filter(pk=made.pk).update(platform="web")
    at = int((T0 + timedelta(hours=1)).timestamp())
    reports = [
        {"event": "reg", "txid": "r1", "click_id": made.click_id},
        {"event": "ftd", "txid": "d1", "amount": "50.00", "status": "pending"},
        {"event": "ftd", "txid": "d1", "status": "approved"},
        {"event": "deposit", "txid": "d2", "amount": "20.00"},
        {"event": "deposit", "txid": "d2", "status": "declined"},
        {"event": "deposit", "txid": "d3", "amount": "30.00", "status": "declined"},
        {"event": "deposit", "txid": "d3", "status": "approved"},
    ]
    for n, params in enumerate(reports):
        first = "amount" in params or params["event"] == "reg"
        player = {"player_id": "p1", "currency": "EUR"} if first else {}
        query = {**params, **player, "time": at + n * 60}
        assert client.get(f"/postbacks/s2s/{s2s.token}/", query).status_code == 200
    ids = list(Postback.objects.order_by("pk").values_list("pk", flat=True))

    # when they are attributed one at a time, and then, from the same start, in batches
    start = transaction.savepoint()
    single.postbacks_one_by_one(ids)
    one_by_one = _snapshot()
    transaction.savepoint_rollback(start)
    for first in range(0, len(ids), size):
        batch.postbacks_attribute(ids[first : first + size])
    batched = _snapshot()

    # then both wrote the same rows: one conversion a transaction, with its last status
    differences = _differences(one_by_one, batched)
    assert not differences, "\n".join(differences[:20])
    final = sorted(Conversion.objects.values_list("event__txid", "status"))
    assert final == [("d1", "approved"), ("d2", "rejected"), ("d3", "approved"), ("r1", "approved")]
    assert Postback.objects.filter(status=Postback.Status.PROCESSED).count() == len(ids)


def test_a_later_report_waits_while_another_worker_holds_its_transaction(client, s2s):
    # given the operator's later report of a transaction, naming nothing but the transaction,
    # and another worker in the middle of deciding that transaction's first report
    query = {"event": "deposit", "txid": "T-9", "status": "declined"}
    assert client.get(f"/postbacks/s2s/{s2s.token}/", query).status_code == 200
    report = Postback.objects.get()
    first = PostbackEvent(postback=Postback(kind="s2s"), source=s2s, txid="T-9", player_id="")
    holding, done = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                turns.devices_lock([first])
                holding.set()
                done.wait(10)
        finally:
            connection.close()

    worker = threading.Thread(target=other_worker, daemon=True)
    worker.start()
    assert holding.wait(5)

    # when a batch takes the report meanwhile, and again once that worker has committed
    meanwhile = batch.postbacks_attribute([report.pk])
    done.set()
    worker.join(10)
    after = batch.postbacks_attribute([report.pk])

    # then it was left waiting rather than decided blind to the first report
    assert meanwhile == {"deferred": 1}
    assert after == {"processed": 1}
