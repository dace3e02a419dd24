"""Every list and the stats cost the same number of queries for 3 rows as for 30."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from affiliates.models import Affiliate
from attribution.models import Click, DailyRollup
from payouts.models import CommissionPlan, CpaRule, Payout, PayoutRun, PlanVersion, Tier
from tests.factories import (
    AffiliateFactory,
    CampaignFactory,
    ConversionFactory,
    TrackingLinkFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)
WEEK = "period=custom&start=2026-11-01&end=2026-11-07"


def links(alice: Affiliate, n: int) -> None:
    for _ in range(n):
        TrackingLinkFactory(affiliate=alice, campaign=CampaignFactory())


def conversions(alice: Affiliate, n: int) -> None:
    for i in range(n):
        ConversionFactory(
            affiliate=alice, campaign=CampaignFactory(), occurred_at=T0 + timedelta(minutes=i)
        )


def clicks(alice: Affiliate, n: int) -> None:
    link = TrackingLinkFactory(affiliate=alice)
    start = Click.objects.count()
    Click.objects.bulk_create(
        Click(
            click_id=f"{start + i:026d}",
            link=link,
            affiliate=alice,
            campaign=link.campaign,
            created_at=T0 + timedelta(seconds=i),
            platform="ios",
            ip="198.51.100.7",
            user_agent="test",
        )
        for i in range(n)
    )


def payouts(alice: Affiliate, n: int) -> None:
    start = PayoutRun.objects.count()
    for i in range(start, start + n):
        run = PayoutRun.objects.create(
            period_start=date(2020, 1, 1) + timedelta(days=i),
            period_end=date(2020, 1, 1) + timedelta(days=i),
            status="paid",
        )
        Payout.objects.create(run=run, affiliate=alice, amount=Decimal("10.00"), currency="EUR")


def affiliates(alice: Affiliate, n: int) -> None:
    for _ in range(n):
        AffiliateFactory(parent=alice, manager=UserFactory(is_staff=True))


def campaigns(alice: Affiliate, n: int) -> None:
    for _ in range(n):
        CampaignFactory()


def plans(alice: Affiliate, n: int) -> None:
    start = CommissionPlan.objects.count()
    for i in range(start, start + n):
        commission_plan = CommissionPlan.objects.create(name=f"Plan {i}")
        for month in (1, 2):
            version = PlanVersion.objects.create(
                plan=commission_plan, valid_from=datetime(2026, month, 1, tzinfo=UTC)
            )
            CpaRule.objects.create(version=version, conversion_type="ftd", amount=Decimal(30))
            Tier.objects.create(version=version, from_ftds=10, cpa_amount=Decimal(40))


def rollups(alice: Affiliate, n: int) -> None:
    # Rows on different days, campaigns and countries: what the selectors sum.
    start = DailyRollup.objects.count()
    DailyRollup.objects.bulk_create(
        DailyRollup(
            day=date(2026, 11, 1) + timedelta(days=i % 7),
            affiliate_id=alice.pk,
            campaign_id=1000 + start + i,
            channel="web" if i % 2 else "mobile",
            platform="web" if i % 2 else "ios",
            country="DE",
            currency="EUR",
            clicks=10,
            installs=1,
            deposit_amount=Decimal("25.00"),
        )
        for i in range(n)
    )


AFFILIATE_LISTS = [
    ("/api/v1/links/", links),
    ("/api/v1/conversions/", conversions),
    ("/api/v1/clicks/", clicks),
    ("/api/v1/payouts/", payouts),
    (f"/api/v1/stats/?{WEEK}", rollups),
    (f"/api/v1/stats/breakdown/?by=campaign&{WEEK}", rollups),
    (f"/api/v1/stats/breakdown/?by=country&{WEEK}", rollups),
]
MANAGER_LISTS = [
    *AFFILIATE_LISTS,
    ("/api/v1/affiliates/", affiliates),
    ("/api/v1/campaigns/", campaigns),
    ("/api/v1/plans/", plans),
    (f"/api/v1/stats/?affiliate={{alice}}&{WEEK}", rollups),
]


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


def assert_constant(client, url: str, alice: Affiliate, add: Callable, assert_num_queries):
    # given 3 rows
    add(alice, 3)
    with_three = count_queries(client, url)

    # when there are 30
    add(alice, 27)

    # then the same queries read them
    with assert_num_queries(with_three):
        response = client.get(url)
    body = response.json()
    if "results" in body:
        assert len(body["results"]) >= 30
    assert with_three <= 10


@pytest.mark.parametrize(("url", "add"), AFFILIATE_LISTS, ids=[u for u, _ in AFFILIATE_LISTS])
def test_an_affiliates_lists_cost_the_same_queries_for_3_or_30_rows(
    api, alice, url, add, django_assert_num_queries
):
    assert_constant(api(alice.user), url, alice, add, django_assert_num_queries)


@pytest.mark.parametrize(("url", "add"), MANAGER_LISTS, ids=[u for u, _ in MANAGER_LISTS])
def test_a_managers_lists_cost_the_same_queries_for_3_or_30_rows(
    api, alice, manager, url, add, django_assert_num_queries
):
    url = url.format(alice=alice.pk)
    assert_constant(api(manager), url, alice, add, django_assert_num_queries)
