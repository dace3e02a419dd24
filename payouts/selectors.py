import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet

from affiliates import profile
from affiliates.models import Affiliate
from affiliates.permissions import is_manager

from .models import LedgerEntry, Payout, PayoutRun


def payout_for_viewer(*, payout_id: int, user: AbstractBaseUser) -> Payout | None:
    payouts = Payout.objects.select_related("affiliate", "run")
    if not is_manager(user):
        payouts = payouts.filter(affiliate__user=user)
    return payouts.filter(pk=payout_id).first()


def statement_lines(*, payout: Payout) -> QuerySet[LedgerEntry]:
    return (
        payout.lines.select_related("conversion__campaign")
        .only(
            "id",
            "kind",
            "amount",
            "currency",
            "original_amount",
            "original_currency",
            "fx_rate",
            "note",
            "created_at",
            "period",
            "conversion__id",
            "conversion__type",
            "conversion__occurred_at",
            "conversion__campaign__name",
        )
        .order_by("created_at", "pk")
    )


@dataclass
class Carried:
    """An affiliate's balance this run did not pay, and why."""

    affiliate: Affiliate
    currency: str
    amount: Decimal
    why: str


@dataclass
class RunSummary:
    run: PayoutRun
    payouts: list[Payout]
    totals: dict[str, Decimal]  # per currency, payouts not cancelled
    counts: dict[str, int]
    carried: list[Carried] = field(default_factory=list)

    @property
    def below_minimum(self) -> list[Carried]:
        return [c for c in self.carried if c.why == BELOW_MINIMUM]


BELOW_MINIMUM = "below the affiliate's minimum payout"
HELD_FOR_PAYMENT_DETAILS = "held: new payment details wait for a manager's confirmation"


def run_summary(*, run: PayoutRun) -> RunSummary:
    """A run's payouts with totals per currency, and the balances it carried forward: under the
    affiliate's minimum, negative (a reversal after payment), or on hold past the period."""
    payouts = list(
        run.payouts.select_related("affiliate")
        .annotate(lines_count=Count("lines"))
        .order_by("currency", "-amount", "affiliate_id")
    )
    totals: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    for payout in payouts:
        if payout.status != Payout.Status.CANCELLED:
            totals[payout.currency] += payout.amount
            counts[payout.currency] += 1
    summary = RunSummary(run=run, payouts=payouts, totals=dict(totals), counts=dict(counts))
    if run.status in (PayoutRun.Status.RUNNING, PayoutRun.Status.CANCELLED):
        return summary
    paid = {(p.affiliate_id, p.currency) for p in payouts}
    open_entries = (
        LedgerEntry.objects.filter(status=LedgerEntry.Status.APPROVED, payout__isnull=True)
        .values("beneficiary_id", "currency", "available_at", "amount")
        .order_by()
    )
    due: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    held: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    affiliates = {
        a.pk: a
        for a in Affiliate.objects.filter(pk__in=open_entries.values("beneficiary_id")).only(
            "id", "name", "time_zone", "minimum_payout"
        )
    }
    cutoffs: dict[str, datetime] = {}
    for row in open_entries.iterator(chunk_size=2000):
        affiliate = affiliates[row["beneficiary_id"]]
        zone = affiliate.time_zone
        if zone not in cutoffs:
            start = datetime.combine(run.period_end + timedelta(days=1), datetime.min.time())
            cutoffs[zone] = start.replace(tzinfo=zoneinfo.ZoneInfo(zone))
        key = (affiliate.pk, row["currency"])
        if key in paid:
            continue
        if row["available_at"] < cutoffs[zone]:
            due[key] += row["amount"]
        else:
            held[key] += row["amount"]
    waiting = set(profile.held_affiliates().values_list("affiliate_id", flat=True))
    for (affiliate_id, currency), amount in sorted(due.items()):
        affiliate = affiliates[affiliate_id]
        if affiliate_id in waiting and amount > 0:
            why = HELD_FOR_PAYMENT_DETAILS
        elif amount < 0:
            why = "negative: a reversal after payment, netted by later runs"
        elif 0 < amount < affiliate.minimum_payout:
            why = BELOW_MINIMUM
        elif amount > 0:
            why = "approved after the run was worked out: the next run pays it"
        else:
            continue
        summary.carried.append(Carried(affiliate, currency, amount, why))
    for (affiliate_id, currency), amount in sorted(held.items()):
        if amount:
            summary.carried.append(
                Carried(affiliates[affiliate_id], currency, amount, "on hold past the period")
            )
    return summary
