"""Keeping the dashboards' rollups: increments as conversions change, recomputes for clicks.

Every write here happens inside the transaction that changes the conversion (or advances the
click watermark), so a crash leaves rollups and raw rows in step; ``rebuild`` recomputes any range
from the raw rows and gives the same figures.

A rollup row is shared by every conversion of its affiliate, campaign and hour, so two workers
often add to the same rows, and each holds the rows it wrote until it commits. Inside
``deferred()`` (the worker's batches) the increments are summed in memory and written when the
block ends, the last thing before the commit, in one statement a table: the rows are held for
milliseconds instead of the whole batch. Every statement writes its rows in key order, so two
transactions meet on them in the same order and cannot deadlock.
"""

import threading
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from affiliates.models import Affiliate
from attribution.models import (
    Click,
    Conversion,
    ConversionType,
    DailyRollup,
    FillState,
    HourlyRollup,
    SubRollup,
)
from attribution.models.rollups import (
    COUNTERS,
    DAILY_DIMENSIONS,
    DIMENSIONS,
    MONEY_COUNTERS,
    SUB_DIMENSIONS,
)
from payouts.models import LedgerEntry

SUBS = ("sub1", "sub2", "sub3", "sub4", "sub5")

COUNTED = (Conversion.Status.APPROVED, Conversion.Status.PENDING)
# (bucket, affiliate_id, campaign_id, channel, platform, country, currency), then for daily rows
# sub_affiliate_id, for sub id rows sub and value.
Key = tuple
KEYS = {DailyRollup: DAILY_DIMENSIONS, HourlyRollup: DIMENSIONS, SubRollup: SUB_DIMENSIONS}


@lru_cache(maxsize=4096)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_day(moment: datetime, time_zone: str) -> date:
    return moment.astimezone(_zone(time_zone)).date()


def utc_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def conversion_counters(conversion: Conversion) -> dict[str, Any]:
    """What one conversion adds to its rollup row, by its type and status."""
    if conversion.status == Conversion.Status.REJECTED:
        return {"rejected": 1}
    if conversion.status not in COUNTED:
        return {}
    amount = conversion.revenue or Decimal(0)
    kind = conversion.type
    if kind == ConversionType.INSTALL:
        return {"installs": 1}
    if kind == ConversionType.REGISTRATION:
        return {"registrations": 1}
    if kind == ConversionType.FTD:
        return {"ftds": 1, "deposits": 1, "deposit_amount": amount}
    if kind == ConversionType.DEPOSIT:
        return {"deposits": 1, "deposit_amount": amount}
    if kind in (ConversionType.PURCHASE, ConversionType.CUSTOM):
        return {"revenue": amount} if amount else {}
    return {}


def conversion_dimensions(conversion: Conversion) -> tuple:
    platform = "skan" if conversion.method == "skan" else conversion.platform
    return (
        conversion.affiliate_id or 0,
        conversion.campaign_id or 0,
        conversion.channel,
        platform,
        conversion.country or "",
        conversion.currency if conversion.revenue is not None else "",
    )


def _time_zone_of(affiliate_id: int | None) -> str:
    if not affiliate_id:
        return "UTC"
    return (
        Affiliate.objects.filter(pk=affiliate_id).values_list("time_zone", flat=True).first()
        or "UTC"
    )


def _upsert(model: type, bucket_field: str, rows: dict[Key, dict[str, Any]], *, add: bool) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE: add to the counters, or set them."""
    if not rows:
        return
    dimensions = KEYS[model]
    known = [f.name for f in model._meta.fields if f.name in COUNTERS]
    counters = sorted({c for values in rows.values() for c in values})
    columns = [bucket_field, *dimensions, *counters]
    defaults = [c for c in known if c not in counters]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    updates = ", ".join(
        f"{quote(c)} = {table}.{quote(c)} + EXCLUDED.{quote(c)}"
        if add
        else f"{quote(c)} = EXCLUDED.{quote(c)}"
        for c in counters
    )
    width = len(columns) + len(defaults)
    one = f"({', '.join(['%s'] * width)})"

    def sql(count: int) -> str:
        return (
            f"INSERT INTO {table} ({', '.join(quote(c) for c in [*columns, *defaults])}) "  # noqa: S608
            f"VALUES {', '.join([one] * count)} "
            f"ON CONFLICT ({', '.join(quote(c) for c in [bucket_field, *dimensions])}) "
            f"DO UPDATE SET {updates}"
        )

    adapt = (
        connection.ops.adapt_datefield_value
        if bucket_field == "day"
        else connection.ops.adapt_datetimefield_value
    )
    params = []
    # Key order: concurrent upserts lock shared rows in one order (no deadlock between them).
    for key, values in sorted(rows.items(), key=lambda item: item[0]):
        money = [
            connection.ops.adapt_decimalfield_value(values.get(c, 0), 20, 6)
            if c in MONEY_COUNTERS
            else values.get(c, 0)
            for c in counters
        ]
        params.append([adapt(key[0]), *key[1:], *money, *([0] * len(defaults))])
    # Many rows a statement (each key once, as ON CONFLICT DO UPDATE requires), within the
    # database's limit on parameters.
    per_statement = max(1, min(500, (connection.features.max_query_params or 30000) // width))
    with connection.cursor() as cursor:
        for start in range(0, len(params), per_statement):
            chunk = params[start : start + per_statement]
            cursor.execute(sql(len(chunk)), [value for row in chunk for value in row])


_held = threading.local()


@contextmanager
def deferred() -> Iterator[None]:
    """Sum the conversion increments made inside the block; write them when it ends.

    Use it inside the transaction (it must end before the commit): on an exception, or when
    the transaction is marked for rollback, nothing is written, as the rollback would undo it.
    Nested blocks write with the outermost one.
    """
    if getattr(_held, "tables", None) is not None:
        yield
        return
    _held.tables = {DailyRollup: {}, HourlyRollup: {}, SubRollup: {}}
    try:
        yield
        tables = _held.tables
    finally:
        _held.tables = None
    if connection.in_atomic_block and transaction.get_rollback():
        return  # the block's transaction is to roll back (a dry run): nothing to write
    for model, rows in tables.items():
        _upsert(model, "hour" if model is HourlyRollup else "day", rows, add=True)


def _increment(model: type, rows: dict[Key, dict[str, Any]]) -> None:
    """Add ``rows`` to the rollup table now, or to the ``deferred()`` block's sums."""
    held = getattr(_held, "tables", None)
    if held is None:
        _upsert(model, "hour" if model is HourlyRollup else "day", rows, add=True)
        return
    sums = held[model]
    for key, values in rows.items():
        # Every key is written, even one whose increments cancel out: the rows are the same
        # as the one-at-a-time path's.
        _add(sums.setdefault(key, {}), values)


def conversion_apply(
    conversion: Conversion, *, sign: int = 1, time_zone: str | None = None
) -> None:
    """Add (sign=1) or take back (sign=-1) one conversion's counters in its rollup rows."""
    counters = conversion_counters(conversion)
    if not counters:
        return
    tz = time_zone or _time_zone_of(conversion.affiliate_id)
    dims = conversion_dimensions(conversion)
    values = {name: value * sign for name, value in counters.items()}
    day = local_day(conversion.occurred_at, tz)
    _increment(DailyRollup, {(day, *dims, 0): values})
    _increment(HourlyRollup, {(utc_hour(conversion.occurred_at), *dims): values})
    if conversion.affiliate_id and conversion.click_id:
        _increment(
            SubRollup,
            {
                (day, *dims, n, value): values
                for n, value in enumerate(_subs_of(conversion), start=1)
                if value
            },
        )


def _subs_of(conversion: Conversion) -> tuple[str, ...]:
    """The sub ids of the conversion's click: the loaded click's, else read."""
    if not conversion.click_id:
        return ()
    if Conversion.click.is_cached(conversion) and conversion.click is not None:
        return tuple(getattr(conversion.click, sub) for sub in SUBS)
    return Click.objects.filter(pk=conversion.click_id).values_list(*SUBS).first() or ()


def conversions_add(conversions: Iterable[Conversion]) -> None:
    """``conversion_apply`` for many new conversions at once: one upsert per rollup table.

    Each conversion's affiliate (for its time zone) and click (for its sub ids) must be loaded.
    """
    conversions = list(conversions)
    zones = {c.affiliate_id: c.affiliate.time_zone or "UTC" for c in conversions if c.affiliate_id}
    daily, hourly, subs = _conversion_rows(conversions, zones)
    _increment(DailyRollup, daily)
    _increment(HourlyRollup, hourly)
    _increment(SubRollup, subs)


# --- commission: the ledger's amounts, where their conversions are counted ----------------------

Kind, EntryStatus = LedgerEntry.Kind, LedgerEntry.Status


@dataclass(frozen=True)
class Earning:
    """One ledger entry as the rollups count it: in its beneficiary's rows, on its conversion's
    local day and dimensions (a periodic entry: its month's last day, no dimensions)."""

    beneficiary_id: int
    time_zone: str
    amount: Decimal
    currency: str
    # A sub-affiliate share (or its reversal): whose earnings it is a share of; 0: one's own.
    sub_affiliate_id: int
    dimensions: tuple | None  # (occurred_at, campaign_id, channel, platform, country)
    subs: tuple[str, ...] = ()
    period: date | None = None


def month_end(period: date) -> date:
    return (period.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _earning_rows(earnings: Iterable[Earning], sign: int = 1) -> tuple[dict, dict]:
    daily: dict[Key, dict[str, Any]] = defaultdict(dict)
    subs: dict[Key, dict[str, Any]] = defaultdict(dict)
    for earning in earnings:
        column = "sub_commission" if earning.sub_affiliate_id else "commission"
        values = {column: earning.amount * sign}
        if earning.dimensions is None:
            if earning.period is None:
                continue
            dims = (earning.beneficiary_id, 0, "", "", "", earning.currency)
            _add(daily[(month_end(earning.period), *dims, earning.sub_affiliate_id)], values)
            continue
        occurred_at, campaign_id, channel, platform, country = earning.dimensions
        day = local_day(occurred_at, earning.time_zone)
        dims = (earning.beneficiary_id, campaign_id, channel, platform, country, earning.currency)
        _add(daily[(day, *dims, earning.sub_affiliate_id)], values)
        for n, value in enumerate(earning.subs, start=1):
            if value:
                _add(subs[(day, *dims, n, value)], values)
    return daily, subs


def _shared_from(entry: LedgerEntry) -> int:
    """The sub-affiliate whose earnings ``entry`` shares (or reverses a share of); 0: none."""
    source = entry.source_entry if entry.kind == Kind.REVERSAL else entry
    if source is None or source.kind != Kind.SUBAFFILIATE or source.source_entry_id is None:
        return 0
    return source.source_entry.beneficiary_id


def _earning(entry: LedgerEntry, conversion: Conversion | None) -> Earning:
    if LedgerEntry.beneficiary.is_cached(entry):
        time_zone = entry.beneficiary.time_zone or "UTC"
    else:
        time_zone = _time_zone_of(entry.beneficiary_id)
    dimensions, subs = None, ()
    if conversion is not None:
        _, campaign_id, channel, platform, country, _ = conversion_dimensions(conversion)
        dimensions = (conversion.occurred_at, campaign_id, channel, platform, country)
        subs = _subs_of(conversion)
    return Earning(
        beneficiary_id=entry.beneficiary_id,
        time_zone=time_zone,
        amount=entry.amount,
        currency=entry.currency,
        sub_affiliate_id=_shared_from(entry),
        dimensions=dimensions,
        subs=subs,
        period=entry.period,
    )


def commission_apply(
    entries: Iterable[LedgerEntry], *, sign: int = 1, conversion: Conversion | None = None
) -> None:
    """Count ledger entries' amounts (sign=1: written, or back from void) in their
    beneficiaries' rollup rows, or take them back (sign=-1: voided).

    Called by the ledger in the transaction that writes the entries. ``conversion``, when
    given, is the one every entry belongs to, as it is now (a reattribution moves its entries'
    amounts from its old dimensions to its new ones).
    """
    earnings = []
    for entry in entries:
        of = conversion
        if of is None and entry.conversion_id is not None:
            of = entry.conversion
        earnings.append(_earning(entry, of))
    daily, subs = _earning_rows(earnings, sign)
    _increment(DailyRollup, daily)
    _increment(SubRollup, subs)


def conversion_commission(conversion: Conversion, *, sign: int) -> None:
    """Take back (-1) or count again (1) what the ledger holds for ``conversion`` at its
    dimensions as they are now: around a change of its campaign, click, platform or country."""
    entries = (
        LedgerEntry.objects.filter(conversion_id=conversion.pk)
        .exclude(status=EntryStatus.VOID)
        .select_related("beneficiary", "source_entry__source_entry")
    )
    commission_apply(entries, sign=sign, conversion=conversion)


EARNING_FIELDS = (
    "beneficiary_id",
    "beneficiary__time_zone",
    "amount",
    "currency",
    "kind",
    "period",
    "source_entry__kind",
    "source_entry__beneficiary_id",
    "source_entry__source_entry__beneficiary_id",
    "conversion__occurred_at",
    "conversion__campaign_id",
    "conversion__channel",
    "conversion__platform",
    "conversion__method",
    "conversion__country",
    *(f"conversion__click__{sub}" for sub in SUBS),
)


def _earnings_of(entries) -> Iterator[Earning]:
    """Earnings of a queryset of ledger entries, read in one query (the rebuild's)."""
    for row in entries.values_list(*EARNING_FIELDS).iterator(chunk_size=5000):
        (beneficiary_id, time_zone, amount, currency, kind, period, source_kind, source_owner,
         source_source_owner, occurred_at, campaign_id, channel, platform, method, country,
         *subs) = row  # fmt: skip
        shared = 0
        if kind == Kind.SUBAFFILIATE:
            shared = source_owner or 0
        elif kind == Kind.REVERSAL and source_kind == Kind.SUBAFFILIATE:
            shared = source_source_owner or 0
        dimensions = None
        if occurred_at is not None:
            platform = "skan" if method == "skan" else platform
            dimensions = (occurred_at, campaign_id or 0, channel, platform, country or "")
        yield Earning(
            beneficiary_id=beneficiary_id,
            time_zone=time_zone or "UTC",
            amount=amount,
            currency=currency,
            sub_affiliate_id=shared,
            dimensions=dimensions,
            subs=tuple(value or "" for value in subs),
            period=period,
        )


# --- clicks: recomputed per touched bucket ------------------------------------------------------


def click_rows(clicks: Iterable[tuple], zones: dict[int, str]) -> tuple[dict, dict, dict]:
    """Aggregate clicks (CLICK_FIELDS) into daily, hourly and per-sub-id rows."""
    daily: dict[Key, list] = defaultdict(lambda: [0, set(), 0])
    hourly: dict[Key, list] = defaultdict(lambda: [0, set(), 0])
    subs: dict[Key, dict[str, int]] = defaultdict(lambda: {"clicks": 0})
    for affiliate_id, campaign_id, platform, country, created_at, ip, *values in clicks:
        channel = "web" if platform == "web" else "mobile"
        dims = (affiliate_id, campaign_id, channel, platform, country or "", "")
        day = local_day(created_at, zones.get(affiliate_id, "UTC"))
        for n, value in enumerate(values, start=1):
            if value:
                subs[(day, *dims, n, value)]["clicks"] += 1
        for table, key in (
            (daily, (day, *dims, 0)),
            (hourly, (utc_hour(created_at), *dims)),
        ):
            entry = table[key]
            entry[0] += 1
            if ip:
                entry[1].add(ip)
            else:
                entry[2] += 1  # no address: each counts as unique
    return (
        {k: {"clicks": v[0], "unique_clicks": len(v[1]) + v[2]} for k, v in daily.items()},
        {k: {"clicks": v[0], "unique_clicks": len(v[1]) + v[2]} for k, v in hourly.items()},
        dict(subs),
    )


def _zones(affiliate_ids: Iterable[int]) -> dict[int, str]:
    return dict(Affiliate.objects.filter(pk__in=set(affiliate_ids)).values_list("id", "time_zone"))


CLICK_FIELDS = ("affiliate_id", "campaign_id", "platform", "country", "created_at", "ip", *SUBS)


def click_watermark(*, lock: bool = False) -> int:
    """The last click id the click counters cover: those above it are read live by reports."""
    states = FillState.objects.filter(name="clicks")
    if lock:
        states = states.select_for_update()
    return states.values_list("last_id", flat=True).first() or 0


def _recompute_clicks(buckets: set[tuple[int, date]], zones: dict[int, str], upto: int) -> None:
    """Recompute the click counters of whole (affiliate, local day) buckets from raw clicks,
    those up to the watermark ``upto``.

    The read is widened to whole UTC hours, so the hourly rows it touches are complete too
    (local days of half-hour zones do not start on the hour).
    """
    by_affiliate: dict[int, list[date]] = defaultdict(list)
    for affiliate_id, day in buckets:
        by_affiliate[affiliate_id].append(day)
    for affiliate_id, days in by_affiliate.items():
        zone = _zone(zones.get(affiliate_id, "UTC"))
        first, last = min(days), max(days)
        start = utc_hour(datetime.combine(first, datetime.min.time(), zone))
        end = utc_hour(datetime.combine(last + timedelta(days=1), datetime.min.time(), zone))
        end += timedelta(hours=1)
        clicks = Click.objects.filter(
            affiliate_id=affiliate_id, created_at__gte=start, created_at__lt=end, pk__lte=upto
        ).values_list(*CLICK_FIELDS)
        daily, hourly, subs = click_rows(clicks.iterator(chunk_size=5000), zones)
        daily = {k: v for k, v in daily.items() if first <= k[0] <= last}
        subs = {k: v for k, v in subs.items() if first <= k[0] <= last}
        _upsert(DailyRollup, "day", daily, add=False)
        _upsert(HourlyRollup, "hour", hourly, add=False)
        _upsert(SubRollup, "day", subs, add=False)


def clicks_fill(*, settle: timedelta = timedelta(seconds=5), batch: int = 50_000) -> int:
    """Bring the click counters up to date with clicks inserted since the last fill.

    Clicks are insert-only, so a watermark on their id finds what is new; ``settle`` leaves the
    last seconds alone so that an insert still committing is not stepped over. The counters
    cover exactly the clicks up to the watermark: the reports count the ones above it live, so
    a click shows at once. Returns how many new clicks were read.
    """
    with transaction.atomic():
        state, _ = FillState.objects.select_for_update().get_or_create(name="clicks")
        cutoff = timezone.now() - settle
        new = list(
            Click.objects.filter(pk__gt=state.last_id, created_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", "affiliate_id", "created_at")[:batch]
        )
        if not new:
            return 0
        zones = _zones(a for _, a, _ in new)
        buckets = {(a, local_day(at, zones.get(a, "UTC"))) for _, a, at in new}
        _recompute_clicks(buckets, zones, new[-1][0])
        state.last_id = new[-1][0]
        state.save(update_fields=["last_id", "updated_at"])
    return len(new)


# --- rebuild ----------------------------------------------------------------------------------

CONVERSION_FIELDS = (
    "affiliate_id",
    "campaign_id",
    "channel",
    "platform",
    "country",
    "currency",
    "revenue",
    "type",
    "status",
    "method",
    "occurred_at",
    "click_id",
    *(f"click__{sub}" for sub in SUBS),
)


def _add(entry: dict[str, Any], counters: dict[str, Any]) -> None:
    for name, value in counters.items():
        entry[name] = entry.get(name, 0) + value


def _conversion_rows(conversions: Iterable[Conversion], zones: dict[int, str]) -> tuple:
    daily: dict[Key, dict[str, Any]] = defaultdict(dict)
    hourly: dict[Key, dict[str, Any]] = defaultdict(dict)
    subs: dict[Key, dict[str, Any]] = defaultdict(dict)
    for conversion in conversions:
        counters = conversion_counters(conversion)
        if not counters:
            continue
        tz = zones.get(conversion.affiliate_id, "UTC")
        dims = conversion_dimensions(conversion)
        day = local_day(conversion.occurred_at, tz)
        _add(daily[(day, *dims, 0)], counters)
        _add(hourly[(utc_hour(conversion.occurred_at), *dims)], counters)
        if conversion.affiliate_id and conversion.click_id:
            click = conversion.click
            for n, sub in enumerate(SUBS, start=1):
                value = getattr(click, sub)
                if value:
                    _add(subs[(day, *dims, n, value)], counters)
    return daily, hourly, subs


def _merge(*tables: dict[Key, dict[str, Any]], lo: Any, hi: Any) -> dict[Key, dict[str, Any]]:
    """The rows of ``tables`` whose bucket lies in [lo, hi), counters of one key merged."""
    merged: dict[Key, dict[str, Any]] = {}
    for table in tables:
        for key, values in table.items():
            if lo <= key[0] < hi:
                merged.setdefault(key, {}).update(values)
    return merged


def _days(since: date, until: date) -> Iterator[date]:
    day = since
    while day <= until:
        yield day
        day += timedelta(days=1)


def rebuild(*, since: date, until: date, progress=None) -> dict[str, int]:
    """Recompute every rollup row for the days ``since``..``until`` from clicks and conversions.

    Daily rows are local days of each affiliate, hourly rows UTC hours of the same dates. Works a
    day at a time, each in its own transaction; ``progress(1)`` is called after each day.
    """
    totals = {"days": 0, "clicks": 0}
    zones = dict(Affiliate.objects.values_list("id", "time_zone"))
    for day in _days(since, until):
        utc_start = datetime.combine(day, datetime.min.time(), UTC)
        utc_end = utc_start + timedelta(days=1)
        # Every time zone's local day lies within 14 hours either side of the UTC day.
        start, end = utc_start - timedelta(hours=14), utc_end + timedelta(hours=14)
        with transaction.atomic():
            # The click counters cover the clicks up to the fill's watermark (reports read the
            # rest live); the lock keeps a fill from moving it meanwhile.
            upto = click_watermark(lock=True)
            DailyRollup.objects.filter(day=day).delete()
            HourlyRollup.objects.filter(hour__gte=utc_start, hour__lt=utc_end).delete()
            SubRollup.objects.filter(day=day).delete()
            clicks = Click.objects.filter(created_at__gte=start, created_at__lt=end, pk__lte=upto)
            click_daily, click_hourly, click_subs = click_rows(
                clicks.values_list(*CLICK_FIELDS).iterator(chunk_size=5000), zones
            )
            conversions = Conversion.objects.filter(
                occurred_at__gte=start, occurred_at__lt=end
            ).select_related("click")
            conv_daily, conv_hourly, conv_subs = _conversion_rows(
                conversions.only(*CONVERSION_FIELDS).iterator(chunk_size=5000), zones
            )
            live = LedgerEntry.objects.exclude(status=EntryStatus.VOID)
            earned = live.filter(
                conversion__occurred_at__gte=start, conversion__occurred_at__lt=end
            )
            if day == month_end(day):
                periodic = live.filter(conversion__isnull=True, period=day.replace(day=1))
                earned = earned | periodic
            money_daily, money_subs = _earning_rows(_earnings_of(earned))
            next_day = day + timedelta(days=1)
            daily = _merge(click_daily, conv_daily, money_daily, lo=day, hi=next_day)
            hourly = _merge(click_hourly, conv_hourly, lo=utc_start, hi=utc_end)
            subs = _merge(click_subs, conv_subs, money_subs, lo=day, hi=next_day)
            _upsert(DailyRollup, "day", daily, add=False)
            _upsert(HourlyRollup, "hour", hourly, add=False)
            _upsert(SubRollup, "day", subs, add=False)
        totals["days"] += 1
        totals["clicks"] += sum(v.get("clicks", 0) for v in daily.values())
        if progress:
            progress(1)
    return totals
