"""Deals operators really run, worked to the cent."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from affiliates.models import Affiliate, AuditEvent
from attribution.processing import amend
from payouts import ledger, runs
from payouts.models import LedgerEntry, Payout, PayoutRun, RevShareStatement
from tests.factories import AffiliateFactory, CampaignFactory, UserFactory
from tests.payouts.helpers import EPOCH, convert, fx, plan

pytestmark = pytest.mark.django_db
OCT = datetime(2026, 10, 5, 12, tzinfo=UTC)


def entries(affiliate, kind=None):
    found = LedgerEntry.objects.filter(beneficiary=affiliate).exclude(status="void")
    return found.filter(kind=kind) if kind else found


def total(affiliate, kind=None) -> Decimal:
    return entries(affiliate, kind).aggregate(s=Sum("amount"))["s"] or Decimal(0)


@pytest.fixture
def campaign(db):
    return CampaignFactory()


def test_cpa_with_a_minimum_first_deposit(alice, campaign):
    plan(campaign, cpa={"ftd": "100.00"}, min_deposit="20.00")

    qualified = convert(alice, campaign, amount="25.00")
    too_small = convert(alice, campaign, amount="10.00")

    assert [(e.kind, e.amount, e.conversion) for e in entries(alice)] == [
        ("cpa", Decimal("100.00"), qualified)
    ]
    assert not too_small.ledger_entries.exists()
    assert too_small.ledger_synced


def revshare_months(alice, campaign, nets: list[str]) -> list[RevShareStatement]:
    # Consecutive months that are over, the last one last month: a month in progress cannot be
    # closed.
    this_month = timezone.now().date().replace(day=1)
    for n, net in enumerate(nets):
        index = this_month.year * 12 + this_month.month - 1 - len(nets) + n
        at = datetime(index // 12, index % 12 + 1, 10, tzinfo=UTC)
        amount = Decimal(net)
        if amount >= 0:
            convert(alice, campaign, type="deposit", amount=str(amount), at=at, player="p")
        else:
            convert(alice, campaign, type="deposit", amount="100.00", at=at, player="p")
            convert(
                alice, campaign, type="withdrawal", amount=str(-amount + 100), at=at, player="p"
            )
        ledger.month_close(period=at.date().replace(day=1))
    return list(RevShareStatement.objects.order_by("period"))


def test_revshare_carries_a_negative_month_into_the_next(alice, campaign):
    plan(campaign, revshare="30", carryover=True)

    october, november, december = revshare_months(alice, campaign, ["1000", "-500", "800"])

    assert (october.net_revenue, october.commission) == (Decimal("1000"), Decimal("300.00"))
    assert (november.net_revenue, november.commission, november.carried_out) == (
        Decimal("-500"),
        Decimal("0"),
        Decimal("-500"),
    )
    assert (december.carried_in, december.commission) == (Decimal("-500"), Decimal("90.00"))
    assert total(alice, "revshare") == Decimal("390.00")


def test_revshare_can_reset_a_negative_month_instead(alice, campaign):
    plan(campaign, revshare="30", carryover=False)
    *_, december = revshare_months(alice, campaign, ["1000", "-500", "800"])
    assert (december.carried_in, december.commission) == (Decimal("0"), Decimal("240.00"))
    assert total(alice, "revshare") == Decimal("540.00")


def test_revshare_nets_withdrawals_bonuses_chargebacks_and_fees(alice, campaign):
    plan(campaign, revshare="25", fee="10")
    for kind, amount in [
        ("ftd", "500"),
        ("deposit", "300"),
        ("withdrawal", "200"),
        ("bonus", "50"),
        ("chargeback", "30"),
    ]:
        convert(alice, campaign, type=kind, amount=amount, player="p")
    ledger.month_close(period=date(2026, 10, 1))
    statement = RevShareStatement.objects.get()
    # 800 deposits - 200 - 50 - 30 - 80 fees (10% of deposits) = 440; 25% = 110
    assert (statement.fees, statement.net_revenue, statement.commission) == (
        Decimal("80.00"),
        Decimal("440.00"),
        Decimal("110.00"),
    )
    assert ledger.month_close(period=date(2026, 10, 1)) == {"tiers": 0, "revshare": 0, "ngr": 0}


def test_hybrid_pays_cpa_and_revshare(alice, campaign):
    plan(campaign, cpa={"ftd": "50.00"}, revshare="25")
    convert(alice, campaign, type="ftd", amount="100.00", player="p")
    ledger.month_close(period=date(2026, 10, 1))
    assert (total(alice, "cpa"), total(alice, "revshare")) == (Decimal("50.00"), Decimal("25.00"))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("progressive", ["100.00", "100.00", "150.00", "150.00"]),
        ("retroactive", ["100.00", "100.00", "150.00", "150.00"]),
    ],
)
def test_tiers_step_up_with_the_months_ftds(alice, campaign, mode, expected):
    plan(campaign, cpa={"ftd": "100.00"}, tiers=[(1, "100.00"), (3, "150.00")], tier_mode=mode)
    for n in range(4):
        convert(alice, campaign, at=OCT + timedelta(hours=n), player=f"p{n}")
    assert [str(e.amount) for e in entries(alice, "cpa").order_by("pk")] == expected

    ledger.month_close(period=date(2026, 10, 1))

    if mode == "progressive":
        assert total(alice) == Decimal("500.00")
    else:  # every FTD of the month at the tier the month reached
        assert total(alice, "adjustment") == Decimal("100.00")
        assert total(alice) == Decimal("600.00")
    ledger.month_close(period=date(2026, 10, 1))  # closing again adds nothing
    assert entries(alice).count() == (4 if mode == "progressive" else 5)


def test_a_baseline_leaves_the_first_ftds_unpaid(alice, campaign):
    plan(campaign, cpa={"ftd": "100.00"}, baseline=2)
    for n in range(3):
        convert(alice, campaign, at=OCT + timedelta(hours=n), player=f"p{n}")
    assert [e.amount for e in entries(alice).order_by("pk")] == [
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("100.00"),
    ]
    assert "baseline" in entries(alice).first().note


def test_parents_earn_from_two_levels_of_sub_affiliates(alice, campaign):
    bob = AffiliateFactory(user=UserFactory(username="bob"), parent=alice)
    carol = AffiliateFactory(user=UserFactory(username="carol"), parent=bob)
    plan(campaign, cpa={"ftd": "100.00"}, sub_levels=["10", "5"])

    convert(carol, campaign)

    assert total(carol) == Decimal("100.00")
    assert [(e.kind, e.amount) for e in entries(bob)] == [("subaffiliate", Decimal("10.00"))]
    assert [(e.kind, e.amount) for e in entries(alice)] == [("subaffiliate", Decimal("5.00"))]
    assert entries(alice).get().source_entry == entries(carol).get()


def test_a_foreign_currency_is_converted_at_the_frozen_rate(alice, campaign):
    Affiliate.objects.filter(pk=alice.pk).update(currency="GBP")
    alice.refresh_from_db()
    fx(date(2026, 10, 1), GBP="1.16", USD="0.92")
    plan(campaign, cpa={"ftd": "100.00"}, min_deposit="20.00", revshare="50")

    convert(alice, campaign, amount="25.00", currency="USD")  # 23.00 EUR: qualifies
    convert(alice, campaign, amount="20.00", currency="USD", player="q")  # 18.40 EUR: does not
    fx(date(2026, 10, 6), GBP="2.00")  # later rates do not touch accrued entries

    cpa = entries(alice, "cpa").get()
    assert (cpa.original_amount, cpa.original_currency) == (Decimal("100.00"), "EUR")
    assert (cpa.fx_rate, cpa.amount, cpa.currency) == (
        Decimal("0.8620689655"),
        Decimal("86.21"),
        "GBP",
    )
    ledger.month_close(period=date(2026, 10, 1))
    revshare = entries(alice, "revshare").get()
    # deposits 45 USD = 41.40 EUR (Oct 5 rate); 50% = 20.70 EUR; at the month's last rate 2.00
    assert (revshare.original_amount, revshare.amount) == (Decimal("20.70"), Decimal("10.35"))


def test_a_conversion_is_paid_by_the_plan_version_in_force_when_it_occurred(alice, campaign):
    plan(campaign, name="Deal", cpa={"ftd": "100.00"}, valid_from=EPOCH)
    plan(
        campaign, name="Deal", cpa={"ftd": "120.00"}, valid_from=datetime(2026, 10, 10, tzinfo=UTC)
    )
    convert(alice, campaign, at=datetime(2026, 10, 9, tzinfo=UTC))
    convert(alice, campaign, at=datetime(2026, 10, 11, tzinfo=UTC), player="q")
    assert [e.amount for e in entries(alice).order_by("pk")] == [
        Decimal("100.00"),
        Decimal("120.00"),
    ]


def test_a_rejected_unpaid_conversion_voids_its_entries_with_an_audit_row(alice, campaign):
    bob = AffiliateFactory(parent=alice)
    plan(campaign, cpa={"ftd": "100.00"}, sub_levels=["10"])
    conversion = convert(bob, campaign)

    amend.conversion_review(conversion=conversion, approve=False, actor=None)

    assert set(LedgerEntry.objects.values_list("status", flat=True)) == {"void"}
    assert ledger.balance(bob.pk) == ledger.balance(alice.pk) == Decimal(0)
    voided = LedgerEntry.objects.get(beneficiary=bob)
    assert AuditEvent.objects.filter(object_id=str(voided.pk), new="void").exists()


def test_payout_runs_net_threshold_carry_and_a_reversal_after_payment(alice, campaign):
    plan(campaign, cpa={"ftd": "30.00"}, hold_days=7)
    Affiliate.objects.filter(pk=alice.pk).update(minimum_payout=Decimal("50.00"))
    first = convert(alice, campaign, at=datetime(2026, 9, 10, tzinfo=UTC), player="a")

    # September: 30.00 is under the minimum, so it carries
    september = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 9, 1), period_end=date(2026, 9, 30)
        ).pk
    )
    assert not september.payouts.exists()

    # October: 30.00 carried + 30.00 new = 60.00, paid
    convert(alice, campaign, at=datetime(2026, 10, 3, tzinfo=UTC), player="b")
    october = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31)
        ).pk
    )
    payout = october.payouts.get()
    assert payout.amount == Decimal("60.00")
    manager = UserFactory(is_staff=True)
    runs.payout_run_approve(run=october, actor=manager)
    runs.payout_mark_paid(
        payout=Payout.objects.get(pk=payout.pk), reference="SEPA-1", actor=manager
    )
    assert set(payout.lines.values_list("status", flat=True)) == {"paid"}
    assert PayoutRun.objects.get(pk=october.pk).status == "paid"

    # the first FTD turns out to be fraud: a negative entry, netted by the next run
    amend.conversion_review(conversion=first, approve=False, actor=manager)
    reversal = LedgerEntry.objects.get(kind="reversal")
    assert reversal.amount == Decimal("-30.00")
    assert ledger.balance(alice.pk) == Decimal("30.00")
    convert(alice, campaign, at=datetime(2026, 11, 3, tzinfo=UTC), player="c")
    convert(alice, campaign, at=datetime(2026, 11, 4, tzinfo=UTC), player="d")
    convert(alice, campaign, at=datetime(2026, 11, 5, tzinfo=UTC), player="e")
    november = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 11, 1), period_end=date(2026, 11, 30)
        ).pk
    )
    assert november.payouts.get().amount == Decimal("60.00")  # 90.00 - 30.00


def test_rerunning_a_run_never_counts_an_entry_twice(alice, charlie, campaign):
    plan(campaign, cpa={"ftd": "80.00"})
    convert(alice, campaign, player="a")
    convert(charlie, campaign, player="c")
    run = runs.payout_run_create(period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    runs.payout_run_execute(run_id=run.pk)
    runs.payout_run_execute(run_id=run.pk)  # as after a crash
    assert run.payouts.count() == 2
    assert Payout.objects.aggregate(s=Sum("amount"))["s"] == Decimal("160.00")
    with pytest.raises(runs.PayoutError, match="exists already"):
        runs.payout_run_create(period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))


def test_entries_on_hold_wait_for_a_later_run(alice, campaign):
    plan(campaign, cpa={"ftd": "80.00"}, hold_days=30)
    convert(alice, campaign, at=datetime(2026, 10, 20, tzinfo=UTC))
    october = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31)
        ).pk
    )
    assert not october.payouts.exists()
    november = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 11, 1), period_end=date(2026, 11, 30)
        ).pk
    )
    assert november.payouts.get().amount == Decimal("80.00")


def test_a_cancelled_run_frees_its_entries(alice, campaign):
    plan(campaign, cpa={"ftd": "80.00"})
    convert(alice, campaign)
    run = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31)
        ).pk
    )
    runs.payout_run_cancel(run=run, actor=None)
    again = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31)
        ).pk
    )
    assert again.payouts.get().amount == Decimal("80.00")


def test_the_last_hour_of_the_period_counts_in_the_westernmost_time_zones(campaign):
    samoa = AffiliateFactory(time_zone="Pacific/Pago_Pago")  # UTC-11
    plan(campaign, cpa={"ftd": "90.00"})
    # Oct 31, 23:30 in Pago Pago is Nov 1, 10:30 UTC
    convert(samoa, campaign, at=datetime(2026, 11, 1, 10, 30, tzinfo=UTC))
    october = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31)
        ).pk
    )
    assert october.payouts.get().amount == Decimal("90.00")
