"""The stats API gives the dashboard's numbers: reports.summary/daily/breakdown, as JSON."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from affiliates.models import Affiliate
from attribution.models import Click
from attribution.rollups import keep, reports
from tests.attribution.test_crediting import IPHONE, af_install, click, postback
from tests.factories import AffiliateFactory, TrackingLinkFactory, UserFactory
from tests.payouts.helpers import plan

pytestmark = pytest.mark.django_db

# 20:00 UTC on Nov 2 is 05:00 on Nov 3 in Tokyo, alice's time zone: her figures count it on Nov 3.
T0 = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
WEEK = "period=custom&start=2026-11-01&end=2026-11-07"
TOKYO = "Asia/Tokyo"


@pytest.fixture
def results(client, alice, charlie, campaign, appsflyer, s2s) -> SimpleNamespace:
    """Alice: two iOS clicks and an install, a web click with a registration and an FTD."""
    Affiliate.objects.filter(pk=alice.pk).update(time_zone=TOKYO)
    alice.refresh_from_db()
    plan(campaign, cpa={"install": "2.50", "ftd": "30.00"})
    first = click(client, alice, campaign, at=T0, sub1="fb")
    click(client, alice, campaign, at=T0 + timedelta(minutes=1), ip="198.51.100.8", sub1="tt")
    af_install(client, appsflyer, at=T0 + timedelta(minutes=10), click_id=first.click_id)
    web = click(
        client, alice, campaign, at=T0 + timedelta(minutes=2), ip="198.51.100.9", sub1="seo"
    )
    Click.objects.filter(pk=web.pk).update(platform="web")
    postback(
        client,
        s2s,
        click_id=web.click_id,
        event="reg",
        txid="r1",
        player_id="p1",
        time=int((T0 + timedelta(minutes=5)).timestamp()),
    )
    postback(
        client,
        s2s,
        event="ftd",
        txid="d1",
        player_id="p1",
        amount="50.00",
        currency="EUR",
        time=int((T0 + timedelta(hours=1)).timestamp()),
    )
    # Charlie's traffic counts in the program's totals, never in alice's.
    click(client, charlie, campaign, at=T0, ip="203.0.113.5")
    keep.clicks_fill(settle=timedelta(0))
    return SimpleNamespace(alice=alice, charlie=charlie, campaign=campaign)


def as_api(metrics: dict[str, Decimal | None]) -> dict:
    """A selector's row as the API writes it: counts as integers, money as 2-decimal strings
    (and what a selector does not know, such as unique clicks per sub id, as null)."""
    return {
        m: None
        if metrics[m] is None
        else int(metrics[m])
        if m in reports.COUNTS
        else f"{metrics[m].quantize(Decimal('0.01'))}"
        for m in reports.METRICS
    }


def test_alices_stats_are_the_dashboards_numbers(api, results):
    alice = results.alice

    data = api(alice.user).get(f"/api/v1/stats/?{WEEK}").json()

    period = reports.period_for(
        "custom", time_zone=TOKYO, start=date(2026, 11, 1), end=date(2026, 11, 7)
    )
    table = reports.summary(
        affiliate_ids=[alice.pk],
        period=period,
        filters=reports.Filters(),
        currency="EUR",
        time_zone=TOKYO,
    )
    assert data["period"] == {
        "preset": "custom",
        "label": "Custom",
        "start": "2026-11-01",
        "end": "2026-11-07",
    }
    assert (data["currency"], data["time_zone"]) == ("EUR", TOKYO)
    assert data["columns"] == {c: as_api(table.rows[c]) for c in reports.COLUMNS}
    assert data["mobile"] == as_api(table.mobile())
    assert data["totals"] == as_api(table.totals)
    days = reports.daily(
        affiliate_ids=[alice.pk],
        period=period,
        filters=reports.Filters(),
        currency="EUR",
        time_zone=TOKYO,
    )
    assert data["daily"] == [
        {
            "day": d["day"].isoformat(),
            "mobile": as_api(d["mobile"]),
            "web": as_api(d["web"]),
            "monthly": as_api(d["monthly"]),
        }
        for d in days
    ]


def test_mobile_and_web_are_split_as_they_happened(api, results):
    data = api(results.alice.user).get(f"/api/v1/stats/?{WEEK}").json()

    ios, web = data["columns"]["ios"], data["columns"]["web"]
    assert (ios["clicks"], ios["unique_clicks"], ios["installs"]) == (2, 2, 1)
    assert ios["commission"] == "2.50"
    assert (web["clicks"], web["registrations"], web["ftds"], web["deposits"]) == (1, 1, 1, 1)
    assert (web["deposit_amount"], web["commission"]) == ("50.00", "30.00")
    assert data["columns"]["android"]["clicks"] == data["columns"]["skan"]["installs"] == 0
    assert data["mobile"]["clicks"] == 2
    assert data["totals"]["clicks"] == 3
    assert data["totals"]["commission"] == "32.50"
    nov3 = next(d for d in data["daily"] if d["day"] == "2026-11-03")
    assert (nov3["mobile"]["installs"], nov3["web"]["ftds"]) == (1, 1)
    assert (nov3["mobile"]["commission"], nov3["web"]["commission"]) == ("2.50", "30.00")
    assert all(d["mobile"]["clicks"] == 0 for d in data["daily"] if d["day"] != "2026-11-03")


def test_days_are_alices_local_days(api, results):
    client = api(results.alice.user)

    nov2 = client.get("/api/v1/stats/?period=custom&start=2026-11-02&end=2026-11-02").json()
    nov3 = client.get("/api/v1/stats/?period=custom&start=2026-11-03&end=2026-11-03").json()

    assert nov2["totals"]["clicks"] == 0
    assert (nov3["totals"]["clicks"], nov3["totals"]["installs"]) == (3, 1)


def test_filters_narrow_the_figures(api, results):
    client = api(results.alice.user)

    web = client.get(f"/api/v1/stats/?{WEEK}&channel=web").json()
    ios = client.get(f"/api/v1/stats/?{WEEK}&platform=ios").json()
    other = client.get(f"/api/v1/stats/?{WEEK}&campaign={results.campaign.pk + 1}").json()

    assert (web["totals"]["clicks"], web["mobile"]["clicks"]) == (1, 0)
    assert (ios["totals"]["clicks"], ios["columns"]["web"]["clicks"]) == (2, 0)
    assert other["totals"]["clicks"] == 0


def test_a_manager_sees_any_affiliates_stats_or_the_whole_program(api, results, manager):
    client = api(manager)

    alices = client.get(f"/api/v1/stats/?{WEEK}&affiliate={results.alice.pk}").json()
    program = client.get(f"/api/v1/stats/?{WEEK}").json()

    assert alices == api(results.alice.user).get(f"/api/v1/stats/?{WEEK}").json()
    assert (program["currency"], program["time_zone"]) == ("EUR", "UTC")
    assert program["totals"]["clicks"] == 4
    assert program["totals"]["installs"] == 1
    assert client.get(f"/api/v1/stats/?{WEEK}&affiliate=999999").status_code == 404


def test_an_affiliate_naming_itself_gets_its_own_stats(api, results):
    client = api(results.alice.user)

    assert (
        client.get(f"/api/v1/stats/?{WEEK}&affiliate={results.alice.pk}").json()
        == client.get(f"/api/v1/stats/?{WEEK}").json()
    )
    assert client.get(f"/api/v1/stats/?{WEEK}&affiliate={results.charlie.pk}").status_code == 404


@pytest.mark.parametrize("by", reports.BREAKDOWNS)
def test_breakdowns_are_the_dashboards_breakdowns(api, results, by):
    alice = results.alice

    data = api(alice.user).get(f"/api/v1/stats/breakdown/?{WEEK}&by={by}").json()

    period = reports.period_for(
        "custom", time_zone=TOKYO, start=date(2026, 11, 1), end=date(2026, 11, 7)
    )
    table = reports.breakdown(
        by=by,
        affiliate_ids=[alice.pk],
        period=period,
        filters=reports.Filters(),
        currency="EUR",
        time_zone=TOKYO,
    )
    assert data["by"] == by
    assert data["rows"] == [
        {"key": key, "label": table.labels[key], **as_api(table.rows[key])}
        for key in sorted(table.rows)
    ]
    assert data["totals"] == as_api(table.totals)


def test_the_breakdown_by_sub_id_shows_each_value(api, results):
    data = api(results.alice.user).get(f"/api/v1/stats/breakdown/?{WEEK}&by=sub1").json()

    assert {row["key"]: (row["clicks"], row["installs"], row["ftds"]) for row in data["rows"]} == {
        "fb": (1, 1, 0),
        "tt": (1, 0, 0),
        "seo": (1, 0, 1),
    }


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("period=fortnight", "unknown period 'fortnight'"),
        ("period=custom", "a custom period needs a start and an end date"),
        ("period=custom&start=2026-11-07&end=2026-11-01", "ends (2026-11-01) before it starts"),
        ("period=custom&start=2025-01-01&end=2026-11-01", "at most 366 days"),
        ("period=custom&start=yesterday&end=2026-11-01", "start: Date has wrong format"),
        ("period=custom&start=0001-01-01&end=0001-01-02", "start: A day from 1970-01-01"),
        ("platform=tablet", "platform:"),
        ("channel=tv", "channel:"),
        ("country=Germany", "country: A two-letter country code."),
        ("campaign=first", "campaign: A valid integer is required."),
    ],
)
def test_a_bad_period_or_filter_is_a_400_that_says_why(api, alice, query, message):
    response = api(alice.user).get(f"/api/v1/stats/?{query}")

    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_an_unknown_breakdown_is_a_400_that_says_why(api, alice):
    response = api(alice.user).get("/api/v1/stats/breakdown/?by=sub9")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("unknown breakdown 'sub9'")


def test_a_sub_id_breakdown_follows_the_other_filters(api, results):
    url = f"/api/v1/stats/breakdown/?{WEEK}&by=sub1"

    web = api(results.alice.user).get(f"{url}&channel=web").json()
    ios = api(results.alice.user).get(f"{url}&platform=ios").json()

    assert {r["key"]: (r["clicks"], r["commission"]) for r in web["rows"]} == {"seo": (1, "30.00")}
    assert {r["key"]: (r["clicks"], r["commission"]) for r in ios["rows"]} == {
        "fb": (1, "2.50"),
        "tt": (1, "0.00"),
    }


def test_one_sub_id_filters_every_figure_commission_too(api, results):
    data = api(results.alice.user).get(f"/api/v1/stats/?{WEEK}&sub1=fb").json()

    assert data["totals"]["clicks"] == 1
    assert data["totals"]["unique_clicks"] is None  # not kept per sub id value
    assert (data["totals"]["installs"], data["totals"]["commission"]) == (1, "2.50")
    assert data["columns"]["web"]["commission"] == "0.00"


def test_two_sub_id_filters_at_once_are_refused(api, alice):
    response = api(alice.user).get("/api/v1/stats/?sub1=a&sub2=b")

    assert response.status_code == 400
    assert "one sub id at a time" in response.json()["detail"]


def test_the_default_period_is_the_last_seven_local_days(api, alice):
    TrackingLinkFactory(affiliate=alice)

    data = api(alice.user).get("/api/v1/stats/").json()

    assert data["period"]["preset"] == "last7"
    assert len(data["daily"]) == 7
    assert data["totals"]["commission"] == "0.00"


def test_a_country_without_traffic_shows_zero_commission_on_the_api_and_the_dashboard(
    api, client, results
):
    # given alice's commission of the week (2.50 for the install, 30.00 for the FTD)
    alice = results.alice
    everything = api(alice.user).get(f"/api/v1/stats/?{WEEK}").json()
    assert everything["totals"]["commission"] == "32.50"

    # when she filters by a country none of her players came from
    data = api(alice.user).get(f"/api/v1/stats/?{WEEK}&country=XX").json()
    client.force_login(alice.user)
    page = client.get(f"/dashboard/?{WEEK}&country=XX")

    # then clicks, conversions and commission are all zero, on the API and on the page
    assert (data["totals"]["clicks"], data["totals"]["ftds"]) == (0, 0)
    assert data["totals"]["commission"] == data["earned"] == "0.00"
    assert all(d["web"]["commission"] == "0.00" for d in data["daily"])
    assert page.status_code == 200
    assert page.context["totals"]["commission"] == 0
    assert page.context["earned"] == 0
    assert not any(
        d["web"]["commission"] or d["mobile"]["commission"] for d in page.context["days"]
    )


def test_platform_channel_and_campaign_filters_apply_to_commission(api, results):
    alice = results.alice
    get = lambda query: api(alice.user).get(f"/api/v1/stats/?{WEEK}&{query}").json()  # noqa: E731

    assert get("platform=ios")["totals"]["commission"] == "2.50"
    assert get("platform=web")["totals"]["commission"] == "30.00"
    assert get("channel=mobile")["totals"]["commission"] == "2.50"
    assert get(f"campaign={results.campaign.pk}")["totals"]["commission"] == "32.50"
    other = TrackingLinkFactory(affiliate=alice).campaign
    assert get(f"campaign={other.pk}")["totals"]["commission"] == "0.00"


def test_a_sub_affiliates_earnings_are_apart_from_the_parents_own(api, client, results, s2s):
    # given bob, alice's sub-affiliate, whose web player makes an FTD (alice earns 10% of his 30)
    alice, campaign = results.alice, results.campaign
    bob = AffiliateFactory(user=UserFactory(username="bob"), parent=alice, time_zone=TOKYO)
    plan(campaign, name="With overrides", cpa={"ftd": "30.00"}, sub_levels=["10"], affiliate=bob)
    made = click(client, bob, campaign, at=T0, ip="198.51.100.20")
    Click.objects.filter(pk=made.pk).update(platform="web")
    at = int((T0 + timedelta(minutes=5)).timestamp())
    postback(client, s2s, click_id=made.click_id, event="reg", txid="rb", player_id="pb", time=at)
    postback(client, s2s, event="ftd", txid="db", player_id="pb", amount="80", currency="EUR",
             time=at + 600)  # fmt: skip
    keep.clicks_fill(settle=timedelta(0))

    # when alice reads her week
    data = api(alice.user).get(f"/api/v1/stats/?{WEEK}").json()

    # then her own web commission is her own FTD's, and bob's share is a line of its own
    assert data["columns"]["web"]["commission"] == "30.00"
    assert data["columns"]["web"]["ftds"] == 1
    assert data["columns"]["web"]["sub_commission"] == "3.00"
    assert (data["totals"]["commission"], data["from_sub_affiliates"]) == ("32.50", "3.00")
    assert data["earned"] == "35.50"

    # and her sub-affiliates page has bob's row: his clicks, FTDs, revenue and her override
    client.force_login(alice.user)
    page = client.get(f"/dashboard/sub-affiliates/?{WEEK}")
    row = next(r for r in page.context["rows"] if r["sub"] == bob)
    assert (row["clicks"], row["ftds"], row["deposit_amount"]) == (1, 1, Decimal("80"))
    assert row["sub_commission"] == Decimal("3.00")
    exported = client.get(f"/dashboard/sub-affiliates/?{WEEK}&export=csv").content.decode()
    assert exported.splitlines()[1].split(",") == [bob.name, "active", "1", "1", "80.00",
                                                   "0.00", "3.00"]  # fmt: skip
    # and bob sees none of it
    mine = api(bob.user).get(f"/api/v1/stats/?{WEEK}").json()
    assert (mine["totals"]["commission"], mine["from_sub_affiliates"]) == ("30.00", "0.00")


def test_a_click_shows_at_once_and_counts_once_after_the_fill(api, client, alice, campaign):
    # given a link of alice's; the click counters' last fill was a while ago
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)
    keep.clicks_fill(settle=timedelta(0))
    stats = lambda query="": api(alice.user).get(f"/api/v1/stats/?period=today{query}").json()  # noqa: E731

    # when two visitors click it (an iPhone and a desktop), no fill in between
    client.get(f"/c/{link.code}?sub1=spring", HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="198.51.100.1")
    client.get(f"/c/{link.code}", HTTP_USER_AGENT="Mozilla/5.0", REMOTE_ADDR="198.51.100.2")

    # then both show on the very next read, under the filters too
    now = stats()
    assert (now["totals"]["clicks"], now["columns"]["ios"]["clicks"]) == (2, 1)
    assert stats("&channel=web")["totals"]["clicks"] == 1
    assert stats("&sub1=spring")["totals"]["clicks"] == 1
    assert stats("&country=XX")["totals"]["clicks"] == 0
    client.force_login(alice.user)
    assert client.get("/dashboard/?period=today").context["totals"]["clicks"] == 2
    # and once the fill has counted them into the rollups, they count once, not twice
    assert keep.clicks_fill(settle=timedelta(0)) == 2
    after = stats()
    assert (after["totals"]["clicks"], after["totals"]["unique_clicks"]) == (2, 2)
    assert sum(d["mobile"]["clicks"] + d["web"]["clicks"] for d in after["daily"]) == 2
