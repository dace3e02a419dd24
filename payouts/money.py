"""Money: Decimal amounts quantized by their currency's minor unit, never float."""

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

# ISO 4217 minor units where they differ from two. Three-decimal currencies are kept to two:
# the ledger stores cents, which is what affiliates are paid in.
MINOR_UNITS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "UGX": 0, "XAF": 0, "XOF": 0}


def quantize(amount: Decimal, currency: str, *, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``amount`` rounded (half-even unless told) to ``currency``'s minor unit."""
    places = MINOR_UNITS.get(currency.upper(), 2)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=rounding)


def quantize_down(amount: Decimal, currency: str) -> Decimal:
    """``amount`` cut to ``currency``'s minor unit: never more than it was."""
    return quantize(amount, currency, rounding=ROUND_DOWN)


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return amount * percent / Decimal(100)
