"""The plan: what each checked row would do (create, update, leave unchanged)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from affiliates.models import (
    Affiliate,
    Brand,
    Campaign,
    TrackingLink,
)
from attribution.models import (
    Conversion,
)


@dataclass
class AffiliateRow:
    line: int
    external_id: str
    username: str
    email: str
    name: str
    status: str
    parent_external_id: str
    time_zone: str
    currency: str
    created_at: datetime | None
    existing: Affiliate | None = None
    action: str = "created"


@dataclass
class CampaignRow:
    line: int
    external_id: str
    brand: str
    name: str
    fields: dict[str, Any]
    existing: Campaign | None = None
    action: str = "created"

    @property
    def key(self) -> tuple[str, str]:
        return (self.brand, self.name)


@dataclass
class LinkRow:
    line: int
    code: str
    affiliate_external_id: str
    campaign_external_id: str
    subs: tuple[str, ...]
    legacy: tuple[str, str] | None
    existing: TrackingLink | None = None
    action: str = "created"
    legacy_action: str = ""


@dataclass
class ConversionRow:
    line: int
    external_id: str
    raw: dict[str, str]
    click_id: str
    affiliate_external_id: str
    campaign_external_id: str
    type: str
    status: str
    occurred_at: datetime
    revenue: Decimal | None
    currency: str
    player_id: str
    platform: str
    country: str
    existing: Conversion | None = None
    action: str = "created"

    @property
    def dedup_key(self) -> str:
        return f"import:{self.external_id}"


# A new click's values, in the order the writer inserts them (write.CLICK_COLUMNS).
ClickValues = tuple


@dataclass
class Plan:
    affiliates: dict[str, AffiliateRow] = field(default_factory=dict)
    brands: dict[str, Brand | None] = field(default_factory=dict)
    campaigns: dict[str, CampaignRow] = field(default_factory=dict)
    links: dict[str, LinkRow] = field(default_factory=dict)
    clicks: list[ClickValues] = field(default_factory=list)
    # click_id -> link code, for every click of the file (new or already here)
    click_links: dict[str, str] = field(default_factory=dict)
    # link code -> (username, (brand, campaign name)) for links already here and not in the file
    known_links: dict[str, tuple[str, tuple[str, str]]] = field(default_factory=dict)
    # click_id -> (username, (brand, campaign)) for clicks conversions name that are already here
    known_clicks: dict[str, tuple[str, tuple[str, str]]] = field(default_factory=dict)
    conversions: dict[str, ConversionRow] = field(default_factory=dict)
    moments: list[datetime] = field(default_factory=list)  # what the rollups must cover
