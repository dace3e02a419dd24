"""The managers' overview: a period in the manager's time zone, money and traffic by channel,
top and rising affiliates and campaigns, and the alerts. Its money is the sum of the
affiliates' own dashboards for the same period."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from affiliates.models import Affiliate
from attribution.models import OutboundEndpoint, Postback
from attribution.rollups import keep
from tests.conftest import staff_login
from tests.factories import AffiliateFactory, CampaignFactory, UserFactory
from tests.payouts.helpers import convert, plan

pytestmark = pytest.mark.django_db

OCTOBER = "?period=custom&start=2026-10-01&end=2026-10-31"
SUMMED = ("ftds", "deposits", "deposit_amount", "revenue", "commission")


@pytest.fixture
def program(alice, charlie):
    """alice and charlie (UTC, EUR) with FTDs and deposits in October; one FTD in September."""
    campaign = CampaignFactory()
    plan(campaign, cpa={"ftd": "40.00"})
    at = datetime(2026, 10, 5, 12, tzinfo=UTC)
    convert(alice, campaign, player="a1", at=at, amount="100.00")
    convert(alice, campaign, player="a2", at=at + timedelta(days=3), amount="60.00")
    convert(alice, campaign, player="a1", type="deposit", at=at + timedelta(days=4), amount="25.50")
    convert(charlie, campaign, player="c1", at=at + timedelta(days=9), amount="10.00")
    convert(charlie, campaign, player="c0", at=datetime(2026, 9, 28, tzinfo=UTC))
    keep.rebuild(since=date(2026, 9, 1), until=date(2026, 10, 31))
    return [alice, charlie]


def dashboard_totals(client, affiliate: Affiliate) -> dict[str, Decimal]:
    client.force_login(affiliate.user)
    page = client.get(reverse("affiliate-dashboard") + OCTOBER)
    assert page.status_code == 200
    return page.context["summary"].totals


def test_the_overviews_money_is_the_sum_of_the_affiliates_dashboards(client, manager, program):
    # given: each affiliate's own dashboard for October
    summed = dict.fromkeys(SUMMED, Decimal(0))
    for affiliate in program:
        totals = dashboard_totals(client, affiliate)
        for metric in SUMMED:
            summed[metric] += totals[metric]
    client.logout()

    # when: the manager opens the overview for October, in UTC
    staff_login(client, manager)
    page = client.get(reverse("admin-overview") + OCTOBER + "&time_zone=UTC")

    # then: the same money, and the figures we put in
    assert page.status_code == 200
    total = page.context["columns"]["total"]
    assert {m: total[m] for m in SUMMED} == summed
    assert total["commission"] == Decimal("120.00")  # three FTDs at 40.00 in October
    assert total["ftds"] == 3
    assert total["margin"] == total["revenue"] - total["commission"]
    assert b'data-table="overview-totals"' in page.content


def test_the_period_and_time_zone_are_a_form_and_a_bad_one_is_an_error(manager_client, program):
    page = manager_client.get(
        reverse("admin-overview") + "?period=custom&start=2026-10-31&end=2026-10-01&time_zone=UTC"
    )
    assert page.status_code == 200
    assert b"before it starts" in page.content
    bad_zone = manager_client.get(reverse("admin-overview") + "?time_zone=Mars/Olympus")
    assert bad_zone.status_code == 200
    assert b"is not a time zone" in bad_zone.content

    manager_client.get(reverse("admin-overview") + "?period=last7&time_zone=Asia/Tokyo")
    remembered = manager_client.get(reverse("admin-overview"))
    assert remembered.context["time_zone"] == "Asia/Tokyo"


def test_top_and_rising_affiliates(manager_client, program):
    alice, charlie = program
    page = manager_client.get(reverse("admin-overview") + OCTOBER + "&time_zone=UTC")
    top = page.context["top_affiliates"]["ftds"]
    assert [a["id"] for a in top] == [alice.pk, charlie.pk]
    rising = {a["id"]: a["ftds_rise"] for a in page.context["rising_affiliates"]}
    assert rising == {alice.pk: 2}  # charlie: one FTD now, one in the September before


def test_alerts_name_silent_sources_and_disabled_postback_urls(
    manager_client, client, appsflyer, alice
):
    # given: the AppsFlyer source sent a postback yesterday and nothing since
    Postback.objects.create(
        source=appsflyer,
        kind=appsflyer.kind,
        method="GET",
        query="x=1",
        dedup_key="silent-1",
        status="processed",
        received_at=timezone.now() - timedelta(hours=30),
    )
    OutboundEndpoint.objects.create(
        affiliate=alice,
        url_template="https://a.example/",
        is_active=False,
        disabled_reason="20 failures in a row",
    )
    AffiliateFactory(status="pending", user=UserFactory(username="newcomer"))

    page = manager_client.get(reverse("admin-overview"))

    text = page.content.decode()
    assert [s["source"] for s in page.context["silent"]] == [appsflyer]
    assert "1 silent source(s)" in text
    assert "1 affiliate postback URL(s) disabled" in text
    assert "1 affiliate(s) awaiting approval" in text
