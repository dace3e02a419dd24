"""Rollups the dashboards read: kept by the workers as they go, rebuildable from the raw rows.

Dimensions are plain integers (0 for "none": organic, no campaign) rather than foreign keys so
that the unique key has no NULLs and an upsert can find its row on every database.
"""

from django.db import models

DIMENSIONS = ("affiliate_id", "campaign_id", "channel", "platform", "country", "currency")
# Daily rows also say whose earnings a parent's commission is a share of (0: its own).
DAILY_DIMENSIONS = (*DIMENSIONS, "sub_affiliate_id")
COMMISSION_COUNTERS = ("commission", "sub_commission")
COUNTERS = (
    "clicks",
    "unique_clicks",
    "installs",
    "registrations",
    "ftds",
    "deposits",
    "deposit_amount",
    "revenue",
    "rejected",
    *COMMISSION_COUNTERS,
)
MONEY_COUNTERS = ("deposit_amount", "revenue", *COMMISSION_COUNTERS)
CLICK_COUNTERS = ("clicks", "unique_clicks")
CONVERSION_COUNTERS = tuple(
    c for c in COUNTERS if c not in CLICK_COUNTERS and c not in COMMISSION_COUNTERS
)


class RollupBase(models.Model):
    affiliate_id = models.IntegerField(default=0)
    campaign_id = models.IntegerField(default=0)
    channel = models.CharField(max_length=8)
    # ios, android, web, or skan for SKAdNetwork's aggregated installs
    platform = models.CharField(max_length=8)
    country = models.CharField(max_length=2, blank=True)
    # Money columns are in this currency; counts do not depend on it.
    currency = models.CharField(max_length=3, blank=True)
    clicks = models.BigIntegerField(default=0)
    unique_clicks = models.BigIntegerField(default=0)
    installs = models.BigIntegerField(default=0)
    registrations = models.BigIntegerField(default=0)
    ftds = models.BigIntegerField(default=0)
    deposits = models.BigIntegerField(default=0)
    deposit_amount = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    revenue = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    rejected = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class CommissionCounters(models.Model):
    """The ledger's amounts, counted where the conversion behind them is (in ``currency``, the
    beneficiary's): kept in the transaction that writes or voids the entries. An entry tied to
    no conversion (monthly RevShare, a tier top-up) is counted on its month's last day with no
    campaign, channel, platform or country."""

    commission = models.DecimalField(
        max_digits=20, decimal_places=6, default=0, help_text="The affiliate's own commission."
    )
    sub_commission = models.DecimalField(
        max_digits=20,
        decimal_places=6,
        default=0,
        help_text="The affiliate's share of its sub-affiliates' commission.",
    )

    class Meta:
        abstract = True


class DailyRollup(RollupBase, CommissionCounters):
    """One day in the affiliate's own time zone (UTC for organic rows)."""

    day = models.DateField()
    sub_affiliate_id = models.IntegerField(
        default=0, help_text="For sub_commission: the sub-affiliate who earned what it shares."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", *DAILY_DIMENSIONS], name="daily_rollup_key"),
        ]
        indexes = [models.Index(fields=["affiliate_id", "day"], name="daily_rollup_affiliate")]

    def __str__(self) -> str:
        return f"{self.day} a{self.affiliate_id} c{self.campaign_id} {self.platform}"


class HourlyRollup(RollupBase):
    """One UTC hour, for today's figures."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", *DIMENSIONS], name="hourly_rollup_key"),
        ]
        indexes = [models.Index(fields=["affiliate_id", "hour"], name="hourly_rollup_affiliate")]

    def __str__(self) -> str:
        return f"{self.hour} a{self.affiliate_id} c{self.campaign_id} {self.platform}"


class FillState(models.Model):
    """How far a periodic fill has read an append-only table (the click rollup's watermark)."""

    name = models.CharField(max_length=64, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_id}"


SUB_DIMENSIONS = (*DIMENSIONS, "sub", "value")


class SubRollup(CommissionCounters):
    """Per local day, the figures of each sub id value (sub1..sub5) an affiliate used, on the
    daily rows' dimensions, so that a sub id filters with every other filter."""

    day = models.DateField()
    affiliate_id = models.IntegerField()
    campaign_id = models.IntegerField(default=0)
    channel = models.CharField(max_length=8, default="")
    platform = models.CharField(max_length=8, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    sub = models.PositiveSmallIntegerField(help_text="1 to 5: which sub id")
    value = models.CharField(max_length=255)
    currency = models.CharField(max_length=3, blank=True)
    clicks = models.BigIntegerField(default=0)
    installs = models.BigIntegerField(default=0)
    registrations = models.BigIntegerField(default=0)
    ftds = models.BigIntegerField(default=0)
    deposits = models.BigIntegerField(default=0)
    deposit_amount = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    revenue = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    rejected = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", *SUB_DIMENSIONS], name="sub_rollup_key"),
        ]
        indexes = [
            models.Index(fields=["affiliate_id", "sub", "day"], name="sub_rollup_affiliate"),
            models.Index(fields=["affiliate_id", "sub", "value", "day"], name="sub_rollup_value"),
        ]

    def __str__(self) -> str:
        return f"{self.day} a{self.affiliate_id} sub{self.sub}={self.value}"
