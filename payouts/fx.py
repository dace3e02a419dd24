"""Foreign exchange from the managers' daily rate table."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from decimal import Decimal

from django.conf import settings

from .models import FxRate

RATE_PLACES = Decimal("0.0000000001")


class FxRateMissing(LookupError):
    """No rate on or before the day for a currency: a manager must add one."""


_memo: ContextVar[dict | None] = ContextVar("fx_memo", default=None)


@contextmanager
def memoized() -> Iterator[None]:
    """Inside, each (currency, day) rate is read once: for a batch that prices many entries."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def _to_base(currency: str, day: date) -> Decimal:
    if currency == settings.BASE_CURRENCY:
        return Decimal(1)
    memo = _memo.get()
    if memo is None:
        return _read_to_base(currency, day)
    if (currency, day) not in memo:
        try:
            memo[currency, day] = _read_to_base(currency, day)
        except FxRateMissing as exc:
            memo[currency, day] = exc
    found = memo[currency, day]
    if isinstance(found, FxRateMissing):
        raise found
    return found


def _read_to_base(currency: str, day: date) -> Decimal:
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
