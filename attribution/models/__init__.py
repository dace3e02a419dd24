"""The attribution domain's models, one module per concern."""

from .clicks import REFERRER_MAX, SUB_MAX, USER_AGENT_MAX, Click, SkippedClicks
from .conversions import (
    RULE_REASONS,
    Channel,
    Conversion,
    FraudPolicy,
    Identity,
    Method,
    PublicReason,
    Reason,
    SkanMapping,
    public_reason,
)
from .outbound import OutboundDelivery, OutboundEndpoint
from .postbacks import (
    APPLE_KINDS,
    ConversionType,
    Postback,
    PostbackEvent,
    PostbackSource,
    RevenueUnit,
    SourceKind,
    new_source_token,
)
from .rollups import DailyRollup, FillState, HourlyRollup, SubRollup

__all__ = [
    "APPLE_KINDS",
    "REFERRER_MAX",
    "RULE_REASONS",
    "SUB_MAX",
    "USER_AGENT_MAX",
    "Channel",
    "Click",
    "Conversion",
    "ConversionType",
    "DailyRollup",
    "FillState",
    "FraudPolicy",
    "HourlyRollup",
    "Identity",
    "Method",
    "OutboundDelivery",
    "OutboundEndpoint",
    "Postback",
    "PostbackEvent",
    "PostbackSource",
    "PublicReason",
    "Reason",
    "RevenueUnit",
    "SkanMapping",
    "SkippedClicks",
    "SourceKind",
    "SubRollup",
    "new_source_token",
    "public_reason",
]
