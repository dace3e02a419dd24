"""Commission plans, FX rates, the append-only commission ledger, payout runs and payouts."""

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from affiliates.models import validate_time_zone
from attribution.models import ConversionType

MONEY = {"max_digits": 18, "decimal_places": 2}
# What an NGR plan may take off GGR (the columns of PlayerActivity of the same names).
NGR_DEDUCTIONS = ("bonuses", "chargebacks", "taxes", "fees")


def every_ngr_deduction() -> list[str]:
    return list(NGR_DEDUCTIONS)


PERCENT = {
    "max_digits": 7,
    "decimal_places": 4,
    "validators": [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
}


class CommissionPlan(models.Model):
    """A deal: CPA, RevShare, hybrid, tiered and multi-tier, in versions over time."""

    name = models.CharField(max_length=200, unique=True)
    currency = models.CharField(max_length=3, default="EUR")
    hold_days = models.PositiveSmallIntegerField(
        default=30, help_text="Entries become payable this many days after the conversion."
    )
    negative_carryover = models.BooleanField(
        default=True,
        help_text="Carry a negative RevShare balance into the next period (off: reset to zero "
        "each period).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PlanVersion(models.Model):
    """The plan's terms from ``valid_from`` on; a conversion is paid by the version in force
    when it occurred. Versions are added, never edited once conversions have used them."""

    class TierMode(models.TextChoices):
        PROGRESSIVE = "progressive", "Progressive: each FTD at the tier it falls in"
        RETROACTIVE = "retroactive", "Retroactive: the month's tier for every FTD of the month"

    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT, related_name="versions")
    valid_from = models.DateTimeField()
    revshare_percent = models.DecimalField(**PERCENT, default=Decimal(0))
    admin_fee_percent = models.DecimalField(
        **PERCENT, default=Decimal(0), help_text="Fees taken off deposits before RevShare."
    )
    tier_mode = models.CharField(
        max_length=12, choices=TierMode.choices, default=TierMode.PROGRESSIVE
    )
    baseline_ftds = models.PositiveIntegerField(
        default=0, help_text="The first N qualified FTDs of each month earn no CPA."
    )
    subaffiliate_percents = models.JSONField(
        default=list,
        blank=True,
        help_text='Percent of a sub-affiliate\'s commission per level up, e.g. ["10", "5"]: the '
        "parent earns 10%, the grandparent 5%.",
    )
    revshare_basis = models.CharField(
        max_length=8,
        choices=[("deposits", "Deposits (operator postbacks)"), ("ngr", "NGR (player activity)")],
        default="deposits",
        help_text="What RevShare is a share of: deposits - withdrawals - bonuses - chargebacks - "
        "admin fee % of deposits, or the operator's player activity: GGR - the deductions "
        "below - admin fee % of GGR.",
    )
    ngr_deductions = models.JSONField(
        default=every_ngr_deduction,
        blank=True,
        help_text='NGR basis: what is taken off GGR, any of ["bonuses", "chargebacks", "taxes", '
        '"fees"].',
    )
    product_percents = models.JSONField(
        default=dict,
        blank=True,
        help_text='NGR basis: a RevShare percent per product, e.g. {"casino": "30", '
        '"sportsbook": "25"}; other products get the version\'s (or its tier\'s) percent.',
    )

    class Meta:
        ordering = ["plan", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "valid_from"], name="plan_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.plan} from {self.valid_from:%Y-%m-%d}"

    def clean(self) -> None:
        try:
            levels = [Decimal(str(p)) for p in self.subaffiliate_percents]
        except (ArithmeticError, TypeError, ValueError):
            raise ValidationError({"subaffiliate_percents": "A list of percents."}) from None
        if any(not Decimal(0) <= p <= Decimal(100) for p in levels):
            raise ValidationError({"subaffiliate_percents": "Each level is 0 to 100 percent."})
        if not isinstance(self.ngr_deductions, list) or not set(self.ngr_deductions) <= set(
            NGR_DEDUCTIONS
        ):
            raise ValidationError({"ngr_deductions": f"A list of {', '.join(NGR_DEDUCTIONS)}."})
        try:
            products = {
                str(k): Decimal(str(v)) for k, v in dict(self.product_percents or {}).items()
            }
        except (ArithmeticError, TypeError, ValueError):
            raise ValidationError({"product_percents": "Product to percent."}) from None
        if any(not Decimal(0) <= p <= Decimal(100) for p in products.values()):
            raise ValidationError({"product_percents": "Each percent is 0 to 100."})


class CpaRule(models.Model):
    """A fixed amount per qualifying conversion of a type, with optional qualifications."""

    version = models.ForeignKey(PlanVersion, on_delete=models.CASCADE, related_name="cpa_rules")
    conversion_type = models.CharField(max_length=16, choices=ConversionType.choices)
    amount = models.DecimalField(**MONEY)
    min_amount = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Qualifies only from this deposit amount."
    )
    countries = models.CharField(
        max_length=300, blank=True, help_text="Comma-separated ISO codes; empty: all."
    )
    platform = models.CharField(max_length=8, blank=True, help_text="ios, android or web")
    channel = models.CharField(max_length=8, blank=True, help_text="mobile or web")

    def __str__(self) -> str:
        return f"{self.conversion_type}: {self.amount}"


class Tier(models.Model):
    """From the month's ``from_ftds``-th qualified FTD on, a different CPA amount or RevShare %."""

    version = models.ForeignKey(PlanVersion, on_delete=models.CASCADE, related_name="tiers")
    from_ftds = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    cpa_amount = models.DecimalField(**MONEY, null=True, blank=True)
    revshare_percent = models.DecimalField(**PERCENT, null=True, blank=True)

    class Meta:
        ordering = ["version", "from_ftds"]
        constraints = [
            models.UniqueConstraint(fields=["version", "from_ftds"], name="tier_unique"),
        ]

    def __str__(self) -> str:
        return f"from FTD {self.from_ftds}"


class PlanAssignment(models.Model):
    """Which plan pays an affiliate on a campaign. Empty affiliate: the campaign's default."""

    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT, related_name="assignments")
    campaign = models.ForeignKey(
        "affiliates.Campaign", on_delete=models.CASCADE, related_name="plan_assignments"
    )
    affiliate = models.ForeignKey(
        "affiliates.Affiliate",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="plan_assignments",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "affiliate"],
                condition=Q(affiliate__isnull=False),
                name="assignment_unique",
            ),
            models.UniqueConstraint(
                fields=["campaign"],
                condition=Q(affiliate__isnull=True),
                name="assignment_one_default",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.affiliate or 'default'} @ {self.campaign}: {self.plan}"


class FxRate(models.Model):
    """How many units of the base currency one unit of ``currency`` was worth on ``day``."""

    day = models.DateField()
    currency = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=20, decimal_places=10)

    class Meta:
        ordering = ["-day", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["day", "currency"], name="fx_unique"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fx_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.currency} = {self.rate} {settings.BASE_CURRENCY}"


class LedgerEntry(models.Model):
    """One line of the commission ledger. Append-only: amounts are never edited; a reversal is
    a new negative entry, and statuses move forward with an audit row."""

    class Kind(models.TextChoices):
        CPA = "cpa", "CPA"
        REVSHARE = "revshare", "RevShare"
        SUBAFFILIATE = "subaffiliate", "Sub-affiliate"
        ADJUSTMENT = "adjustment", "Adjustment"
        REVERSAL = "reversal", "Reversal"

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        PAID = "paid"
        VOID = "void"

    # What this entry is, uniquely: "cpa:c<conversion>:a<beneficiary>:g<generation>" and the
    # like. A second accrual of the same thing hits this constraint instead of paying twice.
    key = models.CharField(max_length=200)
    # ledger_payable (beneficiary, status, available_at) serves lookups by beneficiary too.
    beneficiary = models.ForeignKey(
        "affiliates.Affiliate", on_delete=models.PROTECT, related_name="ledger", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    conversion = models.ForeignKey(
        "attribution.Conversion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_entries",
    )
    period = models.DateField(null=True, blank=True, help_text="First day of a RevShare month")
    source_entry = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="derived",
        help_text="The entry a reversal undoes, or a sub-affiliate share is taken from.",
    )
    plan_version = models.ForeignKey(
        PlanVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    amount = models.DecimalField(**MONEY, help_text="In the beneficiary's currency")
    currency = models.CharField(max_length=3)
    original_amount = models.DecimalField(max_digits=20, decimal_places=6)
    original_currency = models.CharField(max_length=3)
    fx_rate = models.DecimalField(
        max_digits=20, decimal_places=10, help_text="original x rate = amount, frozen at accrual"
    )
    status = models.CharField(max_length=10, choices=Status.choices)
    available_at = models.DateTimeField(help_text="Payable from here on (after the hold)")
    payout = models.ForeignKey(
        "payouts.Payout", null=True, blank=True, on_delete=models.PROTECT, related_name="lines"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            # A constraint, not unique=True: on PostgreSQL that adds a LIKE index nobody uses.
            models.UniqueConstraint(fields=["key"], name="ledger_unique_key"),
            # A reversal undoes exactly one entry, once.
            models.UniqueConstraint(
                fields=["source_entry"],
                condition=Q(kind="reversal"),
                name="ledger_one_reversal_per_entry",
            ),
        ]
        indexes = [
            models.Index(fields=["beneficiary", "status", "available_at"], name="ledger_payable"),
        ]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} -> {self.beneficiary_id}"


class RevShareStatement(models.Model):
    """One affiliate's RevShare for one month of one plan: how the entry was worked out."""

    affiliate = models.ForeignKey("affiliates.Affiliate", on_delete=models.PROTECT)
    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT)
    period = models.DateField(help_text="First day of the month")
    deposits = models.DecimalField(**MONEY, default=Decimal(0))
    withdrawals = models.DecimalField(**MONEY, default=Decimal(0))
    bonuses = models.DecimalField(**MONEY, default=Decimal(0))
    chargebacks = models.DecimalField(**MONEY, default=Decimal(0))
    fees = models.DecimalField(**MONEY, default=Decimal(0))
    net_revenue = models.DecimalField(**MONEY)
    carried_in = models.DecimalField(**MONEY, default=Decimal(0))
    percent = models.DecimalField(**PERCENT)
    commission = models.DecimalField(**MONEY, help_text="In the plan's currency")
    carried_out = models.DecimalField(**MONEY, default=Decimal(0))
    entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["affiliate", "plan", "period"], name="revshare_statement_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.affiliate_id} {self.period:%Y-%m}: {self.commission}"


class PayoutRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        DRAFT = "draft", "Draft: awaiting approval"
        APPROVED = "approved"
        PAID = "paid"
        CANCELLED = "cancelled"

    period_start = models.DateField()
    period_end = models.DateField(help_text="Last day included (in each affiliate's time zone)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    total_affiliates = models.PositiveIntegerField(default=0)
    done_affiliates = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["period_start", "period_end"],
                condition=~Q(status="cancelled"),
                name="payout_run_one_per_period",
            ),
        ]

    def __str__(self) -> str:
        return f"Payout run {self.period_start} .. {self.period_end} ({self.status})"

    @property
    def progress(self) -> str:
        if not self.total_affiliates:
            return "-"
        return f"{self.done_affiliates}/{self.total_affiliates}"


class Payout(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved"
        PAID = "paid"
        CANCELLED = "cancelled"

    run = models.ForeignKey(PayoutRun, on_delete=models.PROTECT, related_name="payouts")
    affiliate = models.ForeignKey(
        "affiliates.Affiliate", on_delete=models.PROTECT, related_name="payouts"
    )
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    reference = models.CharField(max_length=200, blank=True, help_text="Bank or wallet reference")
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "affiliate", "currency"], name="payout_one_per_run"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} to {self.affiliate_id}"


class NgrTier(models.Model):
    """From a month's NGR of ``from_ngr`` (plan currency) on, a different RevShare percent."""

    version = models.ForeignKey(PlanVersion, on_delete=models.CASCADE, related_name="ngr_tiers")
    from_ngr = models.DecimalField(**MONEY)
    revshare_percent = models.DecimalField(**PERCENT)

    class Meta:
        ordering = ["version", "from_ngr"]
        constraints = [
            models.UniqueConstraint(fields=["version", "from_ngr"], name="ngr_tier_unique"),
        ]

    def __str__(self) -> str:
        return f"from NGR {self.from_ngr}: {self.revshare_percent}%"


def new_brand_key() -> str:
    return secrets.token_urlsafe(32)


class BrandApiToken(models.Model):
    """The operator's platform sends its player activity with this: ``Authorization: Brand
    <key>``. It can send for its own brand only, and nothing else."""

    brand = models.ForeignKey("affiliates.Brand", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64, default=new_brand_key, editable=False)
    name = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key"], name="brand_token_unique")]

    def __str__(self) -> str:
        return f"{self.brand}: {self.name or self.key[:6]}"


AMOUNT = {"max_digits": 18, "decimal_places": 4}
# The amounts of a row, in the order of the API and CSV.
ACTIVITY_AMOUNTS = (
    "bets",
    "wins",
    "ggr",
    "bonuses",
    "chargebacks",
    "taxes",
    "fees",
    "deposits",
    "withdrawals",
)


class PlayerActivity(models.Model):
    """One player's activity on one day and product, as the operator's platform reports it.

    Kept whether or not the player is known yet: a player is credited to the affiliate whose
    registration or FTD of that player won, whenever that is attributed. A row sent again with
    other amounts replaces these (``revision`` counts up, ``PlayerActivityRevision`` keeps the
    old ones).
    """

    brand = models.ForeignKey("affiliates.Brand", on_delete=models.PROTECT, related_name="+")
    player_id = models.CharField(max_length=100, help_text="The operator's player id")
    day = models.DateField()
    product = models.CharField(max_length=32)
    currency = models.CharField(max_length=3)
    bets = models.DecimalField(**AMOUNT, null=True, blank=True)
    wins = models.DecimalField(**AMOUNT, null=True, blank=True)
    ggr = models.DecimalField(**AMOUNT, help_text="Bets - wins, unless the operator sent it")
    bonuses = models.DecimalField(**AMOUNT, default=Decimal(0))
    chargebacks = models.DecimalField(**AMOUNT, default=Decimal(0))
    taxes = models.DecimalField(**AMOUNT, default=Decimal(0))
    fees = models.DecimalField(**AMOUNT, default=Decimal(0))
    deposits = models.DecimalField(**AMOUNT, default=Decimal(0))
    withdrawals = models.DecimalField(**AMOUNT, default=Decimal(0))
    revision = models.PositiveIntegerField(default=1)
    received_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "player_id", "day", "product"], name="activity_unique"
            ),
        ]
        indexes = [models.Index(fields=["day"], name="activity_day")]
        verbose_name_plural = "player activity"

    def __str__(self) -> str:
        return f"{self.player_id} {self.day} {self.product}"


class PlayerActivityRevision(models.Model):
    """An audit row: a reported day of a player replaced by a revised one (who, when, old,
    new)."""

    activity = models.ForeignKey(PlayerActivity, on_delete=models.CASCADE, related_name="+")
    revision = models.PositiveIntegerField(help_text="The revision this one replaced")
    old = models.JSONField()
    new = models.JSONField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    token = models.ForeignKey(
        BrandApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["activity", "revision"]

    def __str__(self) -> str:
        return f"activity {self.activity_id} revision {self.revision}"


class NgrStatement(models.Model):
    """One affiliate's NGR RevShare for one month of one plan: the month's own commission, and
    the adjustment that brings earlier months in line with activity that arrived since."""

    affiliate = models.ForeignKey("affiliates.Affiliate", on_delete=models.PROTECT)
    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT)
    period = models.DateField(help_text="First day of the month")
    products = models.JSONField(
        help_text="Per product: ggr, deductions, admin fee, ngr, carried in, percent, "
        "commission, carried out (decimal strings, plan currency)"
    )
    ngr = models.DecimalField(**MONEY)
    commission = models.DecimalField(**MONEY, help_text="This month's, in the plan's currency")
    adjustment = models.DecimalField(
        **MONEY, default=Decimal(0), help_text="For earlier months, in the plan's currency"
    )
    entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    adjustment_entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["affiliate", "plan", "period"], name="ngr_statement_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.affiliate_id} {self.period:%Y-%m}: {self.commission}"


class InvoiceCounter(models.Model):
    """The last invoice number of a year: numbers run without gaps, one after another."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class Invoice(models.Model):
    """The self-billing invoice of an approved or paid payout: numbered once, never changed.
    Issuer and recipient are copied as they were when it was issued."""

    payout = models.OneToOneField(Payout, on_delete=models.PROTECT, related_name="invoice")
    number = models.CharField(max_length=32, unique=True)
    issued_at = models.DateTimeField()
    issuer = models.TextField(help_text="The operator: name, address, VAT id")
    recipient = models.TextField(help_text="The affiliate: company, address, VAT id")
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["-issued_at", "-pk"]

    def __str__(self) -> str:
        return self.number


class Cap(models.Model):
    """A limit on what a campaign (or one affiliate on it) may earn in a day, week or month.

    Counted where the ledger prices a conversion, after the affiliate's FTD turn, on a counter
    row per period locked until the commit: however many workers accrue at once, no more than
    the limit is ever credited. Several caps may apply; whichever is reached first stops the
    conversion (Everflow's rule of precedence). A manager's approval of a held conversion is
    not counted again: the manager decided to pay it.
    """

    class Period(models.TextChoices):
        DAY = "day", "Daily"
        WEEK = "week", "Weekly (from Monday)"
        MONTH = "month", "Monthly"

    class Metric(models.TextChoices):
        CONVERSIONS = "conversions", "Conversions of a type"
        PAYOUT = "payout", "Commission paid (CPA)"

    class Action(models.TextChoices):
        HOLD = "hold", "Hold for a manager's review"
        UNPAID = "unpaid", "Credit the conversion, pay nothing"
        FALLBACK = "fallback", "Pay nothing and send new clicks to the fallback URL"

    campaign = models.ForeignKey(
        "affiliates.Campaign", on_delete=models.CASCADE, related_name="caps"
    )
    affiliate = models.ForeignKey(
        "affiliates.Affiliate",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="caps",
        help_text="Empty: the whole campaign, every affiliate's conversions counted together.",
    )
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.DAY)
    metric = models.CharField(max_length=12, choices=Metric.choices, default=Metric.CONVERSIONS)
    conversion_type = models.CharField(
        max_length=16,
        choices=ConversionType.choices,
        default=ConversionType.FTD,
        help_text="What a conversions cap counts.",
    )
    limit = models.DecimalField(
        max_digits=18,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(1))],
        help_text="Conversions (a whole number) or an amount in the cap's currency.",
    )
    currency = models.CharField(
        max_length=3, default="EUR", help_text="A payout cap's currency (ISO 4217)."
    )
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.HOLD)
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="Where the cap's days, weeks and months begin (IANA name, e.g. Europe/Malta).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign_id", "pk"]
        indexes = [models.Index(fields=["campaign", "is_active"])]
        constraints = [models.CheckConstraint(condition=Q(limit__gt=0), name="cap_positive")]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.describe()}"

    def describe(self) -> str:
        """The cap in words, as an affiliate reads it on the offer."""
        period = {"day": "day", "week": "week", "month": "month"}[self.period]
        if self.metric == self.Metric.PAYOUT:
            what = f"{self.limit} {self.currency} of commission"
        else:
            what = f"{int(self.limit)} {ConversionType(self.conversion_type).label}s"
        whom = "for you" if self.affiliate_id else "for the whole offer"
        return f"{what} a {period} {whom}"

    def clean(self) -> None:
        errors = {}
        whole = self.limit is None or self.limit == self.limit.to_integral_value()
        if self.metric == self.Metric.CONVERSIONS and not whole:
            errors["limit"] = "A conversions cap counts whole conversions."
        if self.metric == self.Metric.PAYOUT:
            code = (self.currency or "").upper()
            if len(code) != 3 or not code.isalpha():
                errors["currency"] = "A three-letter currency code, e.g. EUR."
            self.currency = code
        if (
            self.action == self.Action.FALLBACK
            and self.campaign_id
            and not self.campaign.fallback_url
        ):
            errors["action"] = "The campaign has no fallback URL to send clicks to."
        if errors:
            raise ValidationError(errors)


class CapUsage(models.Model):
    """What a cap has counted in one of its periods; the row is the lock that serialises it."""

    cap = models.ForeignKey(Cap, on_delete=models.CASCADE, related_name="usages")
    period_start = models.DateField(help_text="The period's first day, in the cap's time zone")
    ends_at = models.DateTimeField(help_text="When the period ends")
    conversions = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(**MONEY, default=Decimal(0))
    reached_at = models.DateTimeField(
        null=True, blank=True, help_text="When the limit was reached in this period"
    )

    class Meta:
        ordering = ["cap_id", "-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["cap", "period_start"], name="cap_usage_once"),
        ]
        indexes = [
            models.Index(
                fields=["ends_at"], condition=Q(reached_at__isnull=False), name="cap_usage_reached"
            )
        ]

    def __str__(self) -> str:
        return f"cap {self.cap_id} from {self.period_start}: {self.conversions} / {self.amount}"


FACT = {"max_digits": 30, "decimal_places": 12, "default": Decimal(0)}


class CohortFact(models.Model):
    """A player's money in one month and currency, kept for the cohort report so that it is one
    GROUP BY (``payouts.cohort_facts``), with who brought the player and their cohort months.

    Each player has one row without a month (counting them once) and one per month and
    currency of their activity, in that currency (converted when read, at the month's last day,
    as the report always did), plus one per CPA entry's day and currency. Rebuilt per player
    when anything it comes from changes (``CohortStale``).
    """

    brand_id = models.IntegerField()
    player_id = models.CharField(max_length=100)
    affiliate_id = models.IntegerField(null=True)
    campaign_id = models.IntegerField(null=True)
    channel = models.CharField(max_length=8, blank=True)
    registration_month = models.DateField(null=True)
    ftd_month = models.DateField(null=True)
    month = models.DateField(null=True, help_text="Empty: the player's own row")
    day = models.DateField(null=True, help_text="A CPA entry's day (its rate); else empty")
    currency = models.CharField(max_length=3, blank=True)
    deposits = models.DecimalField(**FACT)
    ngr = models.DecimalField(**FACT)
    commission = models.DecimalField(**FACT)
    active = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["brand_id", "player_id"], name="cohort_fact_player"),
            models.Index(fields=["affiliate_id", "ftd_month"], name="cohort_fact_ftd"),
            models.Index(fields=["affiliate_id", "registration_month"], name="cohort_fact_reg"),
            # The CPA rows alone (a few per player), read apart from the activity rows.
            models.Index(
                fields=["affiliate_id"], condition=Q(day__isnull=False), name="cohort_fact_cpa"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand_id}:{self.player_id} {self.month}"


class CohortStale(models.Model):
    """A player whose cohort facts must be worked out again; brand 0 and player "*": all.

    Marking an already stale player updates its row (``marked_at``), so a marker waits for a
    refresh holding that row: a change committed while the refresh reads is never lost.
    """

    brand_id = models.IntegerField()
    player_id = models.CharField(max_length=100)
    marked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["brand_id", "player_id"], name="cohort_stale_once")
        ]

    def __str__(self) -> str:
        return f"{self.brand_id}:{self.player_id}"
