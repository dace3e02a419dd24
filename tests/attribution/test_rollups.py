"""The dashboards' rollups: kept as conversions and clicks arrive, and exactly rebuildable."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from affiliates.models import Affiliate
from attribution.models import (
    Click,
    Conversion,
    DailyRollup,
    FraudPolicy,
    HourlyRollup,
    SubRollup,
)
from attribution.models.rollups import COUNTERS, DAILY_DIMENSIONS, DIMENSIONS, SUB_DIMENSIONS
from attribution.processing import amend
from attribution.rollups import keep
from tests.attribution.test_crediting import af_install, click, postback

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 22, 30, tzinfo=UTC)  # 23:30 in Berlin: still Nov 2 there


def rows(model) -> set[tuple]:
    """Rollup rows as comparable tuples, leaving out rows whose counters are all zero."""
    if model is SubRollup:
        fields = ["day", *SUB_DIMENSIONS]
    elif model is DailyRollup:
        fields = ["day", *DAILY_DIMENSIONS]
    else:
        fields = ["hour", *DIMENSIONS]
    counters_of = [c for c in COUNTERS if c in {f.name for f in model._meta.fields}]
    out = set()
    for row in model.objects.values(*fields, *counters_of):
        counters = tuple(Decimal(row[c]) for c in counters_of)
        if any(counters):
            out.add((*(row[f] for f in fields), *counters))
    return out


@pytest.fixture
def berlin_alice(alice):
    Affiliate.objects.filter(pk=alice.pk).update(time_zone="Europe/Berlin")
    alice.refresh_from_db()
    return alice


def test_a_conversion_counts_on_the_affiliates_local_day(client, berlin_alice, campaign, appsflyer):
    made = click(client, berlin_alice, campaign, at=T0)
    af_install(
        client, appsflyer, at=T0 + timedelta(hours=1), click_id=made.click_id
    )  # 00:30 Nov 3 local

    daily = DailyRollup.objects.get(installs=1)
    assert daily.day == date(2026, 11, 3)
    assert (daily.affiliate_id, daily.campaign_id, daily.channel, daily.platform) == (
        berlin_alice.pk,
        campaign.pk,
        "mobile",
        "ios",
    )
    assert HourlyRollup.objects.get(installs=1).hour == datetime(2026, 11, 2, 23, tzinfo=UTC)


def test_clicks_are_filled_once_with_unique_visitors(client, berlin_alice, campaign):
    for ip in ("198.51.100.1", "198.51.100.1", "198.51.100.2"):
        click(client, berlin_alice, campaign, at=T0, ip=ip)

    assert keep.clicks_fill(settle=timedelta(0)) == 3
    assert keep.clicks_fill(settle=timedelta(0)) == 0
    row = DailyRollup.objects.get(affiliate_id=berlin_alice.pk)
    assert (row.day, row.clicks, row.unique_clicks) == (date(2026, 11, 2), 3, 2)

    click(client, berlin_alice, campaign, at=T0 + timedelta(minutes=5), ip="198.51.100.3")
    keep.clicks_fill(settle=timedelta(0))
    row.refresh_from_db()
    assert (row.clicks, row.unique_clicks) == (4, 3)


def test_money_and_deposits_are_summed_exactly(client, alice, campaign, s2s):
    made = click(client, alice, campaign, at=T0)
    Click.objects.filter(pk=made.pk).update(platform="web")
    postback(
        client,
        s2s,
        click_id=made.click_id,
        event="reg",
        txid="r",
        player_id="p",
        time=int(T0.timestamp()) + 60,
    )
    for n, amount in enumerate(["10.10", "20.20", "0.03"]):
        postback(
            client,
            s2s,
            event="ftd" if n == 0 else "deposit",
            txid=f"d{n}",
            player_id="p",
            amount=amount,
            currency="EUR",
            time=int(T0.timestamp()) + 120 + n,
        )
    money = DailyRollup.objects.get(currency="EUR")
    assert (money.ftds, money.deposits, money.deposit_amount) == (1, 3, Decimal("30.33"))
    assert DailyRollup.objects.get(currency="", registrations=1).channel == "web"


def test_a_status_change_moves_the_count(client, alice, campaign, appsflyer):
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(client, appsflyer, at=T0 + timedelta(hours=1), click_id=made.click_id)
    amend.conversion_review(conversion=conversion, approve=False, actor=None)
    row = DailyRollup.objects.get()
    assert (row.installs, row.rejected) == (0, 1)


def test_deferred_increments_are_written_once_at_the_end_of_the_block(
    client, alice, campaign, appsflyer
):
    # given an install counted in the rollups
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(client, appsflyer, at=T0 + timedelta(hours=1), click_id=made.click_id)
    before = rows(DailyRollup), rows(HourlyRollup), rows(SubRollup)

    # when, inside a deferred block, it is counted twice more, then taken back and counted
    # again (as a reattribution does)
    with keep.deferred():
        keep.conversion_apply(conversion)
        keep.conversions_add([conversion])
        keep.conversion_apply(conversion, sign=-1)
        keep.conversion_apply(conversion)
        inside = rows(DailyRollup), rows(HourlyRollup), rows(SubRollup)

    # then nothing was written inside the block, and its sum was written when it ended
    assert inside == before
    assert DailyRollup.objects.get().installs == 3
    assert HourlyRollup.objects.get().installs == 3
    assert SubRollup.objects.get(sub=1, value="fb").installs == 3


def test_deferred_increments_are_dropped_when_the_block_fails(client, alice, campaign, appsflyer):
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(client, appsflyer, at=T0 + timedelta(hours=1), click_id=made.click_id)

    with pytest.raises(RuntimeError), keep.deferred():
        keep.conversion_apply(conversion)
        raise RuntimeError("the transaction rolls back")
    keep.conversion_apply(conversion)  # no block open any more: written at once

    assert DailyRollup.objects.get().installs == 2


def test_a_rebuild_gives_exactly_what_the_workers_kept(
    client, berlin_alice, charlie, campaign, appsflyer, branch, s2s
):
    # given a mix of clicks, installs, duplicates, rejections and money over two days
    FraudPolicy.objects.create(campaign=campaign, low_ctit_action="reject")
    for n in range(6):
        at = T0 + timedelta(hours=n * 5)
        who = berlin_alice if n % 2 else charlie
        made = click(
            client,
            who,
            campaign,
            at=at,
            idfa=f"00000000-0000-0000-0000-00000000000{n + 1}",
            ip=f"198.51.100.{n}",
        )
        af_install(
            client,
            appsflyer,
            at=at + timedelta(seconds=5 if n == 3 else 600),
            click_id=made.click_id,
            afid=f"af-{n}",
            idfa=made.idfa,
        )
    postback(
        client,
        appsflyer,
        appsflyer_id="af-1",
        event_name="af_purchase",
        event_revenue="9.99",
        event_revenue_currency="EUR",
        event_time=(T0 + timedelta(hours=7)).strftime("%Y-%m-%d %H:%M:%S"),
    )
    keep.clicks_fill(settle=timedelta(0))
    kept_daily, kept_hourly, kept_subs = rows(DailyRollup), rows(HourlyRollup), rows(SubRollup)
    assert kept_daily and kept_subs and Conversion.objects.filter(status="rejected").exists()

    # when everything is rebuilt from the raw rows
    call_command("rebuild_rollups", "--since=2026-11-01", "--until=2026-11-05")

    # then the figures are the same, row for row
    assert rows(DailyRollup) == kept_daily
    assert rows(HourlyRollup) == kept_hourly
    assert rows(SubRollup) == kept_subs


def test_rebuild_refuses_a_backwards_range():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="after"):
        call_command("rebuild_rollups", "--since=2026-11-05", "--until=2026-11-01")
