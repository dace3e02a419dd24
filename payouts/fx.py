"""Foreign exchange from the managers' daily rate table."""

from datetime import date
from decimal import Decimal

from django.conf import settings

from .models import FxRate

RATE_PLACES = Decimal("0.0000000001")


class FxRateMissing(LookupError):
    """No rate on or before the day for a currency: a manager must add one."""


def _to_base(currency: str, day: date) -> Decimal:
    if currency == settings.BASE_CURRENCY:
        return Decimal(1)
    rate = (
        FxRate.objects.filter(currency=currency, day__lte=day)
        .order_by("-day")
        .values_list("rate", flat=True)
        .first()
    )
    if rate is None:
        raise FxRateMissing(f"no {currency} rate on or before {day}")
    return rate


def rate(source: str, target: str, day: date) -> Decimal:
    """How many ``target`` one ``source`` was worth on ``day`` (the latest rates up to it)."""
    source, target = source.upper(), target.upper()
    if source == target:
        return Decimal(1)
    return (_to_base(source, day) / _to_base(target, day)).quantize(RATE_PLACES)
