"""Reads for dashboards, exports and the stats API: rollups, in the viewer's time zone and
currency, mobile (iOS, Android, SKAN aggregated) beside web. One query per table, whatever the
number of rows."""

import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from affiliates.models import Campaign
from attribution.models import Conversion, DailyRollup, SubRollup
from payouts import fx
from payouts.models import LedgerEntry

COLUMNS = ("ios", "android", "skan", "web")
COLUMN_LABELS = {"ios": "iOS", "android": "Android", "skan": "SKAN (aggregated)", "web": "Web"}
COUNTS = ("clicks", "unique_clicks", "installs", "registrations", "ftds", "deposits", "rejected")
MONEY = ("deposit_amount", "revenue")
METRICS = (*COUNTS, *MONEY, "commission")
PRESETS = {
    "today": "Today",
    "yesterday": "Yesterday",
    "last7": "Last 7 days",
    "last30": "Last 30 days",
    "this_month": "This month",
    "last_month": "Last month",
    "custom": "Custom",
}
BREAKDOWNS = ("campaign", "country", "platform", "sub1", "sub2", "sub3", "sub4", "sub5")
MAX_DAYS = 366


class ReportError(ValueError):
    """A period or filter that cannot be reported on; the message says why."""


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    preset: str

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def bounds(self, time_zone: str) -> tuple[datetime, datetime]:
        """The period as instants: local midnight to local midnight after the last day."""
        zone = zoneinfo.ZoneInfo(time_zone)
        return (
            datetime.combine(self.start, datetime.min.time(), zone),
            datetime.combine(self.end + timedelta(days=1), datetime.min.time(), zone),
        )


def period_for(
    preset: str | None,
    *,
    time_zone: str,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> Period:
    """A preset (or custom range) as local days of the viewer's time zone."""
    today = (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(time_zone)).date()
    preset = preset or "last7"
    if preset == "today":
        return Period(today, today, preset)
    if preset == "yesterday":
        return Period(today - timedelta(days=1), today - timedelta(days=1), preset)
    if preset == "last7":
        return Period(today - timedelta(days=6), today, preset)
    if preset == "last30":
        return Period(today - timedelta(days=29), today, preset)
    if preset == "this_month":
        return Period(today.replace(day=1), today, preset)
    if preset == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return Period(last.replace(day=1), last, preset)
    if preset == "custom":
        if start is None or end is None:
            raise ReportError("a custom period needs a start and an end date")
        if end < start:
            raise ReportError(f"the period ends ({end}) before it starts ({start})")
        if (end - start).days >= MAX_DAYS:
            raise ReportError(f"a period is at most {MAX_DAYS} days")
        return Period(start, end, preset)
    raise ReportError(f"unknown period {preset!r}; use one of {', '.join(PRESETS)}")


@dataclass(frozen=True)
class Filters:
    campaign_id: int | None = None
    country: str = ""
    platform: str = ""  # ios, android, skan, web
    channel: str = ""  # mobile, web

    def q(self) -> Q:
        q = Q()
        if self.campaign_id:
            q &= Q(campaign_id=self.campaign_id)
        if self.country:
            q &= Q(country=self.country.upper())
        if self.platform:
            q &= Q(platform=self.platform)
        if self.channel:
            q &= Q(channel=self.channel)
        return q


class Converter:
    """Money in the viewer's currency at the period's last rates (one query per currency)."""

    def __init__(self, target: str, day: date) -> None:
        self.target, self.day, self._rates = target, day, {}

    def __call__(self, amount: Decimal, currency: str) -> Decimal:
        if not amount or not currency or currency == self.target:
            return amount or Decimal(0)
        if currency not in self._rates:
            try:
                self._rates[currency] = fx.rate(currency, self.target, self.day)
            except fx.FxRateMissing:
                self._rates[currency] = None
        rate = self._rates[currency]
        return amount * rate if rate is not None else Decimal(0)


@dataclass
class Table:
    """Rows of metrics (and mobile/web columns for the summary), with totals."""

    currency: str
    rows: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, Decimal | None]:
        out: dict[str, Decimal | None] = dict.fromkeys(METRICS, Decimal(0))
        for row in self.rows.values():
            for metric, value in row.items():
                out[metric] = None if value is None or out[metric] is None else out[metric] + value
        return out

    def mobile(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = dict.fromkeys(METRICS, Decimal(0))
        for column in ("ios", "android", "skan"):
            for metric, value in self.rows.get(column, {}).items():
                out[metric] += value
        return out


def _blank() -> dict[str, Decimal]:
    return dict.fromkeys(METRICS, Decimal(0))


def _rollups(affiliate_ids: Iterable[int] | None, period: Period, filters: Filters) -> QuerySet:
    """Rollup rows of the period; ``affiliate_ids`` None means the whole program."""
    rows = DailyRollup.objects.filter(filters.q(), day__gte=period.start, day__lte=period.end)
    return rows if affiliate_ids is None else rows.filter(affiliate_id__in=list(affiliate_ids))


def _sums(queryset: QuerySet, *group: str) -> QuerySet:
    return (
        queryset.values(*group, "currency")
        .annotate(**{f"s_{m}": Sum(m) for m in (*COUNTS, *MONEY)})
        .order_by()
    )


def _fill(row: dict[str, Decimal], values: Mapping, convert: Converter) -> None:
    for metric in COUNTS:
        row[metric] += Decimal(values[f"s_{metric}"] or 0)
    for metric in MONEY:
        row[metric] += convert(values[f"s_{metric}"] or Decimal(0), values["currency"])


def _commission(
    affiliate_ids: list[int], period: Period, time_zone: str, convert: Converter, group: str
) -> dict[str, Decimal]:
    """Commission earned by conversions of the period (CPA, sub-affiliate, reversals), per
    ``group`` (a column or key of the conversion); period-based RevShare goes under "revshare"."""
    start, end = period.bounds(time_zone)
    entries = LedgerEntry.objects.filter(beneficiary_id__in=affiliate_ids).exclude(status="void")
    by_conversion = (
        entries.filter(conversion__occurred_at__gte=start, conversion__occurred_at__lt=end)
        .values(f"conversion__{group}", "conversion__method", "currency")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    out: dict[str, Decimal] = defaultdict(Decimal)
    for row in by_conversion:
        key = row[f"conversion__{group}"]
        if group == "platform" and row["conversion__method"] == "skan":
            key = "skan"
        if key is None:
            key = "0" if group == "campaign_id" else ""
        out[str(key)] += convert(row["total"], row["currency"])
    periodic = (
        entries.filter(
            conversion__isnull=True, period__gte=period.start.replace(day=1), period__lte=period.end
        )
        .values("currency")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    for row in periodic:
        out["revshare"] += convert(row["total"], row["currency"])
    return out


def summary(
    *,
    affiliate_ids: list[int],
    period: Period,
    filters: Filters,
    currency: str,
    time_zone: str,
    with_commission: bool = True,
) -> Table:
    """The KPIs per column: iOS, Android, SKAN (aggregated) and web."""
    convert = Converter(currency, period.end)
    table = Table(currency, {c: _blank() for c in COLUMNS}, dict(COLUMN_LABELS))
    for values in _sums(_rollups(affiliate_ids, period, filters), "platform"):
        _fill(table.rows.setdefault(values["platform"], _blank()), values, convert)
    if with_commission:
        commission = _commission(affiliate_ids, period, time_zone, convert, "platform")
        for column, amount in commission.items():
            if column == "revshare":
                continue
            table.rows.setdefault(column, _blank())["commission"] += amount
        if commission.get("revshare"):
            table.rows["revshare"] = {**_blank(), "commission": commission["revshare"]}
            table.labels["revshare"] = "RevShare (monthly)"
    return table


def daily(
    *,
    affiliate_ids: list[int] | None,
    period: Period,
    filters: Filters,
    currency: str,
    time_zone: str = "",
) -> list[dict]:
    """One row a day: mobile and web side by side (clicks, installs, registrations, FTDs...)."""
    convert = Converter(currency, period.end)
    days = {d: {"mobile": _blank(), "web": _blank()} for d in period.days}
    for values in _sums(_rollups(affiliate_ids, period, filters), "day", "channel"):
        _fill(days[values["day"]][values["channel"]], values, convert)
    if affiliate_ids is not None and time_zone:
        for (day, channel), amount in _commission_by_day(
            affiliate_ids, period, time_zone, convert
        ).items():
            if day in days:
                days[day][channel]["commission"] += amount
    return [{"day": d, **split} for d, split in days.items()]


def _commission_by_day(
    affiliate_ids: list[int], period: Period, time_zone: str, convert: Converter
) -> dict[tuple[date, str], Decimal]:
    """Commission per local day and channel of the conversions behind it."""
    start, end = period.bounds(time_zone)
    zone = zoneinfo.ZoneInfo(time_zone)
    rows = (
        LedgerEntry.objects.filter(
            beneficiary_id__in=affiliate_ids,
            conversion__occurred_at__gte=start,
            conversion__occurred_at__lt=end,
        )
        .exclude(status="void")
        .values_list("conversion__occurred_at", "conversion__channel", "amount", "currency")
    )
    out: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for occurred_at, channel, amount, entry_currency in rows.iterator(chunk_size=5000):
        out[(occurred_at.astimezone(zone).date(), channel)] += convert(amount, entry_currency)
    return out


GROUP_FIELDS = {
    "campaign": "campaign_id",
    "country": "country",
    "platform": "platform",
    **{f"sub{n}": f"click__sub{n}" for n in range(1, 6)},
}


def breakdown(
    *,
    by: str,
    affiliate_ids: list[int],
    period: Period,
    filters: Filters,
    currency: str,
    time_zone: str,
) -> Table:
    """The period's figures by campaign, country, platform or sub id value, commission too.

    Sub ids: unique clicks are not kept per value (None), and a "(no subN)" row holds what no
    value accounts for, so the rows add up to the period's totals.
    """
    if by not in BREAKDOWNS:
        raise ReportError(f"unknown breakdown {by!r}; use one of {', '.join(BREAKDOWNS)}")
    convert = Converter(currency, period.end)
    table = Table(currency)
    if by.startswith("sub"):
        rows = SubRollup.objects.filter(
            affiliate_id__in=affiliate_ids,
            sub=int(by[3]),
            day__gte=period.start,
            day__lte=period.end,
        )
        if filters.campaign_id:
            rows = rows.filter(campaign_id=filters.campaign_id)
        kept = ("clicks", "installs", "registrations", "ftds", "deposits", "rejected", *MONEY)
        sums = (
            rows.values("value", "currency").annotate(**{f"s_{m}": Sum(m) for m in kept}).order_by()
        )
        for values in sums:
            values = {**{f"s_{m}": 0 for m in COUNTS}, **values}
            _fill(table.rows.setdefault(values["value"], _blank()), values, convert)
        overall = _blank()
        for values in _sums(
            _rollups(affiliate_ids, period, Filters(campaign_id=filters.campaign_id))
        ):
            _fill(overall, values, convert)
        rest = {m: overall[m] - sum(r[m] for r in table.rows.values()) for m in METRICS}
        if any(rest[m] for m in (*kept,)):
            table.rows[""] = rest
        for row in table.rows.values():
            row["unique_clicks"] = None
        table.labels = {k: k or f"(no {by})" for k in table.rows}
    else:
        key = GROUP_FIELDS[by]
        for values in _sums(_rollups(affiliate_ids, period, filters), key):
            _fill(table.rows.setdefault(str(values[key]), _blank()), values, convert)
        table.labels = {k: k or "(unknown)" for k in table.rows}
    if by == "campaign":
        names = dict(
            Campaign.objects.filter(pk__in=[int(k) for k in table.rows if k != "0"]).values_list(
                "pk", "name"
            )
        )
        table.labels = {k: names.get(int(k), "(no campaign)") for k in table.rows}
    commission = _commission(affiliate_ids, period, time_zone, convert, GROUP_FIELDS[by])
    for key, amount in commission.items():
        if key != "revshare":
            table.rows.setdefault(key, _blank())["commission"] += amount
            table.labels.setdefault(key, key or "(unknown)")
    return table


def conversions(
    *, affiliate_ids: list[int], period: Period, time_zone: str
) -> QuerySet[Conversion]:
    """The period's conversions of these affiliates, newest first, ready for a list."""
    start, end = period.bounds(time_zone)
    return (
        Conversion.objects.filter(
            affiliate_id__in=affiliate_ids, occurred_at__gte=start, occurred_at__lt=end
        )
        .select_related("campaign")
        .only(
            "id",
            "type",
            "channel",
            "platform",
            "method",
            "occurred_at",
            "status",
            "reason",
            "revenue",
            "currency",
            "country",
            "campaign__id",
            "campaign__name",
            "click_id",
        )
        .order_by("-occurred_at", "-pk")
    )


def default_currency() -> str:
    return settings.BASE_CURRENCY
