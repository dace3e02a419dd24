"""Multi-touch credit for reports: how a conversion's credit splits across the clicks before it.

Money always follows the campaign's own model (last click unless it says first click); these
models only change what reports show. Shares are exact Decimals that add up to one.
"""

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from itertools import pairwise

from django.db.models import Q

from attribution.models import Click, Conversion

MODELS = ("first_click", "last_click", "linear", "time_decay", "position_based")
# The data-driven model: per-path shares from the Markov removal effects of the observed paths.
DATA_DRIVEN = "data_driven"
EVERY_MODEL = (*MODELS, DATA_DRIVEN)
PLACES = Decimal("0.000001")
HALF_LIFE = timedelta(days=7)


def _normalise(weights: Sequence[Decimal]) -> list[Decimal]:
    total = sum(weights)
    shares = [(w / total).quantize(PLACES, ROUND_HALF_EVEN) for w in weights]
    # Rounding leftovers go to the largest share, so the shares add up to exactly one.
    shares[shares.index(max(shares))] += Decimal(1) - sum(shares)
    return shares


def credit_shares(
    touches: Sequence[datetime], converted_at: datetime, model: str, *, half_life=HALF_LIFE
) -> list[Decimal]:
    """Each touch's share of one conversion, in the order given (oldest first)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)}")
    n = len(touches)
    if n == 0:
        return []
    if n == 1:
        return [Decimal(1)]
    if model == "first_click":
        return [Decimal(1)] + [Decimal(0)] * (n - 1)
    if model == "last_click":
        return [Decimal(0)] * (n - 1) + [Decimal(1)]
    if model == "linear":
        return _normalise([Decimal(1)] * n)
    if model == "time_decay":
        weights = [
            Decimal(2) ** Decimal(-(converted_at - t).total_seconds() / half_life.total_seconds())
            for t in touches
        ]
        return _normalise(weights)
    # position_based: 40% first, 40% last, 20% shared by the touches between.
    if n == 2:
        return [Decimal("0.5"), Decimal("0.5")]
    middle = Decimal("0.2") / (n - 2)
    return _normalise([Decimal("0.4"), *([middle] * (n - 2)), Decimal("0.4")])


def touches_for(conversion: Conversion) -> list[Click]:
    """The clicks that led to a conversion: its device's clicks on the app's campaigns inside the
    lookback (or, for web, the conversion's own click), oldest first."""
    click = conversion.click
    if click is None:
        return []
    device = Q()
    if click.gaid:
        device |= Q(gaid=click.gaid)
    if click.idfa:
        device |= Q(idfa=click.idfa)
    if not device or conversion.app_id is None:
        return [click]
    lookback = timedelta(days=click.campaign.click_lookback_days)
    anchor = conversion.occurred_at
    clicks = list(
        Click.objects.filter(device)
        .filter(
            Q(campaign__ios_app_id=conversion.app_id)
            | Q(campaign__android_app_id=conversion.app_id)
        )
        .filter(created_at__lte=anchor, created_at__gte=anchor - lookback)
        .order_by("created_at", "pk")[:100]
    )
    return clicks or [click]


def affiliate_credit(conversions: Sequence[Conversion], model: str) -> dict[int, Decimal]:
    """Conversions credited per affiliate under ``model`` (fractions where credit is shared)."""
    credit: dict[int, Decimal] = defaultdict(Decimal)
    for conversion in conversions:
        touches = touches_for(conversion)
        if not touches:
            if conversion.affiliate_id:
                credit[conversion.affiliate_id] += 1
            continue
        shares = credit_shares([t.created_at for t in touches], conversion.occurred_at, model)
        for touch, share in zip(touches, shares, strict=True):
            credit[touch.affiliate_id] += share
    return dict(credit)


# --- the data-driven model: a first-order Markov chain over the observed paths ----------------

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


def _collapse(path: Sequence[Hashable]) -> list[Hashable]:
    """Repeated touches of the same state in a row are one visit."""
    out: list[Hashable] = []
    for state in path:
        if not out or out[-1] != state:
            out.append(state)
    return out


def _conversion_probability(
    transitions: dict[Hashable, Counter], states: list[Hashable], removed: Hashable | None
) -> Fraction:
    """P(reach conversion from start), ``removed`` turned into a dead end (exact fractions).

    x_s = p(s -> conversion) + sum_t p(s -> t) x_t, solved by Gauss-Jordan elimination.
    """
    live = [s for s in states if s != removed]
    index = {s: i for i, s in enumerate(live)}
    n = len(live)
    matrix = [[Fraction(0)] * (n + 1) for _ in range(n)]
    for s in live:
        i = index[s]
        out = transitions[s]
        total = sum(out.values())
        matrix[i][i] += 1
        for target, count in out.items():
            p = Fraction(count, total)
            if target == CONVERSION:
                matrix[i][n] += p
            elif target in index:
                matrix[i][index[target]] -= p
    for col in range(n):
        pivot = next(r for r in range(col, n) if matrix[r][col] != 0)
        matrix[col], matrix[pivot] = matrix[pivot], matrix[col]
        lead = matrix[col][col]
        matrix[col] = [v / lead for v in matrix[col]]
        for r in range(n):
            if r != col and matrix[r][col] != 0:
                factor = matrix[r][col]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[col], strict=True)]
    x = {s: matrix[index[s]][n] for s in live}
    start = transitions[START]
    total = sum(start.values())
    return sum((Fraction(c, total) * x[t] for t, c in start.items() if t in x), Fraction(0))


def removal_effects(
    converted: Sequence[Sequence[Hashable]], lost: Sequence[Sequence[Hashable]] = ()
) -> dict[Hashable, Fraction]:
    """Each state's removal effect over the paths: 1 - P(conversion without it) / P(conversion).

    ``converted``: the touch paths (oldest first) that ended in a conversion; ``lost``: those
    that did not. Transition probabilities are the observed counts between consecutive states
    (start -> first touch -> ... -> conversion or null).
    """
    transitions: dict[Hashable, Counter] = defaultdict(Counter)
    for paths, end in ((converted, CONVERSION), (lost, NULL)):
        for path in paths:
            steps = [START, *_collapse(path), end]
            for a, b in pairwise(steps):
                transitions[a][b] += 1
    states = sorted({s for s in transitions if s != START}, key=str)
    if not transitions[START]:
        return {}
    everything = _conversion_probability(transitions, states, None)
    if everything == 0:
        return {s: Fraction(0) for s in states}
    return {s: 1 - _conversion_probability(transitions, states, s) / everything for s in states}


def data_driven_shares(
    path: Sequence[Hashable], effects: dict[Hashable, Fraction]
) -> list[Decimal]:
    """One conversion's credit split over its touches in proportion to their states' removal
    effects (evenly where none has any)."""
    if not path:
        return []
    effect = [effects.get(s, Fraction(0)) for s in path]
    weights = [Decimal(e.numerator) / Decimal(e.denominator) for e in effect]
    if sum(weights) <= 0:
        weights = [Decimal(1)] * len(path)
    if len(path) == 1:
        return [Decimal(1)]
    return _normalise(weights)
