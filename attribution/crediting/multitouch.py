"""Multi-touch credit for reports: how a conversion's credit splits across the clicks before it.

Money always follows the campaign's own model (last click unless it says first click); these
models only change what reports show. Shares are exact Decimals that add up to one.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.db.models import Q

from attribution.models import Click, Conversion

MODELS = ("first_click", "last_click", "linear", "time_decay", "position_based")
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
