"""Property-based: whatever the stream of conversions, decisions and runs, the money adds up."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affiliates.models import Affiliate
from attribution.models import Conversion
from attribution.processing import amend
from payouts import ledger, runs
from payouts.models import LedgerEntry, Payout
from tests.factories import AffiliateFactory, CampaignFactory, UserFactory
from tests.payouts.helpers import convert, plan

pytestmark = pytest.mark.django_db
START = datetime(2026, 1, 1, 12, tzinfo=UTC)
CENTS = st.integers(min_value=0, max_value=50_000).map(lambda c: Decimal(c) / 100)

# One step of a month: a new conversion for affiliate i, a manager's decision on the k-th
# conversion so far, or nothing.
STEP = st.one_of(
    st.tuples(st.just("convert"), st.integers(0, 2), st.sampled_from(["ftd", "deposit"]), CENTS),
    st.tuples(st.just("reject"), st.integers(0, 200)),
    st.tuples(st.just("approve"), st.integers(0, 200)),
)
MONTHS = st.lists(st.lists(STEP, max_size=8), min_size=1, max_size=4)
SETUPS = st.fixed_dictionaries(
    {
        "cpa": CENTS,
        "revshare": st.sampled_from(["0", "25", "33.3333"]),
        "carryover": st.booleans(),
        "minimum": st.sampled_from([Decimal("0.01"), Decimal("50.00"), Decimal("500.00")]),
        "sub_levels": st.sampled_from([[], ["10"], ["10", "5"]]),
    }
)


def _paid_and_carried(affiliates: list[Affiliate]) -> None:
    """The invariants after every run."""
    live = LedgerEntry.objects.exclude(status=LedgerEntry.Status.VOID)
    for affiliate in affiliates:
        mine = live.filter(beneficiary=affiliate)
        ledger_total = mine.aggregate(s=Sum("amount"))["s"] or Decimal(0)
        paid_out = Payout.objects.filter(affiliate=affiliate).exclude(
            status=Payout.Status.CANCELLED
        ).aggregate(s=Sum("amount"))["s"] or Decimal(0)
        carried = mine.filter(payout__isnull=True).aggregate(s=Sum("amount"))["s"] or Decimal(0)
        # payouts plus carried balances equal the ledger, to the cent
        assert paid_out + carried == ledger_total
        for payout in Payout.objects.filter(affiliate=affiliate):
            lines = payout.lines.aggregate(s=Sum("amount"))["s"] or Decimal(0)
            assert lines == payout.amount
    # no entry paid twice: one payout at most, and a void entry is never in a payout
    assert not LedgerEntry.objects.filter(status="void", payout__isnull=False).exists()
    assert not LedgerEntry.objects.filter(kind="reversal", source_entry__isnull=True).exists()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(setup=SETUPS, months=MONTHS)
def test_payouts_and_carried_balances_always_equal_the_ledger(db, setup, months):
    with transaction.atomic():
        campaign = CampaignFactory()
        root = AffiliateFactory(minimum_payout=setup["minimum"])
        child = AffiliateFactory(parent=root, minimum_payout=setup["minimum"])
        grandchild = AffiliateFactory(parent=child, minimum_payout=setup["minimum"])
        affiliates = [root, child, grandchild]
        plan(
            campaign,
            cpa={"ftd": str(setup["cpa"])},
            revshare=setup["revshare"],
            carryover=setup["carryover"],
            sub_levels=setup["sub_levels"],
        )
        manager = UserFactory()
        made: list[Conversion] = []
        paid_before: dict[int, Decimal] = {}
        for month, steps in enumerate(months):
            first = (START + timedelta(days=31 * month)).date().replace(day=1)
            for n, step in enumerate(steps):
                at = datetime.combine(first, datetime.min.time(), UTC) + timedelta(days=1, hours=n)
                if step[0] == "convert":
                    _, who, kind, amount = step
                    made.append(
                        convert(
                            affiliates[who],
                            campaign,
                            type=kind,
                            amount=str(amount),
                            at=at,
                            player=f"p{len(made)}",
                        )
                    )
                elif made:
                    target = made[step[1] % len(made)]
                    target.refresh_from_db()
                    amend.conversion_review(
                        conversion=target, approve=step[0] == "approve", actor=manager
                    )
            ledger.month_close(period=first)
            last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            run = runs.payout_run_execute(
                run_id=runs.payout_run_create(period_start=first, period_end=last).pk
            )
            runs.payout_run_approve(run=run, actor=manager)
            for payout in run.payouts.all():
                runs.payout_mark_paid(payout=payout, reference=f"R{payout.pk}", actor=manager)
            _paid_and_carried(affiliates)
            # a reversal after payment shows as a negative balance the next run nets
            for affiliate in affiliates:
                balance = LedgerEntry.objects.filter(
                    beneficiary=affiliate, payout__isnull=True
                ).exclude(status="void").aggregate(s=Sum("amount"))["s"] or Decimal(0)
                if balance < 0:
                    assert LedgerEntry.objects.filter(
                        beneficiary=affiliate, kind="reversal", payout__isnull=True
                    ).exists()
                paid_before[affiliate.pk] = balance
        transaction.set_rollback(True)


def test_a_reversal_after_payment_is_netted_by_the_next_run(db):
    campaign = CampaignFactory()
    alice = AffiliateFactory(minimum_payout=Decimal("1.00"))
    plan(campaign, cpa={"ftd": "40.00"})
    fraud = convert(alice, campaign, at=datetime(2026, 3, 2, tzinfo=UTC), player="a")
    march = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 3, 1), period_end=date(2026, 3, 31)
        ).pk
    )
    runs.payout_run_approve(run=march, actor=None)
    runs.payout_mark_paid(payout=march.payouts.get(), reference="X", actor=None)

    amend.conversion_review(conversion=fraud, approve=False, actor=None)
    april = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 4, 1), period_end=date(2026, 4, 30)
        ).pk
    )
    assert not april.payouts.exists()  # -40.00 carried
    convert(alice, campaign, at=datetime(2026, 5, 2, tzinfo=UTC), player="b")
    convert(alice, campaign, at=datetime(2026, 5, 3, tzinfo=UTC), player="c")
    may = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 5, 1), period_end=date(2026, 5, 31)
        ).pk
    )
    assert may.payouts.get().amount == Decimal("40.00")
