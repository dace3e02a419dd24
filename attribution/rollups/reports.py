"""Reads for dashboards, exports and the stats API: rollups, in the viewer's time zone and
currency, mobile (iOS, Android, SKAN aggregated) beside web. One query per table, whatever the
number of rows."""

import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from affiliates.models import Campaign
from attribution.models import Click, Conversion, DailyRollup, SubRollup
from attribution.rollups import keep
from payouts import fx

COLUMNS = ("ios", "android", "skan", "web")
COLUMN_LABELS = {"ios": "iOS", "android": "Android", "skan": "SKAN (aggregated)", "web": "Web"}
# Commission tied to no conversion (monthly RevShare, tier top-ups): its own row and column.
MONTHLY = "monthly"
MONTHLY_LABEL = "RevShare and tier top-ups (monthly)"
COUNTS = ("clicks", "unique_clicks", "installs", "registrations", "ftds", "deposits", "rejected")
MONEY = ("deposit_amount", "revenue")
EARNINGS = ("commission", "sub_commission")
METRICS = (*COUNTS, *MONEY, *EARNINGS)
AMOUNTS = (*MONEY, *EARNINGS)
PRESETS = {
    "today": "Today",
    "yesterday": "Yesterday",
    "last7": "Last 7 days",
    "last30": "Last 30 days",
    "this_month": "This month",
    "last_month": "Last month",
    "custom": "Custom",
}
SUBS = ("sub1", "sub2", "sub3", "sub4", "sub5")
BREAKDOWNS = ("campaign", "country", "platform", *SUBS)
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
    subs: tuple[str, ...] = ("", "", "", "", "")  # sub1..sub5: one of them at a time

    def __post_init__(self) -> None:
        if len(self.subs) != len(SUBS):
            raise ValueError("subs holds sub1..sub5")
        if sum(1 for value in self.subs if value) > 1:
            raise ReportError("filter by one sub id at a time (sub1..sub5)")

    @property
    def sub(self) -> tuple[int, str] | None:
        """The sub id filter as (1..5, value), if any."""
        return next(((n, v) for n, v in enumerate(self.subs, start=1) if v), None)

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
    rows: dict[str, dict[str, Decimal | None]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, Decimal | None]:
        out: dict[str, Decimal | None] = dict.fromkeys(METRICS, Decimal(0))
        for row in self.rows.values():
            for metric, value in row.items():
                out[metric] = None if value is None or out[metric] is None else out[metric] + value
        return out

    def mobile(self) -> dict[str, Decimal | None]:
        out: dict[str, Decimal | None] = dict.fromkeys(METRICS, Decimal(0))
        for column in ("ios", "android", "skan"):
            for metric, value in self.rows.get(column, {}).items():
                out[metric] = None if value is None or out[metric] is None else out[metric] + value
        return out


def _blank(*, unique: bool = True) -> dict[str, Decimal | None]:
    row: dict[str, Decimal | None] = dict.fromkeys(METRICS, Decimal(0))
    if not unique:
        row["unique_clicks"] = None  # not kept per sub id value
    return row


def _rollups(affiliate_ids: Iterable[int] | None, period: Period, filters: Filters) -> QuerySet:
    """Rollup rows of the period under the filters; ``affiliate_ids`` None: the whole program.

    A sub id filter reads the sub id rows (kept on every other dimension too), where unique
    clicks are not kept.
    """
    sub = filters.sub
    if sub is None:
        rows = DailyRollup.objects.filter(filters.q(), day__gte=period.start, day__lte=period.end)
    else:
        rows = SubRollup.objects.filter(
            filters.q(), sub=sub[0], value=sub[1], day__gte=period.start, day__lte=period.end
        )
    return rows if affiliate_ids is None else rows.filter(affiliate_id__in=list(affiliate_ids))


def _sums(queryset: QuerySet, *group: str) -> QuerySet:
    kept = {f.name for f in queryset.model._meta.fields}
    return (
        queryset.values(*group, "currency")
        .annotate(**{f"s_{m}": Sum(m) for m in METRICS if m in kept})
        .order_by()
    )


def _fill(row: dict[str, Decimal | None], values: Mapping, convert: Converter) -> None:
    for metric in COUNTS:
        if f"s_{metric}" not in values or row[metric] is None:
            row[metric] = None
            continue
        row[metric] += Decimal(values[f"s_{metric}"] or 0)
    for metric in AMOUNTS:
        row[metric] += convert(values[f"s_{metric}"] or Decimal(0), values["currency"])


def _live_clicks(
    affiliate_ids: Iterable[int] | None, period: Period, filters: Filters
) -> tuple[dict, dict]:
    """The period's clicks above the fill's watermark, counted as the fill will count them:
    (daily rows, sub id rows) keyed as ``keep`` keys them. The rollups hold the clicks up to
    the watermark; these few are read live, so a click shows on the next page load.

    One query, whatever the data's size: the clicks since the last fill (a minute's worth),
    found by primary key. Unique clicks are counted among these, not across the rollups too.
    """
    utc_start = datetime.combine(period.start, datetime.min.time(), UTC)
    utc_end = datetime.combine(period.end + timedelta(days=1), datetime.min.time(), UTC)
    # The watermark as a value, not a subquery: the planner then sees how few ids lie above it
    # and reads them by primary key (with a subquery it guessed a third of the table and
    # scanned it: 0.7 s at 10M clicks).
    clicks = Click.objects.filter(
        pk__gt=keep.click_watermark(),
        # Every time zone's local days lie within 14 hours of the UTC days.
        created_at__gte=utc_start - timedelta(hours=14),
        created_at__lt=utc_end + timedelta(hours=14),
    )
    if affiliate_ids is not None:
        clicks = clicks.filter(affiliate_id__in=list(affiliate_ids))
    if filters.campaign_id:
        clicks = clicks.filter(campaign_id=filters.campaign_id)
    if filters.country:
        clicks = clicks.filter(country=filters.country.upper())
    if filters.platform:
        clicks = clicks.filter(platform=filters.platform)
    if filters.channel == "web":
        clicks = clicks.filter(platform="web")
    elif filters.channel:
        clicks = clicks.exclude(platform="web")
    if filters.sub is not None:
        clicks = clicks.filter(**{f"sub{filters.sub[0]}": filters.sub[1]})
    found = list(clicks.values_list(*keep.CLICK_FIELDS, "affiliate__time_zone"))
    zones = {row[0]: row[-1] for row in found}
    daily, _, subs = keep.click_rows((row[:-1] for row in found), zones)
    inside = {k: v for k, v in daily.items() if period.start <= k[0] <= period.end}
    inside_subs = {k: v for k, v in subs.items() if period.start <= k[0] <= period.end}
    return inside, inside_subs


def _add_clicks(row: dict[str, Decimal | None], values: Mapping[str, int]) -> None:
    row["clicks"] += values["clicks"]
    if row["unique_clicks"] is not None:
        row["unique_clicks"] += values.get("unique_clicks", 0)


def summary(
    *,
    affiliate_ids: list[int] | None,
    period: Period,
    filters: Filters,
    currency: str,
    time_zone: str = "",
) -> Table:
    """The KPIs per column: iOS, Android, SKAN (aggregated) and web; commission split into the
    affiliate's own and its share of its sub-affiliates'. Monthly commission that no conversion
    carries (RevShare, tier top-ups) gets a row of its own."""
    convert = Converter(currency, period.end)
    unique = filters.sub is None
    table = Table(currency, {c: _blank(unique=unique) for c in COLUMNS}, dict(COLUMN_LABELS))
    for values in _sums(_rollups(affiliate_ids, period, filters), "platform"):
        column = values["platform"] or MONTHLY
        _fill(table.rows.setdefault(column, _blank(unique=unique)), values, convert)
    live, _ = _live_clicks(affiliate_ids, period, filters)
    for key, values in live.items():
        _add_clicks(table.rows.setdefault(key[4], _blank(unique=unique)), values)
    if MONTHLY in table.rows:
        table.labels[MONTHLY] = MONTHLY_LABEL
    return table


def daily(
    *,
    affiliate_ids: list[int] | None,
    period: Period,
    filters: Filters,
    currency: str,
    time_zone: str = "",
) -> list[dict]:
    """One row a day: mobile and web side by side (clicks, installs, registrations, FTDs,
    commission...), and the day's monthly commission (RevShare, tier top-ups) apart."""
    convert = Converter(currency, period.end)
    unique = filters.sub is None
    days = {
        d: {channel: _blank(unique=unique) for channel in ("mobile", "web", MONTHLY)}
        for d in period.days
    }
    for values in _sums(_rollups(affiliate_ids, period, filters), "day", "channel"):
        _fill(days[values["day"]][values["channel"] or MONTHLY], values, convert)
    live, _ = _live_clicks(affiliate_ids, period, filters)
    for key, values in live.items():
        _add_clicks(days[key[0]][key[3]], values)
    return [{"day": d, **split} for d, split in days.items()]


GROUP_FIELDS = {"campaign": "campaign_id", "country": "country", "platform": "platform"}


def breakdown(
    *,
    by: str,
    affiliate_ids: list[int],
    period: Period,
    filters: Filters,
    currency: str,
    time_zone: str = "",
) -> Table:
    """The period's figures by campaign, country, platform or sub id value, commission too.

    Sub ids: unique clicks are not kept per value (None), and a "(no subN)" row holds what no
    value accounts for, so the rows add up to the period's totals.
    """
    if by not in BREAKDOWNS:
        raise ReportError(f"unknown breakdown {by!r}; use one of {', '.join(BREAKDOWNS)}")
    convert = Converter(currency, period.end)
    table = Table(currency)
    sub = filters.sub
    if by in SUBS:
        n = SUBS.index(by) + 1
        if sub is not None and sub[0] != n:
            raise ReportError(f"a {by} breakdown can be filtered by {by} only, not by sub{sub[0]}")
        rows = SubRollup.objects.filter(
            filters.q(), affiliate_id__in=affiliate_ids, sub=n, day__gte=period.start,
            day__lte=period.end,
        )  # fmt: skip
        if sub is not None:
            rows = rows.filter(value=sub[1])
        for values in _sums(rows, "value"):
            _fill(table.rows.setdefault(values["value"], _blank(unique=False)), values, convert)
        live, live_subs = _live_clicks(affiliate_ids, period, filters)
        for key, values in live_subs.items():
            if key[7] == n:
                _add_clicks(table.rows.setdefault(key[8], _blank(unique=False)), values)
        if sub is None:
            overall = _blank(unique=False)
            for values in _sums(_rollups(affiliate_ids, period, filters)):
                _fill(overall, values, convert)
            for values in live.values():
                _add_clicks(overall, values)
            rest = {
                m: None
                if overall[m] is None
                else overall[m] - sum(r[m] for r in table.rows.values())
                for m in METRICS
            }
            if any(rest[m] for m in METRICS if rest[m] is not None):
                table.rows[""] = rest
        table.labels = {k: k or f"(no {by})" for k in table.rows}
    else:
        key = GROUP_FIELDS[by]
        for values in _sums(_rollups(affiliate_ids, period, filters), key):
            _fill(
                table.rows.setdefault(str(values[key]), _blank(unique=sub is None)), values, convert
            )
        position = {"campaign": 2, "country": 5, "platform": 4}[by]
        live, _ = _live_clicks(affiliate_ids, period, filters)
        for live_key, values in live.items():
            row = table.rows.setdefault(str(live_key[position]), _blank(unique=sub is None))
            _add_clicks(row, values)
        table.labels = {k: k or "(unknown)" for k in table.rows}
        if by == "platform" and "" in table.rows:
            table.labels[""] = MONTHLY_LABEL
    if by == "campaign":
        names = dict(
            Campaign.objects.filter(pk__in=[int(k) for k in table.rows if k != "0"]).values_list(
                "pk", "name"
            )
        )
        table.labels = {k: names.get(int(k), "(no campaign)") for k in table.rows}
    return table


def sub_affiliates(
    *, affiliate_id: int, sub_ids: list[int], period: Period, currency: str
) -> Table:
    """One row per sub-affiliate: their clicks, FTDs and revenue, and what the affiliate earned
    from them (its share of their commission); a row for deeper levels when there is any."""
    convert = Converter(currency, period.end)
    table = Table(currency, {str(pk): _blank() for pk in sub_ids})
    own = DailyRollup.objects.filter(
        affiliate_id__in=sub_ids, sub_affiliate_id=0, day__gte=period.start, day__lte=period.end
    )
    for values in _sums(own, "affiliate_id"):
        row = table.rows[str(values["affiliate_id"])]
        _fill(row, {**values, "s_commission": 0, "s_sub_commission": 0}, convert)
    live, _ = _live_clicks(sub_ids, period, Filters())
    for key, values in live.items():
        _add_clicks(table.rows[str(key[1])], values)
    shares = (
        DailyRollup.objects.filter(
            affiliate_id=affiliate_id, day__gte=period.start, day__lte=period.end
        )
        .exclude(sub_affiliate_id=0)
        .values("sub_affiliate_id", "currency")
        .annotate(s=Sum("sub_commission"))
        .order_by()
    )
    for values in shares:
        key = str(values["sub_affiliate_id"])
        if key not in table.rows:
            key = "deeper"
            table.labels[key] = "Deeper levels"
        row = table.rows.setdefault(key, _blank())
        row["sub_commission"] += convert(values["s"] or Decimal(0), values["currency"])
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
