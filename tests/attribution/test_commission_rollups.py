"""Commission as rollup counters: kept with every ledger write, rebuilt exactly from the ledger,
and under any filter equal to the ledger's own sum under that filter."""

import itertools
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum

from affiliates.models import Affiliate
from attribution.models import DailyRollup, SubRollup
from attribution.models.rollups import COMMISSION_COUNTERS, DAILY_DIMENSIONS, SUB_DIMENSIONS
from attribution.processing import amend
from attribution.rollups import keep, reports
from payouts import ledger
from payouts.models import LedgerEntry
from tests.factories import (
    AffiliateFactory,
    CampaignFactory,
    ClickFactory,
    ConversionFactory,
    UserFactory,
)
from tests.payouts.helpers import plan

pytestmark = pytest.mark.django_db
BERLIN = "Europe/Berlin"
OCTOBER = date(2026, 10, 1)


def commission_rows(model) -> set[tuple]:
    bucket = ["day", *(DAILY_DIMENSIONS if model is DailyRollup else SUB_DIMENSIONS)]
    out = set()
    for row in model.objects.values(*bucket, *COMMISSION_COUNTERS):
        money = tuple(Decimal(row[c]) for c in COMMISSION_COUNTERS)
        if any(money):
            out.add((*(row[f] for f in bucket), *money))
    return out


def earn(affiliate, campaign, *, at, platform="web", country="DE", type="ftd", sub1=""):
    """A conversion credited to ``affiliate`` (with a click carrying ``sub1``), ledger synced."""
    with transaction.atomic():
        conversion = ConversionFactory(
            affiliate=affiliate,
            campaign=campaign,
            type=type,
            occurred_at=at,
            platform=platform,
            channel="web" if platform == "web" else "mobile",
            country=country,
            revenue=Decimal("100.00"),
            click=ClickFactory(
                affiliate=affiliate,
                campaign=campaign,
                sub1=sub1,
                created_at=at - timedelta(hours=1),
            ),
        )
        ledger.ledger_sync(conversion=conversion)
    return conversion


@pytest.fixture
def program(alice):
    """Alice (Berlin) with bob under her, charlie apart: CPA, RevShare, a retroactive tier,
    overrides, a void, a reversal after payment, a month closed."""
    Affiliate.objects.filter(pk=alice.pk).update(time_zone=BERLIN)
    alice.refresh_from_db()
    bob = AffiliateFactory(user=UserFactory(username="bob"), parent=alice)
    charlie = AffiliateFactory(user=UserFactory(username="charlie"), time_zone="America/New_York")
    casino, sports = CampaignFactory(name="Casino"), CampaignFactory(name="Sports")
    plan(casino, name="Casino deal", cpa={"ftd": "30.00", "registration": "2.00"},
         revshare="25", sub_levels=["10"])  # fmt: skip
    plan(sports, name="Sports deal", cpa={"ftd": "40.00"}, tiers=[(3, "55.00")],
         tier_mode="retroactive", sub_levels=["5"])  # fmt: skip
    # 23:30 UTC on Oct 31 is already Nov 1 in Berlin, still Oct 31 in New York.
    moments = [datetime(2026, 10, d, h, 30, tzinfo=UTC) for d, h in ((3, 9), (9, 22), (31, 23))]
    made = []
    for n, (who, campaign, at, platform, country, sub1) in enumerate(
        itertools.product(
            (alice, bob, charlie), (casino, sports), moments[:2], ("ios", "web"), ("DE", "FR"),
            ("fb", ""),
        )
    ):  # fmt: skip
        if n % 3 == 0:
            made.append(earn(who, campaign, at=at, platform=platform, country=country, sub1=sub1))
    made.append(earn(alice, casino, at=moments[2], platform="android", country="GB", sub1="fb"))
    made.append(earn(bob, casino, at=moments[2], platform="ios", type="registration"))
    # a rejection before payment voids; one after payment is reversed, shares and all
    amend.conversion_set_status(conversion=made[0], status="rejected", reason="manager")
    LedgerEntry.objects.filter(conversion=made[1]).update(status="paid")
    amend.conversion_set_status(conversion=made[1], status="rejected", reason="manager")
    # the month closes: RevShare and tier top-ups, with the parents' shares
    for conversion in made[2:6]:
        ConversionFactory(
            affiliate=conversion.affiliate,
            campaign=conversion.campaign,
            type="deposit",
            occurred_at=conversion.occurred_at,
            revenue=Decimal("400.00"),
        )
    made_entries = ledger.month_close(period=OCTOBER)
    assert made_entries["revshare"] and made_entries["tiers"]
    kinds = set(LedgerEntry.objects.values_list("kind", "status"))
    assert {("reversal", "approved"), ("cpa", "void"), ("subaffiliate", "approved"),
            ("revshare", "approved"), ("adjustment", "approved")} <= kinds  # fmt: skip
    return alice, bob, charlie, casino, sports


def test_a_rebuild_gives_exactly_the_commission_the_ledger_kept(program):
    kept_daily, kept_subs = commission_rows(DailyRollup), commission_rows(SubRollup)
    assert kept_daily and kept_subs

    keep.rebuild(since=date(2026, 9, 30), until=date(2026, 11, 2))

    assert commission_rows(DailyRollup) == kept_daily
    assert commission_rows(SubRollup) == kept_subs


def ledger_sum(affiliate, *, start, end, filters: reports.Filters, own: bool) -> Decimal:
    """The ledger's own answer: live entries of ``affiliate`` whose conversion is of the local
    days start..end and matches the filters; monthly ones on their month's last day, and only
    without a filter on a dimension they do not have."""
    zone = zoneinfo.ZoneInfo(affiliate.time_zone)
    total = Decimal(0)
    entries = (
        LedgerEntry.objects.filter(beneficiary=affiliate)
        .exclude(status="void")
        .select_related("conversion__click", "source_entry")
    )
    for entry in entries:
        source = entry.source_entry if entry.kind == "reversal" else entry
        if (source.kind == "subaffiliate") == own:
            continue
        conversion = entry.conversion
        if conversion is None:
            month_end = keep.month_end(entry.period)
            dimensional = (
                filters.campaign_id or filters.country or filters.platform or filters.channel
            )
            if start <= month_end <= end and not dimensional and not filters.sub:
                total += entry.amount
            continue
        if not start <= conversion.occurred_at.astimezone(zone).date() <= end:
            continue
        platform = "skan" if conversion.method == "skan" else conversion.platform
        if filters.campaign_id and conversion.campaign_id != filters.campaign_id:
            continue
        if filters.country and conversion.country != filters.country:
            continue
        if filters.platform and platform != filters.platform:
            continue
        if filters.channel and conversion.channel != filters.channel:
            continue
        if filters.sub:
            n, value = filters.sub
            if conversion.click is None or getattr(conversion.click, f"sub{n}") != value:
                continue
        total += entry.amount
    return total


def test_commission_under_any_filter_is_the_ledgers_sum_under_it(program):
    alice, bob, charlie, casino, sports = program
    periods = [
        (date(2026, 10, 1), date(2026, 10, 31)),
        (date(2026, 11, 1), date(2026, 11, 1)),
        (date(2026, 10, 9), date(2026, 10, 10)),
        (date(2026, 9, 1), date(2026, 11, 30)),
    ]
    choices = [
        reports.Filters(),
        reports.Filters(country="DE"),
        reports.Filters(country="XX"),
        reports.Filters(platform="ios"),
        reports.Filters(platform="android", country="GB"),
        reports.Filters(channel="web", campaign_id=sports.pk),
        reports.Filters(campaign_id=casino.pk),
        reports.Filters(subs=("fb", "", "", "", "")),
        reports.Filters(subs=("fb", "", "", "", ""), channel="mobile"),
    ]
    checked = 0
    for affiliate, (start, end), filters in itertools.product(
        (alice, bob, charlie), periods, choices
    ):
        period = reports.Period(start, end, "custom")
        totals = reports.summary(
            affiliate_ids=[affiliate.pk], period=period, filters=filters, currency="EUR"
        ).totals
        for own, metric in ((True, "commission"), (False, "sub_commission")):
            want = ledger_sum(affiliate, start=start, end=end, filters=filters, own=own)
            assert totals[metric] == want, (affiliate, start, end, filters, metric)
            checked += bool(want)
    assert checked > 20  # most of them are not zero


def test_the_ledgers_own_totals_agree(program):
    alice = program[0]
    period = reports.Period(date(2026, 9, 1), date(2026, 11, 30), "custom")
    totals = reports.summary(
        affiliate_ids=[alice.pk], period=period, filters=reports.Filters(), currency="EUR"
    ).totals

    assert totals["commission"] + totals["sub_commission"] == ledger.balance(alice.pk)
    shares = LedgerEntry.objects.filter(beneficiary=alice, kind="subaffiliate").exclude(
        status="void"
    )
    reversed_shares = LedgerEntry.objects.filter(
        beneficiary=alice, kind="reversal", source_entry__kind="subaffiliate"
    )
    assert totals["sub_commission"] == (
        (shares.aggregate(s=Sum("amount"))["s"] or 0)
        + (reversed_shares.aggregate(s=Sum("amount"))["s"] or 0)
    )
    assert totals["sub_commission"] > 0


def test_a_conversion_that_moves_takes_its_commission_along(alice):
    # given bob's FTD on iOS in DE, with alice's override
    bob = AffiliateFactory(user=UserFactory(username="bob"), parent=alice)
    casino = CampaignFactory(name="Casino")
    plan(casino, cpa={"ftd": "30.00"}, sub_levels=["10"])
    at = datetime(2026, 10, 9, 12, tzinfo=UTC)
    conversion = earn(bob, casino, at=at, platform="ios", country="DE", sub1="fb")

    # when a reattribution finds its player's origin on Android in FR (as conversion_reattribute
    # moves it: counters out, fields changed, counters in), then rejects it
    with transaction.atomic():
        keep.conversion_commission(conversion, sign=-1)
        conversion.platform, conversion.channel, conversion.country = "android", "mobile", "FR"
        conversion.save()
        keep.conversion_commission(conversion, sign=1)
    kept = commission_rows(DailyRollup), commission_rows(SubRollup)
    keep.rebuild(since=date(2026, 10, 8), until=date(2026, 10, 10))

    # then the counters are where a rebuild puts them: Android, FR
    assert (commission_rows(DailyRollup), commission_rows(SubRollup)) == kept
    period = reports.Period(date(2026, 10, 9), date(2026, 10, 9), "custom")
    for who, metric, amount in ((bob, "commission", "30.00"), (alice, "sub_commission", "3.00")):
        table = reports.summary(
            affiliate_ids=[who.pk], period=period, filters=reports.Filters(), currency="EUR"
        )
        assert table.rows["android"][metric] == Decimal(amount)
        assert table.rows["ios"][metric] == 0
