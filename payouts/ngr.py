"""Net gaming revenue: whose players the activity belongs to, and what a plan makes of it.

For one row of player activity under a plan version whose RevShare is on NGR::

    GGR       = bets - wins (or the operator's ggr)
    NGR       = GGR - (each deduction the version names: bonuses, chargebacks, taxes, fees)
                    - admin fee % x GGR

in the row's currency, then in the plan's at the FX rate of the row's day. A month's NGR is summed
per product; RevShare per product is its percent (the version's per-product percent, else the
tier's the month's NGR or FTDs reached, else the version's) of the product's NGR plus what it
carried in, rounded to the cent, and nothing while that is negative: the negative part is
carried into the next month (ring-fenced per product) or dropped, as the plan says.

Reads only; ``payouts.ledger.ngr_close`` writes what this works out.
"""

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from attribution.models import Conversion, ConversionType

from . import fx, plans
from .models import CommissionPlan, PlanAssignment, PlanVersion, PlayerActivity
from .money import percent_of, quantize

ZERO = Decimal(0)
PlayerRef = tuple[int, str]  # (brand id, the operator's player id)


def next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_of(moment: datetime | None) -> date | None:
    return moment.date().replace(day=1) if moment is not None else None


def months_between(first: date, last: date) -> Iterator[date]:
    month = first.replace(day=1)
    while month <= last:
        yield month
        month = next_month(month)


@dataclass
class Player:
    """What attribution knows of one player of a brand."""

    brand_id: int
    player_id: str
    affiliate_id: int | None = None  # whose registration or FTD of the player won
    campaign_id: int | None = None
    channel: str = ""
    credited_at: datetime | None = None
    conversion_id: int | None = None  # the registration or FTD that credited the player
    registered_at: datetime | None = None
    ftd_at: datetime | None = None
    ftd_amount: Decimal | None = None
    ftd_currency: str = ""


def player_key(ref: PlayerRef) -> str:
    """The conversions' key of a player (``attribution.crediting.decide.player_keys``)."""
    return f"player:{ref[0]}:{ref[1]}"


def player_ref(key: str) -> PlayerRef | None:
    # attribution.crediting.decide.player_keys: "player:<brand id>:<operator's player id>"
    _, brand, player_id = key.split(":", 2)
    try:
        return int(brand), player_id
    except ValueError:
        return None


def players(
    *, affiliate_ids: list[int] | None = None, keys: list[str] | None = None
) -> dict[PlayerRef, Player]:
    """Every player a registration or FTD names, with the affiliate who brought them: the
    earliest approved winning registration or FTD credited to an affiliate. ``keys``: only
    these players ("player:<brand>:<id>")."""
    found: dict[PlayerRef, Player] = {}
    conversions = Conversion.objects.filter(
        type__in=[ConversionType.REGISTRATION, ConversionType.FTD],
        is_winner=True,
        status=Conversion.Status.APPROVED,
        player_key__startswith="player:",
    )
    if keys is not None:
        conversions = conversions.filter(player_key__in=keys)
    if affiliate_ids is not None:
        # The players those affiliates brought: their credited conversions' keys.
        keys = conversions.filter(affiliate_id__in=affiliate_ids).values("player_key")
        conversions = conversions.filter(player_key__in=keys)
    rows = conversions.order_by("occurred_at", "pk").values_list(
        "pk",
        "player_key",
        "type",
        "affiliate_id",
        "campaign_id",
        "channel",
        "occurred_at",
        "revenue",
        "currency",
    )
    for pk, key, kind, affiliate_id, campaign_id, channel, at, revenue, currency in rows.iterator(
        chunk_size=5000
    ):
        ref = player_ref(key)
        if ref is None:
            continue
        player = found.get(ref)
        if player is None:
            player = found[ref] = Player(*ref)
        if kind == ConversionType.REGISTRATION and player.registered_at is None:
            player.registered_at = at
        if kind == ConversionType.FTD and player.ftd_at is None:
            player.ftd_at, player.ftd_amount, player.ftd_currency = at, revenue, currency
        if affiliate_id is not None and player.affiliate_id is None:
            player.affiliate_id, player.campaign_id = affiliate_id, campaign_id
            player.channel, player.credited_at, player.conversion_id = channel, at, pk
    return found


@dataclass
class ProductMonth:
    """One product's money in one month under one plan version, in the plan's currency."""

    ggr: Decimal = ZERO
    bonuses: Decimal = ZERO
    chargebacks: Decimal = ZERO
    taxes: Decimal = ZERO
    fees: Decimal = ZERO
    admin_fee: Decimal = ZERO
    ngr: Decimal = ZERO

    def add(self, other: "ProductMonth") -> None:
        for name in ("ggr", "bonuses", "chargebacks", "taxes", "fees", "admin_fee", "ngr"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def row_ngr(
    version: PlanVersion,
    *,
    ggr: Decimal,
    bonuses: Decimal,
    chargebacks: Decimal,
    taxes: Decimal,
    fees: Decimal,
    rate: Decimal = Decimal(1),
) -> ProductMonth:
    """One activity row's NGR under ``version`` (``rate``: the row's currency to the plan's)."""
    taken = set(version.ngr_deductions)
    part = ProductMonth(
        ggr=ggr * rate,
        bonuses=bonuses * rate if "bonuses" in taken else ZERO,
        chargebacks=chargebacks * rate if "chargebacks" in taken else ZERO,
        taxes=taxes * rate if "taxes" in taken else ZERO,
        fees=fees * rate if "fees" in taken else ZERO,
    )
    part.admin_fee = percent_of(part.ggr, version.admin_fee_percent)
    part.ngr = part.ggr - part.bonuses - part.chargebacks - part.taxes - part.fees - part.admin_fee
    return part


# The operator's NGR for players whose plan is not on NGR: every deduction, no admin fee.
PLAIN = PlanVersion(ngr_deductions=["bonuses", "chargebacks", "taxes", "fees"])


def monthly_activity(rows: QuerySet[PlayerActivity]) -> QuerySet:
    """``rows`` summed per player, month, product and currency: (brand_id, player_id, month,
    product, currency, ggr, bonuses, chargebacks, taxes, fees, deposits)."""
    return (
        rows.annotate(month=TruncMonth("day"))
        .values_list("brand_id", "player_id", "month", "product", "currency")
        .annotate(
            Sum("ggr"),
            Sum("bonuses"),
            Sum("chargebacks"),
            Sum("taxes"),
            Sum("fees"),
            Sum("deposits"),
        )
        .order_by()
    )


def player_month(
    versions: "Versions",
    player: Player,
    month: date,
    product: str,
    money: tuple[Decimal, Decimal, Decimal, Decimal, Decimal],
    rate: Decimal = Decimal(1),
) -> tuple[Decimal, Decimal]:
    """A player's NGR of one month and product (``money``: GGR, bonuses, chargebacks, taxes,
    fees, summed) under their plan, or the operator's plain NGR when it is not on NGR; and
    their RevShare share of it (the product's or the version's percent, before tiers and
    carry-over, which belong to the affiliate's month)."""
    ggr, bonuses, chargebacks, taxes, fees = money
    plan = versions.plan(player.affiliate_id, player.campaign_id)
    version = versions.ngr_version(plan, month) if plan else None
    part = row_ngr(
        version or PLAIN,
        ggr=ggr,
        bonuses=bonuses,
        chargebacks=chargebacks,
        taxes=taxes,
        fees=fees,
        rate=rate,
    )
    if version is None:
        return part.ngr, ZERO
    own = (version.product_percents or {}).get(product)
    percent = Decimal(str(own)) if own is not None else version.revshare_percent
    return part.ngr, percent_of(part.ngr, percent)


class Versions:
    """Plans and versions, read once: whose plan pays a player, and its terms in a month."""

    def __init__(self) -> None:
        self._assigned: dict[int, dict[int | None, CommissionPlan]] | None = None
        self._history: dict[int, list[PlanVersion]] = {}
        self._versions: dict[tuple[int, date], PlanVersion | None] = {}

    def plan(self, affiliate_id: int, campaign_id: int | None) -> CommissionPlan | None:
        """The affiliate's own plan on the campaign, else the campaign's default
        (``plans.plan_for``, with every assignment read in one query)."""
        if self._assigned is None:
            self._assigned = defaultdict(dict)
            for a in PlanAssignment.objects.select_related("plan"):
                self._assigned[a.campaign_id][a.affiliate_id] = a.plan
        mine = self._assigned.get(campaign_id, {})
        return mine.get(affiliate_id) or mine.get(None)

    def ngr_version(self, plan: CommissionPlan, month: date) -> PlanVersion | None:
        """The version in force at the month's end, if its RevShare is on NGR."""
        key = (plan.pk, month)
        if key not in self._versions:
            if plan.pk not in self._history:
                self._history[plan.pk] = list(
                    PlanVersion.objects.filter(plan=plan)
                    .select_related("plan")
                    .prefetch_related("tiers", "ngr_tiers")
                    .order_by("-valid_from")
                )
            end = datetime.combine(next_month(month), datetime.min.time(), UTC)
            version = next((v for v in self._history[plan.pk] if v.valid_from < end), None)
            self._versions[key] = version if version and version.revshare_basis == "ngr" else None
        return self._versions[key]


@dataclass
class Ledgerable:
    """One affiliate's NGR under one plan, per month and product."""

    affiliate_id: int
    plan: CommissionPlan
    months: dict[date, dict[str, ProductMonth]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(ProductMonth))
    )


def activity_rows(*, until: date, since: date | None = None):
    rows = PlayerActivity.objects.filter(day__lt=until)
    if since is not None:
        rows = rows.filter(day__gte=since)
    return rows.values_list(
        "brand_id",
        "player_id",
        "day",
        "product",
        "currency",
        "ggr",
        "bonuses",
        "chargebacks",
        "taxes",
        "fees",
    ).order_by()


def ngr_by_affiliate_plan(*, until: date) -> dict[tuple[int, int], Ledgerable]:
    """Every attributed player's activity before ``until``, as NGR per affiliate, NGR plan,
    month and product (plan currency). Raises fx.FxRateMissing when a rate is missing."""
    known = players()
    versions = Versions()
    found: dict[tuple[int, int], Ledgerable] = {}
    with fx.memoized():
        for brand_id, player_id, day, product, currency, *money in activity_rows(
            until=until
        ).iterator(chunk_size=5000):
            player = known.get((brand_id, player_id))
            if player is None or player.affiliate_id is None:
                continue  # not known yet: kept, and counted once the player is attributed
            plan = versions.plan(player.affiliate_id, player.campaign_id)
            if plan is None:
                continue
            month = day.replace(day=1)
            version = versions.ngr_version(plan, month)
            if version is None:
                continue
            ggr, bonuses, chargebacks, taxes, fees = money
            part = row_ngr(
                version,
                ggr=ggr,
                bonuses=bonuses,
                chargebacks=chargebacks,
                taxes=taxes,
                fees=fees,
                rate=fx.rate(currency, plan.currency, day),
            )
            key = (player.affiliate_id, plan.pk)
            if key not in found:
                found[key] = Ledgerable(player.affiliate_id, plan)
            found[key].months[month][product].add(part)
    return found


def version_percent(version: PlanVersion, product: str, month_ngr: Decimal, ftds: int) -> Decimal:
    """The RevShare percent of ``product`` in a month with this NGR (all products) and FTDs."""
    own = (version.product_percents or {}).get(product)
    if own is not None:
        return Decimal(str(own))
    reached = [t for t in version.ngr_tiers.all() if t.from_ngr <= month_ngr]
    if reached:
        return max(reached, key=lambda t: t.from_ngr).revshare_percent
    tier = plans.tier_for(version, ftds) if ftds else None
    if tier is not None and tier.revshare_percent is not None:
        return tier.revshare_percent
    return version.revshare_percent


@dataclass
class ProductResult:
    ngr: Decimal
    carried_in: Decimal
    percent: Decimal
    commission: Decimal
    carried_out: Decimal


@dataclass
class MonthResult:
    month: date
    products: dict[str, ProductResult]
    parts: dict[str, ProductMonth]

    @property
    def commission(self) -> Decimal:
        return sum((p.commission for p in self.products.values()), ZERO)

    @property
    def ngr(self) -> Decimal:
        return sum((p.ngr for p in self.products.values()), ZERO)


def chain(
    months: dict[date, dict[str, ProductMonth]],
    *,
    through: date,
    currency: str,
    carry: bool,
    percent: Callable[[date, str, Decimal], Decimal],
) -> list[MonthResult]:
    """Month by month from the first with activity through ``through``: each product's
    commission and what it carries on. ``percent(month, product, month's NGR)``."""
    if not months:
        return []
    carried: dict[str, Decimal] = defaultdict(lambda: ZERO)
    results = []
    for month in months_between(min(months), through):
        parts = months.get(month, {})
        month_ngr = sum((p.ngr for p in parts.values()), ZERO)
        products = {}
        for product in sorted(set(parts) | {p for p, c in carried.items() if c}):
            ngr = parts[product].ngr if product in parts else ZERO
            basis = ngr + carried[product]
            rate = percent(month, product, month_ngr)
            commission = quantize(percent_of(basis, rate), currency) if basis > 0 else ZERO
            carried[product] = quantize(basis, currency) if basis < 0 and carry else ZERO
            products[product] = ProductResult(
                ngr=ngr,
                carried_in=basis - ngr,
                percent=rate,
                commission=commission,
                carried_out=carried[product],
            )
        results.append(MonthResult(month, products, dict(parts)))
    return results


def ftd_months(affiliate_id: int, first: date, until: date) -> dict[date, int]:
    """The affiliate's approved, winning FTDs per (UTC) month, for FTD-tiered percents."""
    counts: dict[date, int] = defaultdict(int)
    start = datetime.combine(first, datetime.min.time(), UTC)
    end = datetime.combine(until, datetime.min.time(), UTC)
    ftds = Conversion.objects.filter(
        Q(occurred_at__gte=start) & Q(occurred_at__lt=end),
        affiliate_id=affiliate_id,
        type=ConversionType.FTD,
        status=Conversion.Status.APPROVED,
        is_winner=True,
    ).values_list("occurred_at", flat=True)
    for at in ftds:
        counts[at.date().replace(day=1)] += 1
    return counts
