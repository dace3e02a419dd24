"""Players and cohorts: what the players an affiliate brought are worth, month by month.

Reads only. Figures per player and month, in the viewer's currency:

- deposits: the operator's reported deposits;
- NGR: under the player's plan formula when its RevShare is on NGR, else GGR - bonuses -
  chargebacks - taxes - fees;
- commission: the player's RevShare share (the product's or plan's percent of that NGR, before
  tiers and carry-over, which belong to the affiliate's month, not a player) plus the CPA the
  ledger holds for the player's conversions.

Activity is summed per month and currency in the database and converted at the rate of the
month's last day (the ledger converts day by day: reports are close, the ledger is exact).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.utils.crypto import salted_hmac

from attribution.crediting import multitouch
from attribution.models import Conversion, ConversionType

from . import cohort_facts, fx, ngr
from .models import LedgerEntry, PlayerActivity
from .money import MINOR_UNITS, quantize

ZERO = Decimal(0)
LIVE = (LedgerEntry.Status.PENDING, LedgerEntry.Status.APPROVED, LedgerEntry.Status.PAID)
METRICS = ("players", "deposits", "ngr", "commission", "ngr_per_player")


def pseudonym(brand_id: int, player_id: str) -> str:
    """A stable id for a player that does not give away the operator's own."""
    return salted_hmac("payouts.player", f"{brand_id}:{player_id}").hexdigest()[:16]


def months_since(first: date, month: date) -> int:
    return (month.year - first.year) * 12 + month.month - first.month


@dataclass
class Figures:
    deposits: Decimal = ZERO
    ngr: Decimal = ZERO
    commission: Decimal = ZERO
    active: bool = False

    def add(self, other: "Figures") -> None:
        self.deposits += other.deposits
        self.ngr += other.ngr
        self.commission += other.commission
        self.active = self.active or other.active


@dataclass
class PlayerFigures:
    player: ngr.Player
    months: dict[date, Figures] = field(default_factory=lambda: defaultdict(Figures))

    def between(self, first: date | None, last: date | None) -> Figures:
        total = Figures()
        for month, figures in self.months.items():
            if (first is None or month >= first) and (last is None or month <= last):
                total.add(figures)
        return total


@dataclass(frozen=True)
class Scope:
    """Whose players: some affiliates' (None: every affiliate's), narrowed by campaign and
    channel."""

    affiliate_ids: list[int] | None
    currency: str
    campaign_id: int | None = None
    channel: str = ""


def _in_scope(player: ngr.Player, scope: Scope) -> bool:
    if player.affiliate_id is None:
        return False
    if scope.affiliate_ids is not None and player.affiliate_id not in scope.affiliate_ids:
        return False
    if scope.campaign_id is not None and player.campaign_id != scope.campaign_id:
        return False
    return not scope.channel or player.channel == scope.channel


def _activity(refs: set[ngr.PlayerRef], whole_program: bool) -> Iterable[tuple]:
    rows = PlayerActivity.objects.all()
    if not whole_program:
        rows = rows.filter(player_id__in=sorted({player_id for _, player_id in refs}))
    return ngr.monthly_activity(rows)


def _cpa(refs: set[ngr.PlayerRef], currency: str) -> dict[ngr.PlayerRef, dict[date, Decimal]]:
    found: dict[ngr.PlayerRef, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    entries = (
        LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.CPA,
            status__in=LIVE,
            conversion__player_key__startswith="player:",
        )
        .exclude(derived__kind=LedgerEntry.Kind.REVERSAL)
        .values_list("conversion__player_key", "conversion__occurred_at", "amount", "currency")
    )
    for key, at, amount, entry_currency in entries.iterator(chunk_size=5000):
        ref = ngr.player_ref(key)
        if ref in refs:
            month = at.date().replace(day=1)
            found[ref][month] += amount * fx.rate(entry_currency, currency, at.date())
    return found


def _path_of(conversion: Conversion) -> list[tuple[int, int | None]]:
    touches = multitouch.touches_for(conversion)
    if touches:
        return [(t.affiliate_id, t.campaign_id) for t in touches]
    return [(conversion.affiliate_id, conversion.campaign_id)]


def observed_effects(
    *, first: datetime | None = None, end: datetime | None = None, extra: Iterable[int] = ()
) -> dict:
    """The data-driven model's removal effects over the observed paths: those of every
    approved, winning install and FTD (of the period, when given), and of ``extra``
    conversions."""
    conversions = Conversion.objects.filter(
        type__in=[ConversionType.INSTALL, ConversionType.FTD],
        is_winner=True,
        status=Conversion.Status.APPROVED,
    ).exclude(affiliate__isnull=True, click__isnull=True)
    if first is not None:
        conversions = conversions.filter(occurred_at__gte=first, occurred_at__lt=end)
    ids = set(conversions.values_list("pk", flat=True)) | set(extra)
    found = Conversion.objects.select_related("click__campaign").in_bulk(sorted(ids))
    return multitouch.removal_effects([_path_of(c) for _, c in sorted(found.items())])


def model_shares(
    players: dict[ngr.PlayerRef, ngr.Player], model: str
) -> dict[ngr.PlayerRef, dict[tuple[int, int | None], Decimal]]:
    """Each player's share per (affiliate, campaign) under ``model``: the touches of the
    conversion that credited them (``multitouch.touches_for``), split as the model says."""
    ids = [p.conversion_id for p in players.values() if p.conversion_id]
    conversions = Conversion.objects.select_related("click__campaign").in_bulk(ids)
    paths = {}
    for ref, player in players.items():
        conversion = conversions.get(player.conversion_id)
        if conversion is None:
            continue
        touches = multitouch.touches_for(conversion)
        if touches:
            paths[ref] = (
                [(t.affiliate_id, t.campaign_id) for t in touches],
                [t.created_at for t in touches],
                conversion.occurred_at,
            )
        else:
            paths[ref] = ([(player.affiliate_id, player.campaign_id)], [None], None)
    effects = observed_effects(extra=ids) if model == multitouch.DATA_DRIVEN else {}
    shares: dict[ngr.PlayerRef, dict[tuple[int, int | None], Decimal]] = {}
    for ref, (states, times, at) in paths.items():
        if model == multitouch.DATA_DRIVEN:
            split = multitouch.data_driven_shares(states, effects)
        elif at is None:
            split = [Decimal(1)]
        else:
            split = multitouch.credit_shares(times, at, model)
        mine: dict[tuple[int, int | None], Decimal] = defaultdict(Decimal)
        for state, share in zip(states, split, strict=True):
            mine[state] += share
        shares[ref] = dict(mine)
    return shares


def player_figures(scope: Scope, model: str = "") -> dict[ngr.PlayerRef, PlayerFigures]:
    """Every player in ``scope`` with their figures per month (viewer's currency, unrounded).

    ``model`` (one of ``multitouch.EVERY_MODEL``): a player belongs to every affiliate and
    campaign the model gives a share of them, with that share of their figures; without one, to
    the affiliate who was credited, whole (what the money follows)."""
    weights: dict[ngr.PlayerRef, Decimal] = {}
    if model:
        everyone = {r: p for r, p in ngr.players().items() if p.affiliate_id is not None}
        known = {}
        for ref, shares in model_shares(everyone, model).items():
            weight = sum(
                (
                    share
                    for (affiliate_id, campaign_id), share in shares.items()
                    if (scope.affiliate_ids is None or affiliate_id in scope.affiliate_ids)
                    and (scope.campaign_id is None or campaign_id == scope.campaign_id)
                ),
                ZERO,
            )
            player = everyone[ref]
            if weight > 0 and (not scope.channel or player.channel == scope.channel):
                known[ref], weights[ref] = player, weight
        scope = Scope(None, scope.currency)  # the shares above are the scope now
    else:
        known = {
            ref: player
            for ref, player in ngr.players(affiliate_ids=scope.affiliate_ids).items()
            if _in_scope(player, scope)
        }
    found = {ref: PlayerFigures(player) for ref, player in known.items()}
    if not found:
        return found
    versions = ngr.Versions()
    with fx.memoized():
        whole = scope.affiliate_ids is None
        for brand_id, player_id, month, product, currency, *money in _activity(set(known), whole):
            figures = found.get((brand_id, player_id))
            if figures is None:
                continue
            *sums, deposits = money
            month = month if isinstance(month, date) else month.date()
            rate = fx.rate(currency, scope.currency, ngr.next_month(month) - timedelta(days=1))
            month_ngr, share = ngr.player_month(
                versions, figures.player, month, product, sums, rate
            )
            figures.months[month].add(
                Figures(deposits=deposits * rate, ngr=month_ngr, commission=share, active=True)
            )
        for ref, months in _cpa(set(known), scope.currency).items():
            for month, amount in months.items():
                found[ref].months[month].add(Figures(commission=amount))
    for ref, weight in weights.items():
        if weight != 1:
            for figures in found[ref].months.values():
                figures.deposits *= weight
                figures.ngr *= weight
                figures.commission *= weight
    return found


@dataclass
class PlayerRow:
    player: str
    affiliate_id: int
    campaign_id: int | None
    channel: str
    registered_on: date | None
    ftd_on: date | None
    ftd_amount: Decimal | None
    deposits: Decimal
    ngr: Decimal
    commission: Decimal


def player_report(scope: Scope, *, first: date | None, last: date | None) -> list[PlayerRow]:
    """Each player the scope's affiliates brought, with the figures of the months from
    ``first`` through ``last`` (first days of months; None: open)."""
    rows = []
    with fx.memoized():
        for (brand_id, player_id), figures in player_figures(scope).items():
            player = figures.player
            total = figures.between(first, last)
            ftd_amount = None
            if player.ftd_amount is not None:
                rate = fx.rate(
                    player.ftd_currency or scope.currency, scope.currency, player.ftd_at.date()
                )
                ftd_amount = quantize(player.ftd_amount * rate, scope.currency)
            rows.append(
                PlayerRow(
                    player=pseudonym(brand_id, player_id),
                    affiliate_id=player.affiliate_id,
                    campaign_id=player.campaign_id,
                    channel=player.channel,
                    registered_on=player.registered_at.date() if player.registered_at else None,
                    ftd_on=player.ftd_at.date() if player.ftd_at else None,
                    ftd_amount=ftd_amount,
                    deposits=quantize(total.deposits, scope.currency),
                    ngr=quantize(total.ngr, scope.currency),
                    commission=quantize(total.commission, scope.currency),
                )
            )
    rows.sort(key=lambda r: (r.registered_on or r.ftd_on or date.max, r.player))
    return rows


@dataclass
class Cohort:
    cohort: date
    players: int
    values: list[Decimal | int]


def cohorts(scope: Scope, *, by: str, metric: str, through: date, model: str = "") -> list[Cohort]:
    """Players by the month of their registration or FTD (``by``: registration_month or
    ftd_month), and ``metric`` in each month since: ``values[k]`` is the k-th month's.

    Metrics: players (active that month), deposits, ngr, commission, ngr_per_player (the
    cohort's cumulative NGR through that month over its players). Without a ``model`` the sums
    come from the kept facts (``cohort_facts``), brought up to date first.
    """
    if model:
        return _cohorts_of(player_figures(scope, model), scope, by, metric, through)
    cohort_facts.refresh()
    members, active, money = cohort_facts.sums(
        by=by,
        through=through,
        affiliate_ids=scope.affiliate_ids,
        campaign_id=scope.campaign_id,
        channel=scope.channel,
    )
    months: dict[date, dict[date, Figures]] = defaultdict(lambda: defaultdict(Figures))
    with fx.memoized():
        for start, month, day, currency, deposits, ngr_sum, commission in money:
            # Activity at its month's last day, as the ledger's month; CPA at its entry's day.
            on = day or ngr.next_month(month) - timedelta(days=1)
            rate = fx.rate(currency, scope.currency, on)
            months[start][month].add(
                Figures(deposits=deposits * rate, ngr=ngr_sum * rate, commission=commission * rate)
            )
    result = []
    for start in sorted(members):
        width = months_since(start, through) + 1
        sums = [Figures() for _ in range(width)]
        players_active = [0] * width
        for month, figures in months[start].items():
            k = months_since(start, month)
            if 0 <= k < width:
                sums[k].add(figures)
                players_active[k] = active.get((start, month), 0)
        result.append(_cohort(start, members[start], sums, players_active, metric, scope))
    return result


def _cohort(
    start: date, players: int, sums: list[Figures], active: list[int], metric: str, scope: Scope
) -> Cohort:
    if metric == "players":
        values: list[Decimal | int] = active
    elif metric == "ngr_per_player":
        running, values = ZERO, []
        for month in sums:
            running += month.ngr
            values.append(quantize(running / players, scope.currency))
    else:
        values = [quantize(getattr(month, metric), scope.currency) for month in sums]
    return Cohort(start, players, values)


def _cohorts_of(
    found: dict[ngr.PlayerRef, PlayerFigures], scope: Scope, by: str, metric: str, through: date
) -> list[Cohort]:
    """The cohorts worked out player by player (a model's shares weigh each player)."""
    groups: dict[date, list[PlayerFigures]] = defaultdict(list)
    for figures in found.values():
        player = figures.player
        start = ngr.month_of(player.ftd_at if by == "ftd_month" else player.registered_at)
        if start is not None and start <= through:
            groups[start].append(figures)
    result = []
    for start in sorted(groups):
        members = groups[start]
        width = months_since(start, through) + 1
        sums = [Figures() for _ in range(width)]
        active = [0] * width
        for figures in members:
            for month, values in figures.months.items():
                k = months_since(start, month)
                if 0 <= k < width:
                    sums[k].add(values)
                    active[k] += values.active
        result.append(_cohort(start, len(members), sums, active, metric, scope))
    return result


# --- attribution models side by side (managers) ------------------------------------------------

COMPARED = ("installs", "ftds", "ngr", "commission")


@dataclass
class ModelRow:
    affiliate_id: int
    campaign_id: int | None
    credit: dict[str, dict[str, Decimal]]


def _largest_remainder(exact: dict, places: Decimal) -> dict:
    """Each value rounded to ``places`` so that the rounded ones add up to the rounded total."""
    rounded = {k: v.quantize(places) for k, v in exact.items()}
    leftover = sum(exact.values(), ZERO).quantize(places) - sum(rounded.values(), ZERO)
    if exact and leftover:
        largest = max(exact, key=lambda k: (abs(exact[k]), str(k)))
        rounded[largest] += leftover
    return rounded


def _model_credit(
    *, start: datetime, end: datetime, currency: str
) -> dict[str, dict[str, dict[tuple[int, int | None], Decimal]]]:
    """Per affiliate and campaign: installs, FTDs, NGR and commission credited under each
    multi-touch model and the data-driven one, side by side. Money still follows the campaign's
    own model; this only shows what the others would say.

    The conversions are the approved, winning installs and FTDs from ``start`` to ``end``; an
    FTD brings its player's NGR and commission of the months the period touches. A conversion's
    touches are its device's clicks (``multitouch.touches_for``); one without touches stays
    whole with its own affiliate and campaign. The data-driven shares come from the Markov
    removal effects of every (affiliate, campaign) over the same conversions' paths.
    """
    first, last = start.date().replace(day=1), (end - timedelta(microseconds=1)).date()
    conversions = list(
        Conversion.objects.filter(
            type__in=[ConversionType.INSTALL, ConversionType.FTD],
            is_winner=True,
            status=Conversion.Status.APPROVED,
            occurred_at__gte=start,
            occurred_at__lt=end,
        )
        .exclude(affiliate__isnull=True, click__isnull=True)
        .select_related("click__campaign")
        .order_by("occurred_at", "pk")
    )
    figures = player_figures(Scope(affiliate_ids=None, currency=currency))
    paths = []
    for conversion in conversions:
        touches = multitouch.touches_for(conversion)
        if touches:
            states = [(t.affiliate_id, t.campaign_id) for t in touches]
            times = [t.created_at for t in touches]
        else:
            states, times = [(conversion.affiliate_id, conversion.campaign_id)], [None]
        values = {"installs": ZERO, "ftds": ZERO, "ngr": ZERO, "commission": ZERO}
        if conversion.type == ConversionType.INSTALL:
            values["installs"] = Decimal(1)
        else:
            values["ftds"] = Decimal(1)
            ref = ngr.player_ref(conversion.player_key) if conversion.player_key else None
            if ref in figures:
                period = figures[ref].between(first, last)
                values["ngr"], values["commission"] = period.ngr, period.commission
        paths.append((conversion, states, times, values))
    effects = observed_effects(first=start, end=end)
    exact: dict[str, dict[str, dict]] = {
        m: {metric: defaultdict(Decimal) for metric in COMPARED} for m in multitouch.EVERY_MODEL
    }
    for conversion, states, times, values in paths:
        for model in multitouch.EVERY_MODEL:
            if model == multitouch.DATA_DRIVEN:
                shares = multitouch.data_driven_shares(states, effects)
            elif times == [None]:
                shares = [Decimal(1)]
            else:
                shares = multitouch.credit_shares(times, conversion.occurred_at, model)
            for state, share in zip(states, shares, strict=True):
                for metric, value in values.items():
                    exact[model][metric][state] += value * share
    return exact


def model_credit(
    *, start: datetime, end: datetime, currency: str, model: str, scope: Scope
) -> dict[str, Decimal]:
    """What ``model`` credits the scope's affiliates (and campaign) with between two instants:
    installs, FTDs, and the FTDs' players' NGR and commission of those months."""
    exact = _model_credit(start=start, end=end, currency=currency)[model]
    total = {}
    for metric, by_state in exact.items():
        mine = sum(
            (
                value
                for (affiliate_id, campaign_id), value in by_state.items()
                if (scope.affiliate_ids is None or affiliate_id in scope.affiliate_ids)
                and (scope.campaign_id is None or campaign_id == scope.campaign_id)
            ),
            ZERO,
        )
        places = multitouch.PLACES if metric in ("installs", "ftds") else None
        total[metric] = mine.quantize(places) if places else quantize(mine, currency)
    return total


def model_comparison(*, first: date, last: date, currency: str) -> list[ModelRow]:
    """Per affiliate and campaign: installs, FTDs, NGR and commission credited under each
    multi-touch model and the data-driven one, side by side (``_model_credit``), for the months
    ``first`` through ``last``."""
    start = datetime.combine(first, datetime.min.time(), UTC)
    end = datetime.combine(ngr.next_month(last), datetime.min.time(), UTC)
    exact = _model_credit(start=start, end=end, currency=currency)
    keys = sorted({k for m in exact.values() for v in m.values() for k in v}, key=str)
    rows = {key: ModelRow(key[0], key[1], {}) for key in keys}
    cents = Decimal(1).scaleb(-MINOR_UNITS.get(currency.upper(), 2))
    for model, metrics in exact.items():
        for metric, by_state in metrics.items():
            places = cents if metric in ("ngr", "commission") else multitouch.PLACES
            for key, value in _largest_remainder(by_state, places).items():
                rows[key].credit.setdefault(model, {})[metric] = value
    for row in rows.values():
        for model in multitouch.EVERY_MODEL:
            for metric in COMPARED:
                row.credit.setdefault(model, {}).setdefault(metric, ZERO)
    return list(rows.values())


@dataclass
class HeatRow:
    cohort: str
    players: int
    cells: list[tuple[Decimal | int, str]]  # (value, CSS background) per month since


def heat_map(found: list[Cohort]) -> list[HeatRow]:
    """Cohorts as a heat map: each cell shaded by its value against the largest (blue for
    positive, red for negative), for pages that draw the cohort table."""
    largest = max((abs(Decimal(v)) for c in found for v in c.values), default=ZERO)
    rows = []
    for cohort in found:
        cells = []
        for value in cohort.values:
            share = abs(Decimal(value)) / largest if largest else ZERO
            colour = "37, 99, 235" if Decimal(value) >= 0 else "220, 38, 38"
            cells.append((value, f"rgba({colour}, {share.quantize(Decimal('0.01'))})"))
        rows.append(HeatRow(f"{cohort.cohort:%Y-%m}", cohort.players, cells))
    return rows
