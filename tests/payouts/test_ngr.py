"""RevShare on net gaming revenue, worked to the cent by hand."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum

from affiliates.models import Affiliate
from payouts import ledger, runs
from payouts.models import LedgerEntry, NgrStatement, Payout
from tests.factories import CampaignFactory, UserFactory
from tests.payouts.helpers import day, fx, ngr_plan, plan, register, send_activity

pytestmark = pytest.mark.django_db
AUG, SEP, OCT = date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1)


@pytest.fixture
def campaign(db):
    return CampaignFactory()


def live(affiliate, kind=None):
    entries = LedgerEntry.objects.filter(beneficiary=affiliate).exclude(status="void")
    return entries.filter(kind=kind) if kind else entries


def total(affiliate, kind=None) -> Decimal:
    return live(affiliate, kind).aggregate(s=Sum("amount"))["s"] or Decimal(0)


def close(*months: date) -> None:
    for month in months:
        ledger.month_close(period=month)


@pytest.mark.parametrize(
    ("deductions", "fee", "ngr", "commission"),
    [
        # GGR 10,000 - 8,000 = 2,000; bonuses 300, chargebacks 100, taxes 200, fees 50;
        # admin fee 10% of GGR = 200: NGR = 2,000 - 300 - 100 - 200 - 50 - 200 = 1,150; 25%
        (("bonuses", "chargebacks", "taxes", "fees"), "10", "1150.00", "287.50"),
        # only bonuses taken off, no admin fee: 2,000 - 300 = 1,700; 25% = 425
        (("bonuses",), "0", "1700.00", "425.00"),
        # chargebacks and taxes, 5% admin fee (100): 2,000 - 100 - 200 - 100 = 1,600; 25%
        (("chargebacks", "taxes"), "5", "1600.00", "400.00"),
    ],
)
def test_the_ngr_formula_takes_off_each_deduction_the_plan_names(
    alice, campaign, deductions, fee, ngr, commission
):
    # given
    ngr_plan(campaign, percent="25", deductions=deductions, fee=fee)
    register(alice, campaign, "P-1")
    send_activity(
        campaign,
        day("P-1", "2026-08-05", bets="6000", wins="5000", bonuses="300", taxes="200"),
        day("P-1", "2026-08-06", bets="4000", wins="3000", chargebacks="100", fees="50"),
    )

    # when
    close(AUG)

    # then
    statement = NgrStatement.objects.get()
    casino = statement.products["casino"]
    assert casino["ggr"] == "2000.00"
    assert (statement.ngr, statement.commission) == (Decimal(ngr), Decimal(commission))
    assert total(alice, "revshare") == Decimal(commission)
    assert close(AUG) is None and NgrStatement.objects.count() == 1
    assert live(alice).count() == 1


def test_each_product_has_its_own_percent_and_the_rest_the_plans(alice, campaign):
    ngr_plan(campaign, percent="20", deductions=(), products={"casino": "30", "sportsbook": "25"})
    register(alice, campaign, "P-1")
    register(alice, campaign, "P-2")
    send_activity(
        campaign,
        day("P-1", "2026-08-05", "casino", ggr="1000"),
        day("P-1", "2026-08-05", "sportsbook", ggr="150"),
        day("P-2", "2026-08-09", "sportsbook", ggr="250"),
        day("P-2", "2026-08-09", "poker", ggr="50"),
    )

    close(AUG)

    # casino 30% of 1,000 = 300; sportsbook 25% of 400 = 100; poker (the plan's 20%) of 50 = 10
    products = NgrStatement.objects.get().products
    assert {p: (v["ngr"], v["percent"], v["commission"]) for p, v in products.items()} == {
        "casino": ("1000.00", "30", "300.00"),
        "sportsbook": ("400.00", "25", "100.00"),
        "poker": ("50.00", "20.0000", "10.00"),
    }
    assert total(alice, "revshare") == Decimal("410.00")


@pytest.mark.parametrize(
    ("carryover", "third", "paid"),
    # Aug +1,000 -> 300; Sep -500 -> 0; Oct +800: carried, 30% of 300 = 90; reset, 30% of 800
    [(True, "90.00", "390.00"), (False, "240.00", "540.00")],
)
def test_negative_ngr_is_carried_or_reset_as_the_plan_says(alice, campaign, carryover, third, paid):
    ngr_plan(campaign, percent="30", carryover=carryover)
    register(alice, campaign, "P-1")
    send_activity(
        campaign,
        day("P-1", "2026-08-05", ggr="1000"),
        day("P-1", "2026-09-05", ggr="-400", bonuses="100"),
        day("P-1", "2026-10-05", ggr="800"),
    )

    close(AUG, SEP, OCT)

    aug, sep, oct_ = NgrStatement.objects.order_by("period")
    assert (aug.commission, sep.ngr, sep.commission) == (
        Decimal("300.00"),
        Decimal("-500.00"),
        Decimal("0"),
    )
    assert sep.products["casino"]["carried_out"] == ("-500.00" if carryover else "0")
    assert oct_.commission == Decimal(third)
    assert total(alice, "revshare") == Decimal(paid)


def test_a_negative_product_does_not_eat_another_products_revshare(alice, campaign):
    # Ring-fenced per product: sportsbook's loss is carried on sportsbook only.
    ngr_plan(campaign, percent="30", products={"sportsbook": "25"})
    register(alice, campaign, "P-1")
    send_activity(
        campaign,
        day("P-1", "2026-09-05", "casino", ggr="200"),
        day("P-1", "2026-09-05", "sportsbook", ggr="-500"),
        day("P-1", "2026-10-05", "sportsbook", ggr="600"),
    )

    close(SEP, OCT)

    sep, oct_ = NgrStatement.objects.order_by("period")
    assert sep.commission == Decimal("60.00")  # 30% of casino's 200
    assert oct_.commission == Decimal("25.00")  # 25% of (600 - 500 carried)


def test_tiers_by_the_months_ngr_raise_the_percent(alice, campaign):
    ngr_plan(campaign, percent="25", ngr_tiers=[("1000", "30"), ("5000", "35")])
    register(alice, campaign, "P-1")
    send_activity(
        campaign,
        day("P-1", "2026-08-05", ggr="999.99"),
        day("P-1", "2026-09-05", ggr="4000"),
        day("P-1", "2026-10-05", ggr="6000"),
    )
    close(AUG, SEP, OCT)
    # 25% of 999.99 = 249.9975 -> 250.00 (half-even); 30% of 4,000; 35% of 6,000
    assert list(NgrStatement.objects.order_by("period").values_list("commission", flat=True)) == [
        Decimal("250.00"),
        Decimal("1200.00"),
        Decimal("2100.00"),
    ]


def test_tiers_by_the_months_ftds_raise_the_percent(alice, campaign):
    ngr_plan(campaign, percent="25", ftd_tiers=[(2, "40")])
    register(alice, campaign, "P-1", type="ftd", amount="50", at=datetime(2026, 8, 2, tzinfo=UTC))
    register(alice, campaign, "P-2", type="ftd", amount="50", at=datetime(2026, 9, 2, tzinfo=UTC))
    register(alice, campaign, "P-3", type="ftd", amount="50", at=datetime(2026, 9, 3, tzinfo=UTC))
    send_activity(
        campaign,
        day("P-1", "2026-08-05", ggr="100"),
        day("P-2", "2026-09-05", ggr="100"),
        day("P-3", "2026-09-05", ggr="100"),
    )
    close(AUG, SEP)
    # August: one FTD, 25% of 100; September: two FTDs, 40% of 200
    assert list(NgrStatement.objects.order_by("period").values_list("commission", flat=True)) == [
        Decimal("25.00"),
        Decimal("80.00"),
    ]


def test_a_day_revised_after_its_month_was_paid_is_an_adjustment_next_period(alice, campaign):
    # given: August closed at NGR 1,000 (30% = 300) and paid
    ngr_plan(campaign, percent="30")
    register(alice, campaign, "P-1")
    send_activity(campaign, day("P-1", "2026-08-05", bets="5000", wins="4000"))
    close(AUG)
    run = runs.payout_run_execute(
        run_id=runs.payout_run_create(period_start=SEP, period_end=date(2026, 9, 30)).pk
    )
    manager = UserFactory(is_staff=True)
    runs.payout_run_approve(run=run, actor=manager)
    runs.payout_mark_paid(payout=Payout.objects.get(run=run), reference="SEPA-1", actor=manager)
    august = LedgerEntry.objects.get(kind="revshare")
    assert (august.amount, august.status) == (Decimal("300.00"), "paid")

    # when: the operator revises August 5th (wins were 4,400) and September brings NGR 200
    revised = send_activity(campaign, day("P-1", "2026-08-05", bets="5000", wins="4400"))
    send_activity(campaign, day("P-1", "2026-09-07", ggr="200"))
    close(SEP)

    # then: August's paid entry is untouched; September pays 60 and takes back 120
    assert revised.revised == 1
    august.refresh_from_db()
    assert (august.amount, august.status, august.period) == (Decimal("300.00"), "paid", AUG)
    september = NgrStatement.objects.get(period=SEP)
    assert (september.commission, september.adjustment) == (Decimal("60.00"), Decimal("-120.00"))
    adjustment = LedgerEntry.objects.get(kind="adjustment")
    assert (adjustment.amount, adjustment.period, adjustment.status) == (
        Decimal("-120.00"),
        SEP,
        "approved",
    )
    # 30% of (600 + 200): what the activity as it stands now comes to
    assert total(alice) == Decimal("240.00")
    # and October, with nothing new, adds nothing
    close(OCT)
    assert total(alice) == Decimal("240.00")


def test_activity_before_the_players_registration_is_credited_once_attributed(alice, campaign):
    ngr_plan(campaign, percent="30")
    # August: the operator reports P-9 before anyone knows who brought them
    send_activity(campaign, day("P-9", "2026-08-05", ggr="1000"))
    close(AUG)
    assert not NgrStatement.objects.exists()

    # September: P-9's registration is credited to alice, and P-9 plays on
    register(alice, campaign, "P-9", at=datetime(2026, 9, 2, tzinfo=UTC))
    send_activity(campaign, day("P-9", "2026-09-05", ggr="100"))
    close(SEP)

    september = NgrStatement.objects.get()
    assert (september.commission, september.adjustment) == (Decimal("30.00"), Decimal("300.00"))
    assert total(alice) == Decimal("330.00")


def test_an_organic_player_earns_nobody_anything(alice, campaign):
    ngr_plan(campaign, percent="30")
    register(None, campaign, "P-1")
    send_activity(campaign, day("P-1", "2026-08-05", ggr="1000"))
    close(AUG)
    assert not LedgerEntry.objects.exists()


def test_multi_currency_activity_at_the_days_rate_and_the_entry_frozen(campaign):
    # given: the plan pays in EUR (the base), the affiliate is paid in USD, a player plays in GBP
    usd = Affiliate.objects.create(
        user=UserFactory(username="usd"), name="Dollar Media", currency="USD"
    )
    ngr_plan(campaign, percent="30")
    register(usd, campaign, "P-1")
    fx(date(2026, 8, 1), GBP="1.15", USD="0.9")
    fx(date(2026, 8, 20), GBP="1.10")
    send_activity(
        campaign,
        day("P-1", "2026-08-05", currency="GBP", ggr="1000"),  # 1,150 EUR
        day("P-1", "2026-08-25", currency="GBP", ggr="100"),  # 110 EUR
        day("P-1", "2026-08-25", "poker", currency="EUR", ggr="40"),
    )

    # when
    close(AUG)

    # then: NGR 1,300 EUR; 30% = 390.00 EUR; at 1 / 0.9 = 1.1111111111 USD: 433.33
    statement = NgrStatement.objects.get()
    assert (statement.ngr, statement.commission) == (Decimal("1300.00"), Decimal("390.00"))
    entry = LedgerEntry.objects.get()
    assert (entry.original_amount, entry.original_currency) == (Decimal("390.00"), "EUR")
    assert (entry.fx_rate, entry.amount, entry.currency) == (
        Decimal("1.1111111111"),
        Decimal("433.33"),
        "USD",
    )

    # a rate added later changes neither the entry nor, next month, the commission
    fx(date(2026, 8, 31), USD="0.8")
    close(AUG, SEP)
    entry.refresh_from_db()
    assert (entry.amount, entry.fx_rate) == (Decimal("433.33"), Decimal("1.1111111111"))
    assert LedgerEntry.objects.count() == 1


def test_a_deposit_based_plan_ignores_player_activity(alice, campaign):
    plan(campaign, revshare="30")
    register(alice, campaign, "P-1")
    send_activity(campaign, day("P-1", "2026-08-05", ggr="1000"))
    close(AUG)
    assert not NgrStatement.objects.exists()
    assert not LedgerEntry.objects.filter(kind="revshare").exists()


def test_close_month_command_reports_ngr_statements(alice, campaign, capsys):
    ngr_plan(campaign, percent="30")
    register(alice, campaign, "P-1")
    send_activity(campaign, day("P-1", "2026-08-05", ggr="100"))
    call_command("close_month", "2026-08")
    assert "1 NGR statement(s)" in capsys.readouterr().out
