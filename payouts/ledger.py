"""The commission ledger: what each conversion and each RevShare month owes, exactly once.

``ledger_sync`` reconciles the ledger with a conversion's current state (accrued, approved,
voided before payment, reversed after it, moved to another affiliate) and is idempotent: the
entries' unique keys make a second accrual impossible. RevShare and retroactive tiers are worked
out when a month is closed.
"""

import logging
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import OperationalError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from affiliates.models import Affiliate
from affiliates.services import Actor, audit_bulk, audit_record
from attribution.models import RULE_REASONS, Conversion, ConversionType, Reason
from attribution.rollups import keep
from portal.lib.bulk import insert_many

from . import caps, cohort_facts, fx, ngr, plans
from .models import (
    CommissionPlan,
    LedgerEntry,
    NgrStatement,
    PlanAssignment,
    PlanVersion,
    RevShareStatement,
)
from .money import percent_of, quantize

logger = logging.getLogger(__name__)
Kind, Status = LedgerEntry.Kind, LedgerEntry.Status
LIVE = (Status.PENDING, Status.APPROVED, Status.PAID)
ACCRUING = (Conversion.Status.APPROVED, Conversion.Status.PENDING)
REVENUE_TYPES = {
    ConversionType.FTD: "deposits",
    ConversionType.DEPOSIT: "deposits",
    ConversionType.WITHDRAWAL: "withdrawals",
    ConversionType.BONUS: "bonuses",
    ConversionType.CHARGEBACK: "chargebacks",
}
# The first key of the (int, int) advisory locks that make one affiliate's FTD accruals take
# turns; the second is the affiliate's id. ("ftd " in ASCII; a key space of its own.)
FTD_LOCK_SPACE = 0x66746420


def month_start(moment: datetime, time_zone: str) -> date:
    return moment.astimezone(zoneinfo.ZoneInfo(time_zone)).date().replace(day=1)


def month_bounds(first: date, time_zone: str) -> tuple[datetime, datetime]:
    zone = zoneinfo.ZoneInfo(time_zone)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (
        datetime.combine(first, datetime.min.time(), zone),
        datetime.combine(following, datetime.min.time(), zone),
    )


def _set_status(entry: LedgerEntry, status: str, *, actor: Actor = None, note: str = "") -> None:
    if entry.status == status:
        return
    old = entry.status
    entry.status = status
    entry.save(update_fields=["status"])
    if (old == Status.VOID) != (status == Status.VOID):
        # The dashboards' commission counters follow, in this transaction.
        keep.commission_apply([entry], sign=1 if old == Status.VOID else -1)
    audit_record(obj=entry, field="status", old=old, new=status, actor=actor, note=note)


def _entry(
    *,
    key: str,
    beneficiary: Affiliate,
    kind: str,
    original_amount: Decimal,
    original_currency: str,
    day: date,
    status: str,
    available_at: datetime,
    conversion: Conversion | None = None,
    period: date | None = None,
    source_entry: LedgerEntry | None = None,
    plan_version: PlanVersion | None = None,
    note: str = "",
) -> LedgerEntry:
    """Write one entry in the beneficiary's currency, the FX rate of ``day`` frozen on it."""
    rate = fx.rate(original_currency, beneficiary.currency, day)
    entry = LedgerEntry.objects.create(
        key=key,
        beneficiary=beneficiary,
        kind=kind,
        conversion=conversion,
        period=period,
        source_entry=source_entry,
        plan_version=plan_version,
        amount=quantize(original_amount * rate, beneficiary.currency),
        currency=beneficiary.currency,
        original_amount=original_amount,
        original_currency=original_currency,
        fx_rate=rate,
        status=status,
        available_at=available_at,
        note=note[:300],
    )
    keep.commission_apply([entry])
    audit_record(obj=entry, field="status", old="", new=status, actor=None, note="accrued")
    return entry


def _generation(conversion: Conversion, kind: str, beneficiary_id: int) -> int:
    return LedgerEntry.objects.filter(
        conversion=conversion, kind=kind, beneficiary_id=beneficiary_id
    ).count()


def _ancestors(affiliate: Affiliate, levels: int) -> list[Affiliate]:
    chain, seen, current = [], {affiliate.pk}, affiliate
    while len(chain) < levels and current.parent_id and current.parent_id not in seen:
        current = Affiliate.objects.get(pk=current.parent_id)
        seen.add(current.pk)
        chain.append(current)
    return chain


def _subaffiliate_shares(entry: LedgerEntry, version: PlanVersion | None) -> None:
    """Parents' (and grandparents') percent of a sub-affiliate's commission."""
    if version is None or not version.subaffiliate_percents or entry.original_amount == 0:
        return
    percents = [Decimal(str(p)) for p in version.subaffiliate_percents]
    for level, (parent, percent) in enumerate(
        zip(_ancestors(entry.beneficiary, len(percents)), percents, strict=False), start=1
    ):
        share = percent_of(entry.original_amount, percent)
        if not share:
            continue
        _entry(
            key=f"sub:e{entry.pk}:a{parent.pk}",
            beneficiary=parent,
            kind=Kind.SUBAFFILIATE,
            original_amount=share,
            original_currency=entry.original_currency,
            day=entry.created_at.date(),
            status=entry.status,
            available_at=entry.available_at,
            conversion=entry.conversion,
            period=entry.period,
            source_entry=entry,
            plan_version=version,
            note=f"level {level}: {percent}% of {entry.beneficiary.name}'s {entry.kind}",
        )


def _undo(entry: LedgerEntry, *, actor: Actor, why: str) -> None:
    """Take back a live entry: void it while unpaid, reverse it with a new entry once paid."""
    for derived in entry.derived.filter(kind=Kind.SUBAFFILIATE, status__in=LIVE):
        _undo(derived, actor=actor, why=why)
    if entry.payout_id is None and entry.status != Status.PAID:
        _set_status(entry, Status.VOID, actor=actor, note=why)
        return
    if entry.derived.filter(kind=Kind.REVERSAL).exists():
        return
    now = timezone.now()
    reversal = LedgerEntry.objects.create(
        key=f"rev:e{entry.pk}",
        beneficiary_id=entry.beneficiary_id,
        kind=Kind.REVERSAL,
        conversion=entry.conversion,
        period=entry.period,
        source_entry=entry,
        plan_version=entry.plan_version,
        amount=-entry.amount,
        currency=entry.currency,
        original_amount=-entry.original_amount,
        original_currency=entry.original_currency,
        fx_rate=entry.fx_rate,  # the rate it was paid at: the reversal takes back exactly that
        status=Status.APPROVED,
        # Payable as early as what it undoes: the next run, whatever period it covers, nets it.
        available_at=min(now, entry.available_at),
        note=why[:300],
    )
    keep.commission_apply([reversal])
    audit_record(obj=reversal, field="status", old="", new=Status.APPROVED, actor=actor, note=why)


def _live_entries(conversion: Conversion) -> list[LedgerEntry]:
    return list(
        LedgerEntry.objects.select_related("beneficiary")
        .filter(conversion=conversion, kind=Kind.CPA, status__in=LIVE)
        .exclude(derived__kind=Kind.REVERSAL)
        .order_by("pk")
    )


def _ordinal(conversion: Conversion, plan: CommissionPlan, time_zone: str) -> int:
    """This FTD's place among the affiliate's qualified FTDs of its month under the plan."""
    start, end = month_bounds(month_start(conversion.occurred_at, time_zone), time_zone)
    earlier = (
        LedgerEntry.objects.filter(
            beneficiary_id=conversion.affiliate_id,
            kind=Kind.CPA,
            plan_version__plan=plan,
            conversion__type=ConversionType.FTD,
            conversion__occurred_at__gte=start,
            conversion__occurred_at__lt=end,
            status__in=LIVE,
        )
        .exclude(derived__kind=Kind.REVERSAL)
        .count()
    )
    return earlier + 1


def _accrue(conversion: Conversion) -> LedgerEntry | None:
    memo = AccrualMemo()
    accrual = _price(
        conversion, memo, generation=_generation(conversion, Kind.CPA, conversion.affiliate_id)
    )
    if accrual is not None:
        _write_accruals([accrual])
    caps_follow(memo)
    return accrual.entry if accrual is not None else None


def caps_follow(memo: "AccrualMemo") -> None:
    """Write the caps' counters; mark the conversions a cap stopped (held, or not paid).

    Their rollups were counted as they were decided: a held conversion leaves the approved
    counters for the pending ones, with an audit row saying which cap held it.
    """
    memo.caps.flush()
    for conversion, verdict in memo.capped:
        if not verdict.action:
            continue  # cut down to the room left: credited and paid, the entry's note says so
        status = conversion.status
        if verdict.action == caps.Action.HOLD:
            status = Conversion.Status.PENDING
        old = f"{conversion.status}/{conversion.reason}"
        # A fraud rule's hold stands with its own code (the manager reviewing it must see which
        # rule, and a rejection records it); the cap is added to what the detail says.
        reason, detail = Reason.OVER_CAP, verdict.why
        if conversion.reason in RULE_REASONS:
            reason = conversion.reason
            detail = f"{conversion.detail}; {verdict.why}" if conversion.detail else verdict.why
        moved = status != conversion.status
        if moved:
            keep.conversion_apply(conversion, sign=-1)
        conversion.status, conversion.reason = status, reason
        conversion.detail = detail[:500]
        conversion.save(update_fields=["status", "reason", "detail", "updated_at"])
        if moved:
            keep.conversion_apply(conversion, sign=1)
        audit_record(
            obj=conversion,
            field="status",
            old=old,
            new=f"{status}/{reason}",
            actor=None,
            note=verdict.why,
        )


def ledger_sync(*, conversion: Conversion, actor: Actor = None) -> None:
    """Make the ledger hold what ``conversion`` earns now; mark it synced. Idempotent.

    Runs inside the transaction that changed the conversion. Raises fx.FxRateMissing when a
    rate is missing; the conversion then stays unsynced for the sweep to retry.
    """
    cohort_facts.mark_keys_stale([conversion.player_key])
    payable = (
        conversion.is_winner
        and conversion.status in ACCRUING
        and conversion.affiliate_id is not None
    )
    live = _live_entries(conversion)
    for entry in live:
        if not payable or entry.beneficiary_id != conversion.affiliate_id:
            why = (
                f"conversion {conversion.status}/{conversion.reason}"
                if not payable
                else f"conversion moved to affiliate {conversion.affiliate_id}"
            )
            _undo(entry, actor=actor, why=why)
    if payable:
        mine = [e for e in live if e.beneficiary_id == conversion.affiliate_id]
        wanted = (
            Status.APPROVED if conversion.status == Conversion.Status.APPROVED else Status.PENDING
        )
        if not mine:
            _accrue(conversion)
        for entry in mine:
            if entry.status in (Status.PENDING, Status.APPROVED) and entry.status != wanted:
                _set_status(entry, wanted, actor=actor, note=f"conversion {conversion.status}")
                for derived in entry.derived.filter(kind=Kind.SUBAFFILIATE, status__in=LIVE):
                    _set_status(derived, wanted, actor=actor, note="follows its source")
    Conversion.objects.filter(pk=conversion.pk).update(ledger_synced=True)
    conversion.ledger_synced = True


class OutOfTurn(OperationalError):
    """An affiliate's FTD turn is held elsewhere and cannot be waited for without risking a
    deadlock: roll back, ``wait_turns``, and run the transaction again."""

    def __init__(self, affiliate_ids: list[int]) -> None:
        super().__init__(f"FTD turn of affiliates {affiliate_ids} held by another transaction")
        self.affiliate_ids = affiliate_ids


def wait_turns(affiliate_ids: list[int]) -> None:
    """Wait, holding nothing else, until no other transaction has these affiliates' turns."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            _take_turns(sorted(affiliate_ids))


def _take_turns(affiliate_ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(objid::bigint), 0) FROM pg_locks WHERE locktype = 'advisory'"
            " AND pid = pg_backend_pid() AND classid = %s::bigint AND objsubid = 2",
            [FTD_LOCK_SPACE],
        )
        highest = cursor.fetchone()[0]
        early = [a for a in affiliate_ids if a < highest]
        if early:
            cursor.execute(
                "SELECT a FROM unnest(%s::int[]) AS a WHERE NOT pg_try_advisory_xact_lock(%s, a)",
                [early, FTD_LOCK_SPACE],
            )
            if busy := [row[0] for row in cursor.fetchall()]:
                raise OutOfTurn(busy)
        if late := [a for a in affiliate_ids if a >= highest]:
            # unnest keeps the array's (sorted) order, and the locks are taken in that order.
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(%s, a)) FROM unnest(%s::int[]) AS a",
                [FTD_LOCK_SPACE, late],
            )


class AccrualMemo:
    """What a batch of new conversions' accruals share: plans, versions, parents, FTD counts."""

    def __init__(self) -> None:
        self._plans: dict[tuple[int, int | None], CommissionPlan | None] = {}
        self._versions: dict[int, list[PlanVersion]] = {}
        self._ancestors: dict[tuple[int, int], list[Affiliate]] = {}
        self._ftds: dict[tuple[int, int, date], int] = {}
        self._locked: set[int] = set()
        self.caps = caps.CapBook()
        # Conversions a cap stopped or cut, with what it said: ``caps_follow`` marks them.
        self.capped: list[tuple[Conversion, caps.Verdict]] = []

    def prefetch(self, conversions: list[Conversion]) -> None:
        self.caps.prefetch(conversions)
        campaigns = {c.campaign_id for c in conversions if c.campaign_id}
        assigned: dict[int, dict[int | None, CommissionPlan]] = defaultdict(dict)
        for a in PlanAssignment.objects.select_related("plan").filter(campaign_id__in=campaigns):
            assigned[a.campaign_id][a.affiliate_id] = a.plan
        for c in conversions:
            if c.affiliate_id and c.campaign_id:
                mine = assigned.get(c.campaign_id, {})
                plan = mine.get(c.affiliate_id) or mine.get(None)
                self._plans[c.affiliate_id, c.campaign_id] = plan
        plan_ids = {p.pk for p in self._plans.values() if p is not None}
        versions = (
            PlanVersion.objects.filter(plan_id__in=plan_ids)
            .select_related("plan")
            .prefetch_related("cpa_rules", "tiers")
            .order_by("-valid_from")
        )
        for version in versions:
            self._versions.setdefault(version.plan_id, []).append(version)
        for plan_id in plan_ids:
            self._versions.setdefault(plan_id, [])

    def plan_for(self, conversion: Conversion) -> CommissionPlan | None:
        key = (conversion.affiliate_id, conversion.campaign_id)
        if key not in self._plans:
            self._plans[key] = plans.plan_for(
                affiliate_id=conversion.affiliate_id, campaign_id=conversion.campaign_id
            )
        return self._plans[key]

    def version_at(self, plan: CommissionPlan, moment: datetime) -> PlanVersion | None:
        if plan.pk not in self._versions:
            return plans.version_at(plan, moment)
        return next((v for v in self._versions[plan.pk] if v.valid_from <= moment), None)

    def ancestors(self, affiliate: Affiliate, levels: int) -> list[Affiliate]:
        key = (affiliate.pk, levels)
        if key not in self._ancestors:
            self._ancestors[key] = _ancestors(affiliate, levels)
        return self._ancestors[key]

    def lock(self, affiliate_ids: set[int]) -> None:
        """Take these affiliates' turn at FTD counting, held until the commit.

        A transaction-scoped advisory lock, not a lock on the affiliate's row: every insert of a
        row that refers to the affiliate (a conversion, a ledger entry) checks its foreign key
        with a share lock on that row, and would queue behind the other transaction's whole
        remainder. (SQLite has one writer at a time anyway.)

        Turns are taken in id order, so that two transactions cannot wait for each other: one
        that already holds a higher id (a worker's batch accrues in several steps) only tries
        for a lower one, and raises ``OutOfTurn`` when another holds it.
        """
        wanted = sorted(affiliate_ids - self._locked)
        if wanted and connection.vendor == "postgresql":
            _take_turns(wanted)
        self._locked.update(wanted)

    def ordinal(self, conversion: Conversion, plan: CommissionPlan, time_zone: str) -> int:
        key = (conversion.affiliate_id, plan.pk, month_start(conversion.occurred_at, time_zone))
        if key not in self._ftds:
            self._ftds[key] = _ordinal(conversion, plan, time_zone) - 1
        self._ftds[key] += 1
        return self._ftds[key]


@dataclass
class _Accrual:
    entry: LedgerEntry
    shares: list[tuple[Affiliate, Decimal, Decimal, str]]  # parent, share, rate, note


def _price(conversion: Conversion, memo: AccrualMemo, *, generation: int = 0) -> _Accrual | None:
    """The CPA entry (and parents' shares) a conversion earns, unsaved; FxRateMissing if unpriced.

    ``generation`` numbers the conversion's accruals to this affiliate (0 for a new one).
    """
    affiliate = conversion.affiliate
    plan = memo.plan_for(conversion)
    if plan is None:
        return None
    version = memo.version_at(plan, conversion.occurred_at)
    if version is None:
        return None
    rule = plans.cpa_rule(version, conversion)
    amount, note = None, ""
    if rule is not None:
        ordinal = 1
        if rule.conversion_type == ConversionType.FTD:
            # FTDs are counted per affiliate and month: one affiliate's accruals take turns.
            memo.lock({affiliate.pk})
            ordinal = memo.ordinal(conversion, plan, affiliate.time_zone)
        amount, note = plans.cpa_amount(version, rule, ordinal)
    # Every rate before the caps count it: a missing one leaves the conversion to the sweep,
    # and what is counted must be what is accrued.
    day = conversion.occurred_at.date()
    rate = fx.rate(plan.currency, affiliate.currency, day) if rule is not None else Decimal(1)
    parents: list[tuple[Affiliate, Decimal, Decimal]] = []
    if rule is not None and version.subaffiliate_percents:
        percents = [Decimal(str(p)) for p in version.subaffiliate_percents]
        today = timezone.now().date()  # the day the source entry is created, as _entry prices it
        for parent, percent in zip(
            memo.ancestors(affiliate, len(percents)), percents, strict=False
        ):
            parent_rate = fx.rate(plan.currency, parent.currency, today) if percent else rate
            parents.append((parent, percent, parent_rate))
    # The caps count after the FTD turn, whether or not the plan pays CPA on this conversion.
    verdict = memo.caps.admit(conversion, amount, plan.currency)
    if verdict.action or verdict.why:
        memo.capped.append((conversion, verdict))
    if rule is None:
        return None
    amount = verdict.amount
    if verdict.why:
        note = f"{verdict.why}. {note}"
    status = Status.APPROVED if conversion.status == Conversion.Status.APPROVED else Status.PENDING
    if verdict.action == caps.Action.HOLD:
        status = Status.PENDING
    entry = LedgerEntry(
        key=f"cpa:c{conversion.pk}:a{affiliate.pk}:g{generation}",
        beneficiary=affiliate,
        kind=Kind.CPA,
        conversion=conversion,
        plan_version=version,
        amount=quantize(amount * rate, affiliate.currency),
        currency=affiliate.currency,
        original_amount=amount,
        original_currency=plan.currency,
        fx_rate=rate,
        status=status,
        available_at=conversion.occurred_at + timedelta(days=plan.hold_days),
        note=note[:300],
    )
    shares = []
    if amount != 0:
        for level, (parent, percent, parent_rate) in enumerate(parents, start=1):
            share = percent_of(amount, percent)
            if share:
                why = f"level {level}: {percent}% of {affiliate.name}'s {Kind.CPA}"
                shares.append((parent, share, parent_rate, why))
    return _Accrual(entry, shares)


def _write_accruals(accruals: list[_Accrual]) -> None:
    """Insert priced entries, then their parents' shares, each with its audit row."""
    entries = [a.entry for a in accruals]
    insert_many(entries)
    derived = [
        LedgerEntry(
            key=f"sub:e{a.entry.pk}:a{parent.pk}",
            beneficiary=parent,
            kind=Kind.SUBAFFILIATE,
            conversion=a.entry.conversion,
            source_entry=a.entry,
            plan_version=a.entry.plan_version,
            amount=quantize(share * rate, parent.currency),
            currency=parent.currency,
            original_amount=share,
            original_currency=a.entry.original_currency,
            fx_rate=rate,
            status=a.entry.status,
            available_at=a.entry.available_at,
            note=why[:300],
        )
        for a in accruals
        for parent, share, rate, why in a.shares
    ]
    insert_many(derived)
    keep.commission_apply([*entries, *derived])
    audit_bulk([e for e in (*entries, *derived)], field="status", old="", new=None, note="accrued")


def accrue_new(conversions: list[Conversion]) -> list[int]:
    """Accrue a batch of just-inserted conversions; returns the ids now in sync with the ledger.

    The same entries ``ledger_sync`` writes for a new conversion, in a few statements: plans,
    versions and rates are read once for the batch, the entries and their audit rows are inserted
    in bulk. A conversion whose FX rate is missing is left unsynced for the ledger sweep.
    """
    cohort_facts.mark_keys_stale(c.player_key for c in conversions)
    memo = AccrualMemo()
    payable = [
        c
        for c in conversions
        if c.is_winner and c.status in ACCRUING and c.affiliate_id is not None
    ]
    payable_ids = {c.pk for c in payable}
    synced = [c.pk for c in conversions if c.pk not in payable_ids]
    accruals: list[_Accrual] = []
    with fx.memoized():
        memo.prefetch(payable)
        # All of the batch's FTD turns at once, in order, before any is counted; then the
        # caps' counters, in theirs.
        memo.lock({c.affiliate_id for c in payable if c.type == ConversionType.FTD})
        memo.caps.lock(payable)
        for conversion in payable:
            try:
                accrual = _price(conversion, memo)
            except fx.FxRateMissing as exc:
                logger.warning("ledger waits for an FX rate conversion=%s: %s", conversion.pk, exc)
                continue
            synced.append(conversion.pk)
            if accrual is not None:
                accruals.append(accrual)
    _write_accruals(accruals)
    caps_follow(memo)
    if synced:
        Conversion.objects.filter(pk__in=synced).update(ledger_synced=True)
    return synced


def ledger_sweep(*, limit: int = 1000) -> int:
    """Sync conversions whose ledger is behind (new, changed, or waiting for an FX rate)."""
    ids = list(
        Conversion.objects.filter(ledger_synced=False)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )
    synced = 0
    for pk in ids:
        try:
            with transaction.atomic():
                conversion = (
                    Conversion.objects.select_for_update(of=("self",))
                    .select_related("affiliate")
                    .get(pk=pk)
                )
                if not conversion.ledger_synced:
                    ledger_sync(conversion=conversion)
                    synced += 1
        except fx.FxRateMissing as exc:
            logger.warning("ledger sync waits for an FX rate conversion=%s: %s", pk, exc)
    return synced


# --- closing a month: RevShare and retroactive tiers -----------------------------------------


@dataclass
class MonthTotals:
    deposits: Decimal = Decimal(0)
    withdrawals: Decimal = Decimal(0)
    bonuses: Decimal = Decimal(0)
    chargebacks: Decimal = Decimal(0)


def _revenue_by_affiliate_plan(period: date) -> dict[tuple[int, int], MonthTotals]:
    """Each affiliate's players' money movements of the month, per plan, in the plan currency."""
    totals: dict[tuple[int, int], MonthTotals] = defaultdict(MonthTotals)
    # Wide enough for every time zone; each row is then kept only for its affiliate's month.
    start = datetime.combine(period, datetime.min.time(), zoneinfo.ZoneInfo("UTC"))
    start -= timedelta(hours=14)
    end = month_bounds(period, "UTC")[1] + timedelta(hours=14)
    rows = (
        Conversion.objects.filter(
            occurred_at__gte=start,
            occurred_at__lt=end,
            type__in=list(REVENUE_TYPES),
            status=Conversion.Status.APPROVED,
            is_winner=True,
            affiliate__isnull=False,
            revenue__isnull=False,
        )
        .select_related("affiliate")
        .only(
            "type",
            "revenue",
            "currency",
            "occurred_at",
            "campaign_id",
            "affiliate__id",
            "affiliate__time_zone",
        )
    )
    plan_cache: dict[tuple[int, int | None], CommissionPlan | None] = {}
    for conversion in rows.iterator(chunk_size=2000):
        if month_start(conversion.occurred_at, conversion.affiliate.time_zone) != period:
            continue
        cache_key = (conversion.affiliate_id, conversion.campaign_id)
        if cache_key not in plan_cache:
            plan_cache[cache_key] = plans.plan_for(
                affiliate_id=conversion.affiliate_id, campaign_id=conversion.campaign_id
            )
        plan = plan_cache[cache_key]
        if plan is None:
            continue
        rate = fx.rate(conversion.currency or plan.currency, plan.currency, conversion.occurred_at)
        bucket = totals[(conversion.affiliate_id, plan.pk)]
        field = REVENUE_TYPES[conversion.type]
        setattr(bucket, field, getattr(bucket, field) + abs(conversion.revenue) * rate)
    return totals


def _previous_period(period: date) -> date:
    return (period - timedelta(days=1)).replace(day=1)


def _revshare_percent(version: PlanVersion, affiliate_id: int, period: date, tz: str) -> Decimal:
    tiers = [t for t in version.tiers.all() if t.revshare_percent is not None]
    if not tiers:
        return version.revshare_percent
    start, end = month_bounds(period, tz)
    ftds = Conversion.objects.filter(
        affiliate_id=affiliate_id,
        type=ConversionType.FTD,
        status=Conversion.Status.APPROVED,
        is_winner=True,
        occurred_at__gte=start,
        occurred_at__lt=end,
    ).count()
    tier = plans.tier_for(version, ftds)
    return (
        tier.revshare_percent
        if tier and tier.revshare_percent is not None
        else (version.revshare_percent)
    )


def revshare_close(*, period: date) -> int:
    """Work out every affiliate's RevShare for the month starting ``period``; returns entries made.

    Net revenue = deposits - withdrawals - bonuses - chargebacks - fees (the plan's admin fee on
    deposits). A negative result is carried into the next month when the plan says so, else
    reset. Idempotent: a month already closed for an affiliate and plan is left as it is.
    """
    made = 0
    revenue = _revenue_by_affiliate_plan(period)
    for (affiliate_id, plan_id), money in sorted(revenue.items()):
        made += _close_one(affiliate_id, plan_id, period, money)
    # Affiliates who carry a negative balance but had no revenue this month still roll it on.
    carriers = RevShareStatement.objects.filter(
        period=_previous_period(period), carried_out__lt=0
    ).values_list("affiliate_id", "plan_id")
    for affiliate_id, plan_id in carriers:
        if (affiliate_id, plan_id) not in revenue:
            made += _close_one(affiliate_id, plan_id, period, MonthTotals())
    return made


def _close_one(affiliate_id: int, plan_id: int, period: date, money: MonthTotals) -> int:
    with transaction.atomic():
        affiliate = Affiliate.objects.select_for_update().get(pk=affiliate_id)
        plan = CommissionPlan.objects.get(pk=plan_id)
        if RevShareStatement.objects.filter(affiliate=affiliate, plan=plan, period=period).exists():
            return 0
        _, end = month_bounds(period, affiliate.time_zone)
        version = plans.version_at(plan, end - timedelta(microseconds=1))
        if version is None or version.revshare_basis == "ngr":
            return 0  # an NGR plan's RevShare comes from player activity: ngr_close
        percent = _revshare_percent(version, affiliate_id, period, affiliate.time_zone)
        fees = percent_of(money.deposits, version.admin_fee_percent)
        net = money.deposits - money.withdrawals - money.bonuses - money.chargebacks - fees
        previous = RevShareStatement.objects.filter(
            affiliate=affiliate, plan=plan, period=_previous_period(period)
        ).first()
        carried_in = previous.carried_out if previous and plan.negative_carryover else Decimal(0)
        basis = net + carried_in
        commission = (
            quantize(percent_of(basis, percent), plan.currency) if basis > 0 else Decimal(0)
        )
        statement = RevShareStatement.objects.create(
            affiliate=affiliate,
            plan=plan,
            period=period,
            deposits=quantize(money.deposits, plan.currency),
            withdrawals=quantize(money.withdrawals, plan.currency),
            bonuses=quantize(money.bonuses, plan.currency),
            chargebacks=quantize(money.chargebacks, plan.currency),
            fees=quantize(fees, plan.currency),
            net_revenue=quantize(net, plan.currency),
            carried_in=carried_in,
            percent=percent,
            commission=commission,
            carried_out=quantize(basis, plan.currency)
            if basis < 0 and plan.negative_carryover
            else Decimal(0),
        )
        if commission <= 0:
            return 0
        entry = _entry(
            key=f"revshare:a{affiliate.pk}:p{plan.pk}:m{period:%Y-%m}",
            beneficiary=affiliate,
            kind=Kind.REVSHARE,
            original_amount=commission,
            original_currency=plan.currency,
            day=(end - timedelta(days=1)).date(),
            status=Status.APPROVED,
            available_at=end,
            period=period,
            plan_version=version,
            note=f"{percent}% of {statement.net_revenue + carried_in} {plan.currency}",
        )
        statement.entry = entry
        statement.save(update_fields=["entry"])
        _subaffiliate_shares(entry, version)
        return 1


def tiers_close(*, period: date) -> int:
    """Top up a retroactive plan's FTDs of the month to the tier the month reached."""
    made = 0
    versions = PlanVersion.objects.filter(tier_mode=PlanVersion.TierMode.RETROACTIVE)
    entries = (
        LedgerEntry.objects.filter(
            kind=Kind.CPA,
            plan_version__in=versions,
            conversion__type=ConversionType.FTD,
            status__in=LIVE,
        )
        .exclude(derived__kind=Kind.REVERSAL)
        .select_related("beneficiary", "conversion", "plan_version__plan")
    )
    groups: dict[tuple[int, int], list[LedgerEntry]] = defaultdict(list)
    for entry in entries.iterator(chunk_size=2000):
        tz = entry.beneficiary.time_zone
        if month_start(entry.conversion.occurred_at, tz) == period:
            groups[(entry.beneficiary_id, entry.plan_version.plan_id)].append(entry)
    for (affiliate_id, plan_id), month in sorted(groups.items()):
        made += _top_up(affiliate_id, plan_id, period, month)
    return made


def _top_up(affiliate_id: int, plan_id: int, period: date, month: list[LedgerEntry]) -> int:
    key = f"tier:a{affiliate_id}:p{plan_id}:m{period:%Y-%m}"
    if LedgerEntry.objects.filter(key=key).exists():
        return 0
    month.sort(key=lambda e: (e.conversion.occurred_at, e.pk))
    version = month[-1].plan_version
    final = plans.tier_for(version, len(month))
    if final is None or final.cpa_amount is None:
        return 0
    owed = sum(
        (final.cpa_amount - e.original_amount for e in month[version.baseline_ftds :]),
        Decimal(0),
    )
    if owed <= 0:
        return 0
    affiliate = month[-1].beneficiary
    _, end = month_bounds(period, affiliate.time_zone)
    with transaction.atomic():
        entry = _entry(
            key=key,
            beneficiary=affiliate,
            kind=Kind.ADJUSTMENT,
            original_amount=owed,
            original_currency=version.plan.currency,
            day=(end - timedelta(days=1)).date(),
            status=Status.APPROVED,
            available_at=max(e.available_at for e in month),
            period=period,
            plan_version=version,
            note=f"retroactive tier from FTD {final.from_ftds}: {len(month)} FTDs this month",
        )
        _subaffiliate_shares(entry, version)
    return 1


class MonthOpen(ValueError):
    """The month is not over everywhere yet; the message says when it will be."""


# The last time zone to finish a day is UTC-12: a month is over everywhere 12 hours after it
# ends in UTC.
LAST_ZONE_BEHIND_UTC = timedelta(hours=12)


def month_over_at(period: date) -> datetime:
    """When the month of ``period`` has ended in every time zone."""
    following = (period.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime.combine(following, datetime.min.time(), UTC) + LAST_ZONE_BEHIND_UTC


def month_close(*, period: date) -> dict[str, int]:
    """Close a month: retroactive tiers, then RevShare (deposits, then NGR). Safe to run again.

    Refuses (``MonthOpen``) a month still in progress somewhere: its RevShare would be booked on
    part of its revenue, and a second close changes nothing.
    """
    period = period.replace(day=1)
    over_at = month_over_at(period)
    if timezone.now() < over_at:
        raise MonthOpen(
            f"{period:%Y-%m} is not over yet: it can be closed from {over_at:%Y-%m-%d %H:%M} UTC"
        )
    return {
        "tiers": tiers_close(period=period),
        "revshare": revshare_close(period=period),
        "ngr": ngr_close(period=period),
    }


# --- RevShare on NGR: the operator's player activity ------------------------------------------


def ngr_close(*, period: date) -> int:
    """Work out RevShare on NGR for the month starting ``period``; returns statements made.

    For each affiliate and NGR plan, the months from its players' first activity through this
    one are worked out again from the activity as it stands (``payouts.ngr``): this month's
    commission is one entry, and whatever the earlier months now come to beyond what their
    statements already credited (activity revised or sent late, a player attributed since) is
    one adjustment entry in this month. A closed or paid month is never rewritten. Idempotent:
    a month already closed for an affiliate and plan is left as it is.
    """
    until = ngr.next_month(period)
    made = 0
    found = ngr.ngr_by_affiliate_plan(until=until)
    for key in sorted(found):  # affiliate order: the row locks are taken in it
        made += _ngr_close_one(found[key], period)
    return made


def _ngr_close_one(mine: ngr.Ledgerable, period: date) -> int:
    plan = mine.plan
    with transaction.atomic():
        affiliate = Affiliate.objects.select_for_update().get(pk=mine.affiliate_id)
        done = NgrStatement.objects.filter(affiliate=affiliate, plan=plan)
        if done.filter(period__gte=period).exists():
            # Closed, or a later month is: what this one holds went into that one's adjustment.
            return 0
        versions = ngr.Versions()
        ftds = ngr.ftd_months(affiliate.pk, min(mine.months), ngr.next_month(period))

        def percent(month: date, product: str, month_ngr: Decimal) -> Decimal:
            version = versions.ngr_version(plan, month)
            if version is None:
                return Decimal(0)
            return ngr.version_percent(version, product, month_ngr, ftds.get(month, 0))

        months = ngr.chain(
            {m: p for m, p in mine.months.items() if m <= period},
            through=period,
            currency=plan.currency,
            carry=plan.negative_carryover,
            percent=percent,
        )
        if not months:
            return 0
        this = months[-1]
        owed = sum((m.commission for m in months[:-1]), Decimal(0))
        credited = done.filter(period__lt=period).aggregate(
            c=Sum("commission"), a=Sum("adjustment")
        )
        adjustment = owed - (credited["c"] or 0) - (credited["a"] or 0)
        if this.month != period or (not this.products and not adjustment):
            return 0
        version = versions.ngr_version(plan, period)
        statement = NgrStatement.objects.create(
            affiliate=affiliate,
            plan=plan,
            period=period,
            products=_ngr_products(this, plan.currency),
            ngr=quantize(this.ngr, plan.currency),
            commission=this.commission,
            adjustment=adjustment,
        )
        _, end = month_bounds(period, "UTC")
        last_day = (end - timedelta(days=1)).date()
        fields = []
        if this.commission > 0:
            statement.entry = _entry(
                key=f"ngr:a{affiliate.pk}:p{plan.pk}:m{period:%Y-%m}",
                beneficiary=affiliate,
                kind=Kind.REVSHARE,
                original_amount=this.commission,
                original_currency=plan.currency,
                day=last_day,
                status=Status.APPROVED,
                available_at=end,
                period=period,
                plan_version=version,
                note=f"RevShare on NGR {quantize(this.ngr, plan.currency)} {plan.currency}",
            )
            _subaffiliate_shares(statement.entry, version)
            fields.append("entry")
        if adjustment:
            statement.adjustment_entry = _entry(
                key=f"ngr-adj:a{affiliate.pk}:p{plan.pk}:m{period:%Y-%m}",
                beneficiary=affiliate,
                kind=Kind.ADJUSTMENT,
                original_amount=adjustment,
                original_currency=plan.currency,
                day=last_day,
                status=Status.APPROVED,
                available_at=end,
                period=period,
                plan_version=version,
                note="RevShare on NGR of earlier months: activity revised or sent since",
            )
            _subaffiliate_shares(statement.adjustment_entry, version)
            fields.append("adjustment_entry")
        if fields:
            statement.save(update_fields=fields)
        return 1


def _ngr_products(month: ngr.MonthResult, currency: str) -> dict[str, dict[str, str]]:
    shown = {}
    for product, result in month.products.items():
        part = month.parts.get(product, ngr.ProductMonth())
        money = {
            name: str(quantize(getattr(part, name), currency))
            for name in ("ggr", "bonuses", "chargebacks", "taxes", "fees", "admin_fee", "ngr")
        }
        shown[product] = {
            **money,
            "carried_in": str(quantize(result.carried_in, currency)),
            "percent": str(result.percent),
            "commission": str(result.commission),
            "carried_out": str(result.carried_out),
        }
    return shown


def balance(affiliate_id: int) -> Decimal:
    """Everything the ledger holds for the affiliate that is not void."""
    total = LedgerEntry.objects.filter(beneficiary_id=affiliate_id, status__in=LIVE).aggregate(
        total=Sum("amount")
    )["total"]
    return total or Decimal(0)
