"""The reports against an independent oracle (issue 14): the simulated month is played through
the real endpoints and the worker's step, and every cell the dashboard, its CSVs and the stats
API show, for filter combinations hypothesis chooses, must be what the generator's truth says
(tests/attribution/oracle.py), never what the report code computes. Then the properties: any
breakdown sums to the totals, and commission under a filter is the ledger's sum under it.
"""

import csv
import io
import json
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from affiliates.models import Affiliate, Campaign
from attribution.models import Click
from attribution.processing import single
from attribution.rollups import keep, reports
from tests import simulation
from tests.attribution import oracle
from tests.attribution.test_commission_rollups import ledger_sum

pytestmark = pytest.mark.django_db
SEED = 202610
MONTH = simulation.generate(SEED)
FACTS = oracle.facts(MONTH)
AFFILIATES = [a.username for a in MONTH.program.affiliates]
SUB1S = sorted({c.query["sub1"] for c in MONTH.clicks if c.query.get("sub1")})
CENT = Decimal("0.01")


def play(month: simulation.Month, client: Client) -> None:
    """Every click and postback in timeline order; each postback processed as it arrives."""
    click_ids: dict[str, str] = {}
    for step in month.timeline:
        if isinstance(step, simulation.ClickStep):
            query = f"?{urlencode(step.query)}" if step.query else ""
            response = client.get(
                f"/c/{step.link}{query}",
                HTTP_USER_AGENT=step.user_agent,
                HTTP_CF_IPCOUNTRY=step.country,
            )
            assert response.status_code == 302, step.ref
            made = Click.objects.latest("pk")
            Click.objects.filter(pk=made.pk).update(created_at=step.at)
            click_ids[step.ref] = made.click_id
            continue
        if step.source in oracle.SKIPPED_SOURCES:
            continue
        data = step.resolved(click_ids)
        url = f"/postbacks/{step.source}/{month.program.source(step.source).token}/"
        if step.method == "GET":
            response = client.get(f"{url}?{urlencode(data)}")
        elif step.body_format == "form":
            response = client.post(url, urlencode(data), "application/x-www-form-urlencoded")
        else:
            response = client.post(url, json.dumps(data), "application/json")
        assert response.status_code == 200, (step.label, response.content)
        single.postback_process(postback_id=response.json()["id"])


@pytest.fixture
def played(db):
    simulation.install(MONTH)
    play(MONTH, Client())
    keep.clicks_fill(settle=timedelta(0))
    affiliates = {a.user.username: a for a in Affiliate.objects.select_related("user")}
    campaigns = {c.name: c.pk for c in Campaign.objects.all()}
    keys = {spec.key: campaigns[spec.name] for spec in MONTH.program.campaigns}
    tokens = {name: Token.objects.create(user=a.user).key for name, a in affiliates.items()}
    return affiliates, keys, tokens


queries = st.builds(
    lambda start, days, campaign, platform, channel, country, sub1: oracle.Query(
        start, start + timedelta(days=days), campaign, platform, channel, country, sub1
    ),
    start=st.dates(date(2026, 9, 28), date(2026, 11, 2)),
    days=st.integers(0, 40),
    campaign=st.sampled_from(["", "", "ios", "android", "web"]),
    platform=st.sampled_from(["", "", "ios", "android", "web"]),
    channel=st.sampled_from(["", "", "mobile", "web"]),
    country=st.sampled_from(["", "", "", "DE", "GB", "BR", "XX"]),
    sub1=st.sampled_from(["", "", "", *SUB1S, "nobody"]),
)


def money(value) -> str:
    return f"{Decimal(value).quantize(CENT)}"


def api_row(expected: dict[str, Decimal]) -> dict:
    """An oracle row as the API writes it (unique clicks are not the oracle's: left out)."""
    return {m: int(v) if m in oracle.COUNTS else money(v) for m, v in expected.items()}


def shown(row: dict) -> dict:
    return {m: row[m] for m in oracle.METRICS}


def params(query: oracle.Query, keys: dict[str, int]) -> dict[str, str]:
    out = {"period": "custom", "start": query.start.isoformat(), "end": query.end.isoformat()}
    out.update(
        {
            k: v
            for k, v in {
                "campaign": str(keys[query.campaign]) if query.campaign else "",
                "platform": query.platform,
                "channel": query.channel,
                "country": query.country,
                "sub1": query.sub1,
            }.items()
            if v
        }
    )
    return out


def csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.content.decode())))


WHOLE_MONTH = oracle.Query(date(2026, 9, 30), date(2026, 11, 1))


def with_examples(test):
    """Every affiliate's whole month, unfiltered and filtered, always; hypothesis adds more."""
    for who in AFFILIATES:
        test = example(who=who, query=WHOLE_MONTH, by="platform")(test)
        test = example(who=who, query=oracle.Query(**{**vars(WHOLE_MONTH), "channel": "web"}),
                       by="campaign")(test)  # fmt: skip
    test = example(who="bluefin", query=oracle.Query(**{**vars(WHOLE_MONTH), "country": "XX"}),
                   by="sub1")(test)  # fmt: skip
    return test


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    who=st.sampled_from(AFFILIATES),
    query=queries,
    by=st.sampled_from(["campaign", "country", "platform", "sub1"]),
)
@with_examples
def test_every_cell_of_the_dashboard_csvs_and_api_is_the_truths(played, who, query, by):
    affiliates, keys, tokens = played
    affiliate = affiliates[who]
    api = Client(HTTP_AUTHORIZATION=f"Token {tokens[who]}")
    page = Client()
    page.force_login(affiliate.user)
    q = params(query, keys)

    total = oracle.table(FACTS, who, query, None).get("", oracle._blank())
    columns = oracle.table(FACTS, who, query, "platform")
    days = oracle.table(FACTS, who, query, "day")
    by_day_channel = {
        (day, channel): oracle.table(
            FACTS, who, oracle.Query(day, day, **_filters(query, channel=channel)), None
        ).get("", oracle._blank())
        for day in days
        for channel in ("mobile", "web")
        if not query.channel or query.channel == channel
    }
    field = {"campaign": "campaign", "country": "country", "platform": "platform"}.get(by, "sub1")
    breakdown = oracle.table(FACTS, who, query, field)

    # the stats API
    stats = api.get("/api/v1/stats/", q).json()
    assert shown(stats["totals"]) == api_row(total), stats["totals"]
    assert stats["from_sub_affiliates"] == money(total["sub_commission"])
    for column in ("ios", "android", "web"):
        want = api_row(columns.get(column, oracle._blank()))
        assert shown(stats["columns"][column]) == want, column
    assert shown(stats["columns"]["skan"]) == api_row(oracle._blank())
    for row in stats["daily"]:
        day = date.fromisoformat(row["day"])
        for channel in ("mobile", "web"):
            want = by_day_channel.get((day, channel), oracle._blank())
            assert shown(row[channel]) == api_row(want), (day, channel)

    # the API's breakdown: one row per value, plus "(no sub1)" for what no value accounts for
    rows = api.get("/api/v1/stats/breakdown/", {**q, "by": by}).json()["rows"]
    got = {r["key"]: shown(r) for r in rows if any(r[m] not in (0, "0.00") for m in oracle.METRICS)}
    want = {
        str(keys[k]) if by == "campaign" else k: api_row(v)
        for k, v in breakdown.items()
        if any(v.values())
    }
    assert got == want

    # the dashboard page, and its three CSVs
    html = page.get("/dashboard/", {**q, "by": by})
    assert html.status_code == 200
    context = html.context
    assert {m: context["totals"][m] for m in oracle.METRICS} == total
    assert context["earned"] == total["commission"] + total["sub_commission"]
    summary = {r[""]: r for r in csv_rows(page.get("/dashboard/", {**q, "export": "summary"}))}
    assert {m: summary["Total"][m] for m in oracle.METRICS} == _csv(total)
    for column, label in (("ios", "iOS"), ("android", "Android"), ("web", "Web")):
        row = summary[label]
        assert {m: row[m] for m in oracle.METRICS} == _csv(columns.get(column, oracle._blank()))
    daily = csv_rows(page.get("/dashboard/", {**q, "export": "daily"}))
    for row in daily:
        day = date.fromisoformat(row["day"])
        for channel in ("mobile", "web"):
            want = _csv(by_day_channel.get((day, channel), oracle._blank()))
            assert {m: row[f"{channel}_{m}"] for m in oracle.METRICS} == want, (day, channel)
    exported = csv_rows(page.get("/dashboard/", {**q, "export": "breakdown", "by": by}))
    got = {
        r[by]: {m: r[m] for m in oracle.METRICS}
        for r in exported
        if any(r[m] not in ("0", "0.00") for m in oracle.METRICS)
    }
    labels = {"campaign": _campaign_name, "sub1": lambda k: k or "(no sub1)"}.get(
        by, lambda k: k or "(unknown)"
    )
    assert got == {labels(k): _csv(v) for k, v in breakdown.items() if any(v.values())}


def _filters(query: oracle.Query, **changes) -> dict:
    fields = ("campaign", "platform", "channel", "country", "sub1")
    return {f: changes.get(f, getattr(query, f)) for f in fields}


def _campaign_name(key: str) -> str:
    return next(c.name for c in MONTH.program.campaigns if c.key == key)


def _csv(row: dict[str, Decimal]) -> dict[str, str]:
    return {m: str(int(v)) if m in oracle.COUNTS else money(v) for m, v in row.items()}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(who=st.sampled_from(AFFILIATES), query=queries, by=st.sampled_from(reports.BREAKDOWNS))
def test_breakdowns_sum_to_the_totals_and_commission_is_the_ledgers(played, who, query, by):
    affiliates, keys, tokens = played
    affiliate = affiliates[who]
    api = Client(HTTP_AUTHORIZATION=f"Token {tokens[who]}")
    q = params(query, keys)
    if query.sub1 and by in ("sub2", "sub3", "sub4", "sub5"):
        by = "sub1"  # one sub id at a time: another sub id's breakdown is refused (tested apart)

    totals = api.get("/api/v1/stats/", q).json()["totals"]
    rows = api.get("/api/v1/stats/breakdown/", {**q, "by": by}).json()["rows"]

    for metric in oracle.METRICS:
        parts = sum(Decimal(str(r[metric])) for r in rows)
        assert parts == Decimal(str(totals[metric])), metric
    filters = reports.Filters(
        campaign_id=keys[query.campaign] if query.campaign else None,
        country=query.country,
        platform=query.platform,
        channel=query.channel,
        subs=(query.sub1, "", "", "", ""),
    )
    for own, metric in ((True, "commission"), (False, "sub_commission")):
        want = ledger_sum(affiliate, start=query.start, end=query.end, filters=filters, own=own)
        assert totals[metric] == money(want), metric
