"""The common interface of the postback adapters.

One adapter per sender turns the sender's parameters into a :class:`NormalisedEvent`, or raises
:class:`PostbackError` with a message that names the field and what is wrong with it. Adapters are
framework-free: they take a plain mapping (query parameters merged with the form or JSON body, the
body winning on conflict) and never touch the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_SETTINGS",
    "KINDS",
    "SOURCES",
    "Adapter",
    "NormalisedEvent",
    "Payload",
    "PostbackError",
    "SourceSettings",
]

SOURCES = ("appsflyer", "adjust", "branch", "singular", "kochava", "s2s")
KINDS = ("install", "event", "reattribution", "rejected")

Payload = Mapping[str, Any]


class PostbackError(ValueError):
    """Malformed postback.

    The message names the problem for the sender: it becomes the 400's body and the inbox row's
    reason.
    """


REVENUE_UNITS = ("", "units", "cents")


@dataclass(frozen=True)
class SourceSettings:
    """What a postback source's configuration says about its sender's template.

    ``revenue_unit``: "" reads each revenue field in the unit its sender documents (Adjust
    ``{revenue}`` in cents, ``{revenue_float}`` in units); "units" or "cents" overrides that for a
    template that put another macro under the name (Kochava and Singular leave the names to the
    partner's template).
    """

    revenue_unit: str = ""

    def __post_init__(self) -> None:
        if self.revenue_unit not in REVENUE_UNITS:
            raise ValueError(f"unknown revenue unit {self.revenue_unit!r}")


DEFAULT_SETTINGS = SourceSettings()


@dataclass(frozen=True)
class NormalisedEvent:
    """One postback in the portal's terms, whatever the sender called things.

    Text fields are "" when the sender did not send them (or sent an unfilled macro); datetimes are
    timezone-aware UTC or None; ``revenue`` is an exact :class:`~decimal.Decimal` or None.
    """

    source: str
    kind: str
    event_name: str
    dedup_key: str
    occurred_at: datetime | None
    click_id: str = ""
    mmp_device_id: str = ""
    gaid: str = ""
    idfa: str = ""
    idfv: str = ""
    app_id: str = ""
    platform: str = ""
    revenue: Decimal | None = None
    currency: str = ""
    country: str = ""
    blocked_reason: str = ""
    touch_type: str = ""
    touch_time: datetime | None = None
    installed_at: datetime | None = None
    player_id: str = ""
    txid: str = ""
    status: str = ""
    ip: str = ""
    is_retargeting: bool = False
    # A permanent id of the event type beside its editable name (Adjust's event token): the
    # source's event mapping may key on either.
    event_token: str = ""

    def __post_init__(self) -> None:
        # These guard the adapters' own code, so they are plain ValueErrors, not PostbackErrors:
        # a sender must never be blamed for a bug here.
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")
        if not self.dedup_key:
            raise ValueError("dedup_key must not be empty")
        for name in ("occurred_at", "touch_time", "installed_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() != UTC.utcoffset(None):
                raise ValueError(f"{name} must be timezone-aware UTC")


@runtime_checkable
class Adapter(Protocol):
    """What the ingestion view and the worker call: one instance per source."""

    source: str

    def parse(
        self, payload: Payload, settings: SourceSettings = DEFAULT_SETTINGS
    ) -> NormalisedEvent:
        """Return the normalised event, or raise :class:`PostbackError`."""
        ...
