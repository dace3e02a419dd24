"""Postback sources, the raw inbox and the normalised events workers make of it."""

import secrets

from django.core.exceptions import ValidationError
from django.db import models

from portal.lib.networks import parse_networks


def new_source_token() -> str:
    return secrets.token_urlsafe(24)


class SourceKind(models.TextChoices):
    APPSFLYER = "appsflyer", "AppsFlyer"
    ADJUST = "adjust", "Adjust"
    BRANCH = "branch", "Branch"
    SINGULAR = "singular", "Singular"
    KOCHAVA = "kochava", "Kochava"
    S2S = "s2s", "Operator's backend (S2S)"
    SKADNETWORK = "skadnetwork", "Apple SKAdNetwork"
    ADATTRIBUTIONKIT = "adattributionkit", "Apple AdAttributionKit"
    IMPORT = "import", "Imported from another platform"


APPLE_KINDS = (SourceKind.SKADNETWORK, SourceKind.ADATTRIBUTIONKIT)


class RevenueUnit(models.TextChoices):
    DOCUMENTED = "", "As the sender documents each field"
    UNITS = "units", "Whole currency units (4.99)"
    CENTS = "cents", "Cents, minor units (499)"


class ConversionType(models.TextChoices):
    INSTALL = "install"
    REGISTRATION = "registration"
    FTD = "ftd", "First-time deposit"
    DEPOSIT = "deposit"
    PURCHASE = "purchase"
    WITHDRAWAL = "withdrawal"
    BONUS = "bonus"
    CHARGEBACK = "chargeback"
    CUSTOM = "custom"


class PostbackSource(models.Model):
    """One integration that posts to us: an MMP for an app, the operator's backend, or Apple.

    The token in its URL names it. Rotating the token keeps the previous one valid for a grace
    period, so an MMP still configured with it loses nothing while the manager updates it.
    """

    kind = models.CharField(max_length=20, choices=SourceKind.choices)
    name = models.CharField(max_length=200)
    app = models.ForeignKey(
        "affiliates.App", null=True, blank=True, on_delete=models.PROTECT, related_name="sources"
    )
    brand = models.ForeignKey(
        "affiliates.Brand",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sources",
        help_text="For the operator's backend (web and app events of a brand).",
    )
    token = models.CharField(max_length=64, unique=True, default=new_source_token)
    previous_token = models.CharField(max_length=64, blank=True, db_index=True)
    previous_token_valid_until = models.DateTimeField(null=True, blank=True)
    hmac_secret = models.CharField(
        max_length=128,
        blank=True,
        help_text="If set, requests must carry X-Signature: sha256=<hex HMAC of the raw body, "
        "or of the query string for GET>.",
    )
    allowed_networks = models.TextField(
        blank=True,
        help_text="Optional allow-list of sender networks (CIDRs), one per line or comma "
        "separated.",
    )
    event_mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text='Sender event name (any case) to conversion type, e.g. {"af_first_deposit": '
        '"ftd", "registration": "registration"}. Unmapped events are stored as "custom".',
    )
    revenue_unit = models.CharField(
        max_length=8,
        choices=RevenueUnit.choices,
        default=RevenueUnit.DOCUMENTED,
        blank=True,
        help_text="How the revenue in this sender's postbacks is counted. Leave it as documented "
        "unless the MMP's template puts another macro under the revenue parameter: Adjust "
        "{revenue} is in cents and {revenue_float} in units; AppsFlyer event_revenue, Singular "
        "{AMOUNT} and Branch revenue are in units; Kochava leaves it to the template.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        try:
            parse_networks(self.allowed_networks)
        except ValueError as exc:
            raise ValidationError({"allowed_networks": str(exc)}) from exc
        if not isinstance(self.event_mapping, dict):
            raise ValidationError({"event_mapping": "Must be a JSON object."})
        wrong = {v for v in self.event_mapping.values() if v not in ConversionType.values}
        if wrong:
            raise ValidationError(
                {"event_mapping": f"Unknown conversion types: {', '.join(sorted(map(str, wrong)))}"}
            )

    @property
    def path(self) -> str:
        if self.kind == SourceKind.SKADNETWORK:
            return "/.well-known/skadnetwork/report-attribution/"
        if self.kind == SourceKind.ADATTRIBUTIONKIT:
            return "/.well-known/appattribution/report-attribution/"
        return f"/postbacks/{self.kind}/{self.token}/"


class Postback(models.Model):
    """The inbox: one raw row per accepted request, written before the sender hears 200."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        DUPLICATE = "duplicate"
        REJECTED = "rejected"
        FAILED = "failed"

    source = models.ForeignKey(
        PostbackSource, null=True, blank=True, on_delete=models.PROTECT, related_name="postbacks"
    )
    kind = models.CharField(max_length=20, choices=SourceKind.choices)
    method = models.CharField(max_length=8)
    query = models.TextField(blank=True)
    body = models.TextField(blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField()
    # The sender's natural key (appsflyer_id + event + time, txid, transaction-id, ...); rows
    # refused as malformed key on a hash of the raw request, so a retried bad one is stored once.
    dedup_key = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    reason = models.TextField(blank=True)
    signature = models.CharField(
        max_length=16, blank=True, help_text="Apple postbacks: valid, invalid or development."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "dedup_key"],
                condition=models.Q(source__isnull=False),
                name="postback_unique_per_source",
            ),
            # Apple's postbacks come to a fixed path, with no token to name a source.
            models.UniqueConstraint(
                fields=["kind", "dedup_key"],
                condition=models.Q(source__isnull=True),
                name="postback_unique_per_kind_without_source",
            ),
        ]
        indexes = [
            # The sweep and the backlog figure scan only what still waits.
            models.Index(
                fields=["received_at"],
                name="postback_waiting",
                condition=models.Q(status="received"),
            ),
            models.Index(fields=["source", "status", "received_at"], name="postback_health"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class PostbackEvent(models.Model):
    """What a worker made of one inbox row: the sender's fields, normalised."""

    class Kind(models.TextChoices):
        INSTALL = "install"
        EVENT = "event"
        REATTRIBUTION = "reattribution"
        REJECTED = "rejected"

    postback = models.OneToOneField(Postback, on_delete=models.PROTECT, related_name="event")
    source = models.ForeignKey(
        PostbackSource, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    event_name = models.CharField(max_length=255, blank=True)
    conversion_type = models.CharField(max_length=16, choices=ConversionType.choices)
    occurred_at = models.DateTimeField(null=True, blank=True)
    click_id = models.CharField(max_length=64, blank=True)
    mmp_device_id = models.CharField(max_length=128, blank=True)
    gaid = models.CharField(max_length=36, blank=True)
    idfa = models.CharField(max_length=36, blank=True)
    idfv = models.CharField(max_length=36, blank=True)
    app = models.ForeignKey(
        "affiliates.App", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    app_identifier = models.CharField(max_length=255, blank=True)
    platform = models.CharField(max_length=8, blank=True)
    revenue = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    country = models.CharField(max_length=2, blank=True)
    blocked_reason = models.CharField(max_length=255, blank=True)
    touch_type = models.CharField(max_length=16, blank=True)
    touch_time = models.DateTimeField(null=True, blank=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    player_id = models.CharField(max_length=128, blank=True)
    txid = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    is_retargeting = models.BooleanField(default=False)
    # Apple: aggregated, never user-level.
    skan = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["click_id"], name="event_click_id"),
            models.Index(fields=["mmp_device_id"], name="event_mmp_device"),
            # The operator's later reports of a transaction find its first one.
            models.Index(
                fields=["source", "txid"],
                name="event_source_txid",
                condition=~models.Q(txid=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_name} ({self.postback_id})"
