"""Conversions: who earned each install and in-app event, with the reason for every decision."""

from django.db import models
from django.db.models import Q

from .postbacks import ConversionType


class Channel(models.TextChoices):
    MOBILE = "mobile"
    WEB = "web"


class Method(models.TextChoices):
    CLICK_ID = "click_id", "Click id"
    DEVICE_ID = "device_id", "Device id"
    INSTALL_CHAIN = "install_chain", "Install / player chain"
    SKAN = "skan", "SKAdNetwork"
    MANUAL = "manual", "Manual"
    NONE = "none", "Organic"


class Reason(models.TextChoices):
    """Why a conversion has its status. Stable codes: reports, exports and the API use them."""

    OK = "ok", "Attributed"
    ORGANIC = "organic", "Organic (no affiliate touch)"
    DUPLICATE_CLAIM = "duplicate_claim", "Another claim won"
    DUPLICATE_FTD = "duplicate_ftd", "Player already had a first deposit"
    LOW_CTIT = "low_ctit", "Click-to-install time under the minimum (click injection)"
    OUTSIDE_LOOKBACK = "outside_lookback", "Install after the click lookback window"
    BEFORE_CLICK = "before_click", "Install before the click"
    CLICK_FLOODING = "click_flooding", "Affiliate's clicks per install above the threshold"
    MMP_BLOCKED = "mmp_blocked", "Blocked as fraud by the MMP"
    INVALID_SIGNATURE = "invalid_signature", "Invalid Apple signature"
    IP_BURST = "ip_burst", "Burst of conversions from one IP"
    DEVICE_BURST = "device_burst", "Burst of conversions from one device"
    NOT_WINNING = "not_winning", "SKAdNetwork postback that did not win"
    DEVELOPMENT = "development", "Signed with Apple's development key"
    DECLINED = "declined", "Declined by the operator"
    OUTSIDE_GEO = "outside_geo", "Click from a country the campaign does not accept"
    MANAGER = "manager", "Decided by a manager"
    OVER_CAP = "over_cap", "Past a cap of the campaign: held, or credited and not paid"


# What an affiliate is told: a plain word for each decision, never the rule that made it (a rule's
# name and threshold would teach a fraudster where the line is).
RULE_REASONS = frozenset(
    {
        Reason.LOW_CTIT,
        Reason.OUTSIDE_LOOKBACK,
        Reason.BEFORE_CLICK,
        Reason.CLICK_FLOODING,
        Reason.MMP_BLOCKED,
        Reason.INVALID_SIGNATURE,
        Reason.IP_BURST,
        Reason.DEVICE_BURST,
    }
)


class PublicReason(models.TextChoices):
    """Why a conversion has its status, as affiliates see it (dashboard, CSV, API)."""

    OK = "ok", "approved"
    UNDER_REVIEW = "under_review", "under review"
    INVALID_TRAFFIC = "invalid_traffic", "rejected: invalid traffic"
    DUPLICATE = "duplicate", "rejected: already credited"
    NOT_ATTRIBUTED = "not_attributed", "rejected: not attributed"
    DECLINED = "declined", "declined by the operator"
    OUTSIDE_GEO = "outside_geo", "rejected: country not in the offer"
    OVER_CAP = "over_cap", "approved: past the offer's cap, not paid"
    REJECTED = "rejected", "rejected by the program"
    REVERSED = "reversed", "reversed"


def public_reason(status: str, reason: str) -> PublicReason:
    if status == "pending":
        return PublicReason.UNDER_REVIEW
    if status == "reversed":
        return PublicReason.REVERSED
    if status == "approved":
        return PublicReason.OVER_CAP if reason == Reason.OVER_CAP else PublicReason.OK
    if reason in RULE_REASONS:
        return PublicReason.INVALID_TRAFFIC
    if reason in (Reason.DUPLICATE_CLAIM, Reason.DUPLICATE_FTD):
        return PublicReason.DUPLICATE
    if reason in (Reason.NOT_WINNING, Reason.DEVELOPMENT, Reason.ORGANIC):
        return PublicReason.NOT_ATTRIBUTED
    if reason == Reason.DECLINED:
        return PublicReason.DECLINED
    if reason == Reason.OUTSIDE_GEO:
        return PublicReason.OUTSIDE_GEO
    return PublicReason.REJECTED


class Conversion(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved"
        REJECTED = "rejected"
        REVERSED = "reversed"

    class TouchType(models.TextChoices):
        CLICK = "click"
        IMPRESSION = "impression"
        NONE = "", "None"

    type = models.CharField(max_length=16, choices=ConversionType.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    platform = models.CharField(max_length=8)
    app = models.ForeignKey(
        "affiliates.App", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    brand = models.ForeignKey(
        "affiliates.Brand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    campaign = models.ForeignKey(
        "affiliates.Campaign",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="conversions",
    )
    affiliate = models.ForeignKey(
        "affiliates.Affiliate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="conversions",
        help_text="Empty: organic or unattributed.",
    )
    # No database constraint: the click table is partitioned on PostgreSQL, and a foreign key
    # can only point at a key holding the partition key (clicks/partitions.py says how clicks
    # stay: never deleted but by retention, which keeps the ones conversions point at).
    click = models.ForeignKey(
        "attribution.Click",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    method = models.CharField(max_length=16, choices=Method.choices)
    touch_type = models.CharField(max_length=16, choices=TouchType.choices, blank=True)
    occurred_at = models.DateTimeField()
    ctit_seconds = models.BigIntegerField(null=True, blank=True, help_text="Click-to-install time")
    revenue = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    country = models.CharField(max_length=2, blank=True)
    player_key = models.CharField(
        max_length=200, blank=True, help_text="The device or player this conversion belongs to."
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    detail = models.CharField(max_length=500, blank=True)
    # What is claimed (an install of an app on a device, a player's FTD, one event): exactly one
    # conversion per claim holds it (is_winner), enforced by the partial unique index below.
    claim_key = models.CharField(max_length=255)
    is_winner = models.BooleanField(default=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="duplicates"
    )
    event = models.OneToOneField(
        "attribution.PostbackEvent", on_delete=models.PROTECT, related_name="conversion"
    )
    skan_sequence_index = models.PositiveSmallIntegerField(null=True, blank=True)
    skan_conversion_value = models.PositiveSmallIntegerField(null=True, blank=True)
    skan_coarse_value = models.CharField(max_length=8, blank=True)
    # False whenever what the ledger must hold for this conversion may have changed; the ledger
    # sync sets it in the transaction that writes the entries (an outbox, swept by beat).
    ledger_synced = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["claim_key"], condition=Q(is_winner=True), name="conversion_one_winner"
            ),
        ]
        indexes = [
            models.Index(fields=["affiliate", "occurred_at"], name="conversion_affiliate_time"),
            models.Index(fields=["campaign", "occurred_at"], name="conversion_campaign_time"),
            models.Index(fields=["player_key", "occurred_at"], name="conversion_player_time"),
            models.Index(fields=["claim_key"], name="conversion_claim"),
            models.Index(
                fields=["ip", "occurred_at"],
                name="conversion_ip_time",
                condition=Q(ip__isnull=False),
            ),
            models.Index(
                fields=["updated_at"],
                name="conversion_ledger_outbox",
                condition=Q(ledger_synced=False),
            ),
            models.Index(
                fields=["status", "occurred_at"],
                name="conversion_review_queue",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk} ({self.status})"

    @property
    def public_reason(self) -> PublicReason:
        return public_reason(self.status, self.reason)


class FraudPolicy(models.Model):
    """Per-campaign fraud rules. A campaign without one gets the defaults below."""

    class Action(models.TextChoices):
        HOLD = "hold", "Hold for review"
        REJECT = "reject", "Reject"
        OFF = "off", "Off"

    campaign = models.OneToOneField(
        "affiliates.Campaign", on_delete=models.CASCADE, related_name="fraud_policy"
    )
    # Borderline rules hold for a manager's decision by default: a short CTIT or a late install
    # is often a slow MMP clock or a long store download, not fraud. An install before its click
    # and the MMP's own fraud verdict are not borderline, and reject.
    min_ctit_seconds = models.PositiveIntegerField(default=10)
    low_ctit_action = models.CharField(max_length=8, choices=Action.choices, default=Action.HOLD)
    outside_lookback_action = models.CharField(
        max_length=8, choices=Action.choices, default=Action.HOLD
    )
    flood_clicks_per_install = models.PositiveIntegerField(
        default=200, help_text="An affiliate's clicks per install on the campaign above this..."
    )
    flood_window_hours = models.PositiveIntegerField(default=24, help_text="...in this window.")
    flood_min_clicks = models.PositiveIntegerField(
        default=1000, help_text="Below this many clicks in the window the ratio is not judged."
    )
    flood_action = models.CharField(max_length=8, choices=Action.choices, default=Action.HOLD)
    mmp_blocked_action = models.CharField(
        max_length=8, choices=Action.choices, default=Action.REJECT
    )
    burst_max_per_ip = models.PositiveIntegerField(
        default=5, help_text="More conversions of one type from one IP than this..."
    )
    burst_max_per_device = models.PositiveIntegerField(
        default=3, help_text="...or from one device than this..."
    )
    burst_window_minutes = models.PositiveIntegerField(default=60, help_text="...in this window.")
    burst_action = models.CharField(max_length=8, choices=Action.choices, default=Action.HOLD)

    class Meta:
        verbose_name_plural = "fraud policies"

    def __str__(self) -> str:
        return f"Fraud policy of {self.campaign}"


class SkanMapping(models.Model):
    """Which campaign (and affiliate) an SKAdNetwork ad-network id + campaign/source id means."""

    ad_network_id = models.CharField(max_length=100)
    source_identifier = models.CharField(
        max_length=8, help_text="campaign-id (up to SKAN 3) or source-identifier (4.0+)"
    )
    app = models.ForeignKey("affiliates.App", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey("affiliates.Campaign", on_delete=models.PROTECT, related_name="+")
    affiliate = models.ForeignKey(
        "affiliates.Affiliate", on_delete=models.PROTECT, related_name="skan_mappings"
    )

    class Meta:
        verbose_name = "SKAdNetwork mapping"
        constraints = [
            models.UniqueConstraint(
                fields=["app", "ad_network_id", "source_identifier"], name="skan_mapping_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ad_network_id}/{self.source_identifier} -> {self.campaign}"


class Identity(models.Model):
    """A device or player id an install or registration is known by, for chaining later events.

    An install reported with an IDFA and an appsflyer_id is found again by an in-app event that
    carries only the appsflyer_id, and a registration's player id by the operator's deposits.
    """

    key = models.CharField(max_length=200)
    conversion = models.ForeignKey(Conversion, on_delete=models.CASCADE, related_name="identities")
    occurred_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "conversion"], name="identity_unique"),
        ]
        indexes = [models.Index(fields=["key", "occurred_at"], name="identity_lookup")]

    def __str__(self) -> str:
        return self.key
