"""Money: Decimal amounts quantized by their currency's minor unit, never float."""

from decimal import ROUND_HALF_EVEN, Decimal

# ISO 4217 minor units where they differ from two. Three-decimal currencies are kept to two:
# the ledger stores cents, which is what affiliates are paid in.
MINOR_UNITS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "UGX": 0, "XAF": 0, "XOF": 0}


def quantize(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-even to ``currency``'s minor unit."""
    places = MINOR_UNITS.get(currency.upper(), 2)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return amount * percent / Decimal(100)
