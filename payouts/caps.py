"""Caps: what a campaign, or one affiliate on it, may earn in a day, week or month.

The ledger asks ``CapBook.admit`` as it prices each new accrual, after the affiliate's FTD turn
(``ledger.AccrualMemo.lock``). Each cap's period has a counter row (``CapUsage``) that is locked
until the commit, so however many workers accrue at once a cap is never passed: the second
worker reads the first one's count. A batch locks all its rows at once, in (cap, period) order,
before it counts anything; a conversion priced on its own locks its few rows as it goes (a
deadlock between two such is PostgreSQL's to detect, and the worker's batch runs again).

Past a cap (``Cap.Action``):
- ``hold``: the conversion is held for review (pending, reason ``over_cap``); its entry is
  pending at the full amount, paid only if a manager approves it;
- ``unpaid``: the conversion stays credited (reports count it) and its entry is zero;
- ``fallback``: as ``unpaid``, and new clicks go to the campaign's fallback URL until the
  period ends (``attribution.clicks.targets`` reads ``CapUsage.reached_at``).
A payout cap pays what room is left (the last accrual is cut down to it) unless its action is
``hold``. Where several caps apply, whichever is reached stops the conversion; "pay nothing"
beats "hold". A conversion a manager decided (reason ``manager``) is not counted again.

A slot is taken when the accrual is made and not given back if the conversion is later
rejected: a cap errs towards paying less than the budget, never more.
"""

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from affiliates import notify
from affiliates.models import NoticeKind
from attribution.models import Conversion, Reason

from . import fx
from .models import Cap, CapUsage
from .money import quantize, quantize_down

Action = Cap.Action


# What happens past a cap, in the words the offers page and the notifications use.
PAST_IT = {
    Action.HOLD: "conversions past it wait for a manager's review",
    Action.UNPAID: "conversions past it are not paid",
    Action.FALLBACK: "conversions past it are not paid and links send visitors elsewhere",
}


def period_of(cap: Cap, moment: datetime) -> tuple[date, datetime]:
    """The first day (in the cap's time zone) and the end of the cap period holding ``moment``."""
    zone = zoneinfo.ZoneInfo(cap.time_zone)
    day = moment.astimezone(zone).date()
    if cap.period == Cap.Period.WEEK:
        start = day - timedelta(days=day.weekday())
        following = start + timedelta(days=7)
    elif cap.period == Cap.Period.MONTH:
        start = day.replace(day=1)
        following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        start, following = day, day + timedelta(days=1)
    return start, datetime.combine(following, datetime.min.time(), zone)


def with_current_usage(caps: QuerySet[Cap]) -> QuerySet[Cap]:
    """``caps`` with the counter of the period they are in now (``current_usage``), read in
    one query for all of them."""
    current = CapUsage.objects.filter(ends_at__gt=timezone.now()).order_by("period_start")
    return caps.prefetch_related(Prefetch("usages", current, to_attr="current_usages"))


def current_usage(cap: Cap) -> CapUsage | None:
    """The counter of ``cap``'s current period (None: nothing counted in it yet)."""
    return next(iter(cap.current_usages), None)


@dataclass
class Verdict:
    """What a cap check allows: ``amount`` to pay (plan currency), or the action that stops it."""

    amount: Decimal
    action: str = ""  # "" when nothing stopped it (it may still be cut down: ``why`` says)
    why: str = ""


class CapBook:
    """The caps a batch of accruals meets, their locked counters, and what was counted."""

    def __init__(self) -> None:
        self._caps: dict[int, list[Cap]] = {}  # campaign id -> its active caps
        self._usage: dict[tuple[int, date], CapUsage] = {}
        self._dirty: dict[int, CapUsage] = {}
        self._reached: list[tuple[Cap, CapUsage]] = []  # reached by this transaction

    def prefetch(self, conversions: list[Conversion]) -> None:
        campaigns = {c.campaign_id for c in conversions if c.campaign_id} - set(self._caps)
        if not campaigns:
            return
        for campaign_id in campaigns:
            self._caps[campaign_id] = []
        for cap in Cap.objects.filter(campaign_id__in=campaigns, is_active=True):
            self._caps[cap.campaign_id].append(cap)

    def _applying(self, conversion: Conversion, *, paying: bool) -> list[Cap]:
        if conversion.campaign_id not in self._caps:
            self.prefetch([conversion])
        return [
            cap
            for cap in self._caps.get(conversion.campaign_id, ())
            if cap.affiliate_id in (None, conversion.affiliate_id)
            and (
                cap.conversion_type == conversion.type
                if cap.metric == Cap.Metric.CONVERSIONS
                else paying
            )
        ]

    def lock(self, conversions: list[Conversion]) -> None:
        """Lock the counters every conversion here may count on, in (cap, period) order."""
        wanted: dict[tuple[int, date], datetime] = {}
        for conversion in conversions:
            if conversion.reason == Reason.MANAGER:
                continue
            # Whether a payout cap counts is known only once priced: lock it either way.
            for cap in self._applying(conversion, paying=True):
                start, ends_at = period_of(cap, conversion.occurred_at)
                if (cap.pk, start) not in self._usage:
                    wanted[cap.pk, start] = ends_at
        if not wanted:
            return
        self._lock(wanted)
        missing = {key: ends_at for key, ends_at in wanted.items() if key not in self._usage}
        if missing:
            # The period's first conversion: make its row (another worker may be making it
            # too: one insert wins, the other finds it), then lock it like the others.
            CapUsage.objects.bulk_create(
                [CapUsage(cap_id=c, period_start=s, ends_at=e) for (c, s), e in missing.items()],
                ignore_conflicts=True,
            )
            self._lock(missing)

    def _lock(self, keys: Iterable[tuple[int, date]]) -> None:
        match = Q()
        for cap_id, start in keys:
            match |= Q(cap_id=cap_id, period_start=start)
        rows = CapUsage.objects.select_for_update().filter(match).order_by("cap_id", "period_start")
        for usage in rows:
            self._usage[usage.cap_id, usage.period_start] = usage

    def admit(self, conversion: Conversion, amount: Decimal | None, currency: str) -> Verdict:
        """Count ``conversion`` (priced at ``amount`` in ``currency``; None: no CPA) on its caps."""
        pay = amount if amount is not None else Decimal(0)
        if conversion.reason == Reason.MANAGER:
            return Verdict(pay)
        caps = self._applying(conversion, paying=pay > 0)
        if not caps:
            return Verdict(pay)
        self.lock([conversion])
        usages = [
            (cap, self._usage[cap.pk, period_of(cap, conversion.occurred_at)[0]]) for cap in caps
        ]
        rates = {
            cap.pk: fx.rate(currency, cap.currency, conversion.occurred_at.date())
            for cap in caps
            if cap.metric == Cap.Metric.PAYOUT
        }
        stopped: Cap | None = None
        cut_by: set[int] = set()
        for cap, usage in usages:
            full = False
            if cap.metric == Cap.Metric.CONVERSIONS:
                full = usage.conversions >= cap.limit
            elif pay * rates[cap.pk] > cap.limit - usage.amount:
                room = quantize_down((cap.limit - usage.amount) / rates[cap.pk], currency)
                full = cap.action == Action.HOLD or room <= 0
                if not full:
                    pay = min(pay, room)
                    cut_by.add(cap.pk)
            if full and (stopped is None or stopped.action == Action.HOLD):
                stopped = cap
        if stopped is not None:
            what = "held for review" if stopped.action == Action.HOLD else "not paid"
            return Verdict(
                amount=pay if stopped.action == Action.HOLD else Decimal(0),
                action=stopped.action,
                why=f"past the cap ({stopped.describe()}): {what}",
            )
        now = timezone.now()
        for cap, usage in usages:
            if cap.metric == Cap.Metric.CONVERSIONS:
                usage.conversions += 1
                reached = usage.conversions >= cap.limit
            else:
                usage.amount += quantize(pay * rates[cap.pk], cap.currency)
                reached = usage.amount >= cap.limit or cap.pk in cut_by
            if reached and usage.reached_at is None:
                usage.reached_at = now
                self._reached.append((cap, usage))
            self._dirty[usage.pk] = usage
        why = ""
        if cut_by:
            caps_cut = "; ".join(cap.describe() for cap, _ in usages if cap.pk in cut_by)
            why = f"cut to the room left under the cap ({caps_cut})"
        return Verdict(pay, why=why)

    def flush(self) -> None:
        """Write the counters this transaction moved (still under their locks), and tell of the
        caps it reached."""
        if self._dirty:
            CapUsage.objects.bulk_update(
                list(self._dirty.values()), ["conversions", "amount", "reached_at"]
            )
            self._dirty.clear()
        for cap, usage in self._reached:
            cap_reached_tell(cap, usage)
        self._reached.clear()


def cap_reached_tell(cap: Cap, usage: CapUsage) -> None:
    """Once a period, as a cap is reached: the managers hear of it, and the affiliate too when
    the cap is theirs (an offer-wide cap shows on every affiliate's offers page instead)."""
    ends = timezone.localtime(usage.ends_at, zoneinfo.ZoneInfo(cap.time_zone))
    until = f"until {ends:%Y-%m-%d %H:%M} ({cap.time_zone})"
    campaign = cap.campaign.name
    what = cap.describe().rsplit(" for ", 1)[0]
    whom = cap.affiliate.name if cap.affiliate_id else "the whole offer"
    notify.notify(
        users=notify.managers(),
        kind=NoticeKind.CAP_REACHED,
        title=f"Cap reached: {campaign}, {what} for {whom}",
        body=f"{PAST_IT[cap.action].capitalize()} {until}.",
        url=reverse("admin:payouts_cap_change", args=[cap.pk]),
    )
    if cap.affiliate_id:
        notify.notify(
            users=[cap.affiliate.user],
            kind=NoticeKind.CAP_REACHED,
            title=f"Your cap on {campaign} is reached",
            body=f"{cap.describe()}: {PAST_IT[cap.action]} {until}.",
            url=reverse("affiliate-offers"),
        )
