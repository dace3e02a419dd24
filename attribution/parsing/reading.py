"""One reading of a postback, shared by the door and the worker.

The door answers 400 for what this refuses and stores exactly the text it read; the worker reads
that stored text with the same function. So the worker never meets a value the door did not
accept: an amount that would overflow its column, or a key the door and the worker would read
differently (the door used to parse the raw body and the worker a control-character-stripped copy
of it).
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from attribution.parsing.adapters import (
    DEFAULT_SETTINGS,
    NormalisedEvent,
    PostbackError,
    SourceSettings,
    get_adapter,
)
from attribution.parsing.wire import payload_of

# The columns an amount is stored in are numeric(18, 6): PostbackEvent.revenue and
# Conversion.revenue (a test holds the models to these numbers).
AMOUNT_DIGITS = 18
AMOUNT_PLACES = 6
AMOUNT_LIMIT = Decimal(10) ** (AMOUNT_DIGITS - AMOUNT_PLACES)

# attribution.models.ConversionType's values (a test holds them equal): parsing knows no models.
CONVERSION_TYPES = (
    "install",
    "registration",
    "ftd",
    "deposit",
    "purchase",
    "withdrawal",
    "bonus",
    "chargeback",
    "custom",
)

# What common event names mean when a source's own mapping does not say.
DEFAULT_EVENT_MAPPING = {
    "install": "install",
    "registration": "registration",
    "complete_registration": "registration",
    "af_complete_registration": "registration",
    "sign_up": "registration",
    "signup": "registration",
    "reg": "registration",
    "ftd": "ftd",
    "first_deposit": "ftd",
    "af_first_deposit": "ftd",
    "deposit": "deposit",
    "af_deposit": "deposit",
    "purchase": "purchase",
    "af_purchase": "purchase",
    "withdrawal": "withdrawal",
    "bonus": "bonus",
    "chargeback": "chargeback",
}

# The type gives an amount its sign: the ledger subtracts withdrawals, bonuses and chargebacks
# (net revenue = deposits - withdrawals - bonuses - chargebacks), so each is reported as the
# positive sum of money that moved. Only a custom event's amount may be below zero.
SIGNED_TYPES = frozenset({"custom"})


def conversion_type_for(
    *, kind: str, event_name: str, mapping: dict[str, Any] | None, event_token: str = ""
) -> str:
    """Our conversion type for a sender's event: the source's mapping (by the event's permanent
    token where the sender has one, as Adjust does, then by name), then the defaults."""
    name = event_name.strip().lower()
    own = {str(k).strip().lower(): v for k, v in (mapping or {}).items()}
    for key in (event_token.strip().lower(), name):
        if key and key in own and own[key] in CONVERSION_TYPES:
            return own[key]
    if kind in ("install", "reattribution"):
        return "install"
    return DEFAULT_EVENT_MAPPING.get(name, "custom")


def amount_problem(amount: Decimal, *, conversion_type: str, label: str = "revenue") -> str:
    """Why ``amount`` cannot be stored for an event of ``conversion_type``; "" when it can."""
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # adapters give finite amounts only
    if abs(amount) >= AMOUNT_LIMIT:
        return f"{label} {amount} is too large (the limit is below {AMOUNT_LIMIT:,})"
    if amount and -exponent > AMOUNT_PLACES:
        return f"{label} {amount} has more than {AMOUNT_PLACES} decimal places"
    if amount < 0 and conversion_type not in SIGNED_TYPES:
        return (
            f"{label} {amount} is negative; a {conversion_type} is reported as a positive "
            "amount (its type says whether it adds or subtracts)"
        )
    return ""


@dataclass(frozen=True)
class Reading:
    event: NormalisedEvent
    conversion_type: str


def read_postback(
    *,
    kind: str,
    method: str,
    query: str,
    body: str,
    content_type: str,
    event_mapping: dict[str, Any] | None,
    settings: SourceSettings = DEFAULT_SETTINGS,
) -> Reading:
    """The normalised event of a postback and its conversion type, as the source's settings
    say to read it; PostbackError (or ``wire.Malformed``) says why it cannot be taken."""
    payload = payload_of(method=method, query=query, body=body, content_type=content_type)
    event = get_adapter(kind).parse(payload, settings)
    conversion_type = conversion_type_for(
        kind=event.kind,
        event_name=event.event_name,
        mapping=event_mapping,
        event_token=event.event_token,
    )
    if event.revenue is not None and (
        problem := amount_problem(event.revenue, conversion_type=conversion_type)
    ):
        raise PostbackError(problem)
    return Reading(event, conversion_type)
