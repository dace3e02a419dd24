"""Affiliates, the offers they promote (brands, campaigns, apps) and their tracking links."""

import secrets
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone")


class URLField(models.URLField):
    """A URL field whose form assumes https:// when a manager types a bare domain."""

    def formfield(self, **kwargs):
        return super().formfield(**{"assume_scheme": "https", **kwargs})


class Platform(models.TextChoices):
    IOS = "ios", "iOS"
    ANDROID = "android", "Android"
    WEB = "web", "Web"


def new_referral_code() -> str:
    return secrets.token_urlsafe(6)[:8]


class Affiliate(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        SUSPENDED = "suspended"
        REJECTED = "rejected"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="affiliate"
    )
    name = models.CharField(max_length=200, help_text="Company or display name")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sub_affiliates",
        help_text="The affiliate who referred this one (multi-tier commissions).",
    )
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_affiliates",
        limit_choices_to={"is_staff": True},
    )
    # Validated, not a choices list: the zone list changes with tzdata and would churn migrations.
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    two_factor = models.BooleanField(
        default=False,
        help_text="The affiliate turned on a one-time code from an authenticator for their login.",
    )
    currency = models.CharField(max_length=3, default="EUR")
    referral_code = models.CharField(
        max_length=16,
        unique=True,
        default=new_referral_code,
        editable=False,
        help_text="Sign-ups through /signup/?ref=<code> become this affiliate's sub-affiliates.",
    )
    minimum_payout = models.DecimalField(
        max_digits=18,
        decimal_places=2,
        default=Decimal("50.00"),
        help_text="Below this a balance carries over to the next payout run.",
    )
    website = URLField(max_length=500, blank=True, help_text="Their site, if they have one")
    traffic_sources = models.TextField(
        max_length=1000, blank=True, help_text="Where their visitors come from, in their words"
    )
    country = models.CharField(max_length=2, blank=True, help_text="ISO code")
    messenger = models.CharField(
        max_length=100, blank=True, help_text="Telegram, Skype, WhatsApp... and the handle"
    )
    company = models.CharField(
        max_length=200, blank=True, help_text="Legal name invoices are made out to"
    )
    vat_id = models.CharField("VAT id", max_length=32, blank=True)
    address = models.TextField(max_length=500, blank=True, help_text="Postal address for invoices")
    payment_details = models.TextField(
        blank=True,
        max_length=1000,
        help_text="Where payouts go: bank (IBAN, SWIFT) or wallet, as the affiliate gave them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(parent=models.F("id")), name="affiliate_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class AffiliateNote(models.Model):
    """A manager's note on an affiliate: calls, deals, warnings. Kept, never edited."""

    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.text[:60]


class Brand(models.Model):
    name = models.CharField(max_length=200, unique=True)
    website = URLField(blank=True)
    currency = models.CharField(max_length=3, default="EUR")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class App(models.Model):
    class MMP(models.TextChoices):
        APPSFLYER = "appsflyer", "AppsFlyer"
        ADJUST = "adjust", "Adjust"
        BRANCH = "branch", "Branch"
        SINGULAR = "singular", "Singular"
        KOCHAVA = "kochava", "Kochava"
        NONE = "none", "None (operator's backend)"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="apps")
    name = models.CharField(max_length=200)
    platform = models.CharField(
        max_length=8, choices=[(Platform.IOS, "iOS"), (Platform.ANDROID, "Android")]
    )
    bundle_id = models.CharField(
        max_length=255, help_text="iOS bundle id or Android package name, e.g. com.example.casino"
    )
    app_store_id = models.CharField(
        max_length=32, blank=True, help_text="Numeric App Store id (iOS), without the 'id' prefix"
    )
    mmp = models.CharField(max_length=16, choices=MMP.choices, default=MMP.APPSFLYER)
    skan_schema = models.JSONField(
        default=dict,
        blank=True,
        help_text="SKAdNetwork conversion-value schema: fine value or coarse value to a conversion "
        'type, e.g. {"1": "registration", "2": "ftd", "high": "ftd"}; ranges as "10-19".',
    )

    class Meta:
        ordering = ["brand__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "bundle_id"], name="app_unique_bundle"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"


def is_country_code(code: str) -> bool:
    """Two ASCII letters, as ISO 3166 alpha-2 codes are (upper or lower case)."""
    return len(code) == 2 and code.isascii() and code.isalpha()


def country_set(countries: str) -> frozenset[str]:
    """``"DE, at,CH"`` as ``{"DE", "AT", "CH"}``."""
    return frozenset(c.strip().upper() for c in countries.replace(";", ",").split(",") if c.strip())


class Campaign(models.Model):
    """The offer affiliates promote. Destinations are URL templates with macros.

    Macros: {click_id}, {affiliate_id}, {campaign_id}, {sub1}..{sub5}. AppsFlyer and Adjust
    links get their partner parameters added even without macros (clicks.destination).
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        ARCHIVED = "archived"

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public: every active affiliate"
        APPROVAL = "approval", "Needs approval"
        PRIVATE = "private", "Private: invited affiliates only"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    web_url = URLField(max_length=2000, blank=True, help_text="Landing page template")
    ios_app = models.ForeignKey(
        App, null=True, blank=True, on_delete=models.PROTECT, related_name="ios_campaigns"
    )
    ios_url = URLField(
        max_length=2000, blank=True, help_text="App Store or MMP link template for iOS visitors"
    )
    android_app = models.ForeignKey(
        App, null=True, blank=True, on_delete=models.PROTECT, related_name="android_campaigns"
    )
    android_url = URLField(
        max_length=2000, blank=True, help_text="Play Store or MMP link template for Android"
    )

    class AttributionModel(models.TextChoices):
        LAST_CLICK = "last_click", "Last click"
        FIRST_CLICK = "first_click", "First click"

    click_lookback_days = models.PositiveSmallIntegerField(
        default=7, help_text="How long after a click an install may still be credited to it."
    )
    event_window_days = models.PositiveSmallIntegerField(
        default=180,
        help_text="How long after the install or registration later events still credit its "
        "affiliate.",
    )
    attribution_model = models.CharField(
        max_length=16,
        choices=AttributionModel.choices,
        default=AttributionModel.LAST_CLICK,
        help_text="Who wins when several clicks claim the same install: the money follows it.",
    )
    description = models.TextField(
        max_length=5000, blank=True, help_text="What affiliates read on the offer: the product."
    )
    allowed_sources = models.CharField(
        max_length=500, blank=True, help_text='Traffic allowed, e.g. "SEO, social, email"'
    )
    forbidden_sources = models.CharField(
        max_length=500,
        blank=True,
        help_text='Traffic not allowed, e.g. "brand bidding, incentivised, adult"',
    )
    countries = models.CharField(
        max_length=800,
        blank=True,
        help_text="Countries the campaign accepts, ISO codes separated by commas (DE, AT, CH); "
        "empty: every country. Visitors from others are sent to the fallback URL; their clicks "
        "are recorded with their country and are never paid.",
    )
    fallback_url = URLField(
        max_length=2000,
        blank=True,
        help_text="Where /c/ sends visitors the campaign does not take: from a country it does "
        "not accept, or on a link whose access was revoked. Macros as in the destinations.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["brand__name", "name"]

    def __str__(self) -> str:
        return f"{self.brand.name} / {self.name}" if self.brand_id else self.name

    @property
    def country_set(self) -> frozenset[str]:
        """The accepted countries (empty: every one)."""
        return country_set(self.countries)

    def clean(self) -> None:
        codes = [c.strip().upper() for c in self.countries.replace(";", ",").split(",")]
        codes = [c for c in codes if c]
        wrong = [c for c in codes if not is_country_code(c)]
        if wrong:
            raise ValidationError({"countries": f"Not ISO country codes: {', '.join(wrong[:5])}"})
        self.countries = ", ".join(dict.fromkeys(codes))
        if not (self.web_url or self.ios_url or self.android_url):
            raise ValidationError("A campaign needs at least one destination URL.")
        if self.ios_app_id and self.ios_app.platform != Platform.IOS:
            raise ValidationError({"ios_app": "Not an iOS app."})
        if self.android_app_id and self.android_app.platform != Platform.ANDROID:
            raise ValidationError({"android_app": "Not an Android app."})


def new_link_code() -> str:
    # 10 characters of [A-Za-z0-9_-]: 60 bits, not guessable, short enough to paste.
    return secrets.token_urlsafe(8)[:10]


class TrackingLink(models.Model):
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="links")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="links")
    code = models.CharField(max_length=64, unique=True, default=new_link_code, editable=False)
    name = models.CharField(max_length=200, blank=True)
    sub1 = models.CharField(max_length=255, blank=True)
    sub2 = models.CharField(max_length=255, blank=True)
    sub3 = models.CharField(max_length=255, blank=True)
    sub4 = models.CharField(max_length=255, blank=True)
    sub5 = models.CharField(max_length=255, blank=True)
    deep_link = models.CharField(
        max_length=2000, blank=True, help_text="In-app path or URL passed on to the MMP link"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["affiliate", "campaign"])]

    def __str__(self) -> str:
        return self.code


class CampaignAccess(models.Model):
    """An affiliate's access to a campaign that needs approval (asked for by the affiliate) or is
    private (granted by a manager). Public campaigns need none."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        REFUSED = "refused", "Refused"
        REVOKED = "revoked", "Revoked"

    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="accesses")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="accesses")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    message = models.CharField(
        max_length=1000,
        blank=True,
        help_text="The affiliate's words: where the traffic comes from.",
    )
    reason = models.CharField(
        max_length=500, blank=True, help_text="The manager's reason, shown to the affiliate."
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = "campaign access"
        verbose_name_plural = "campaign accesses"
        constraints = [
            models.UniqueConstraint(fields=["affiliate", "campaign"], name="campaign_access_once")
        ]
        indexes = [models.Index(fields=["status", "requested_at"])]

    def __str__(self) -> str:
        return f"{self.affiliate} on {self.campaign}: {self.status}"


def creative_path(creative: "Creative", filename: str) -> str:
    return f"creatives/{creative.campaign_id}/{secrets.token_urlsafe(6)}-{filename[-80:]}"


class Creative(models.Model):
    """Material a manager uploads for a campaign's affiliates: a banner, a text link, a landing
    page to preview. Files go through Django's storage API (the ``default`` storage)."""

    class Kind(models.TextChoices):
        BANNER = "banner", "Banner"
        TEXT = "text", "Text link"
        LANDING = "landing", "Landing page"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="creatives")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BANNER)
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to=creative_path, blank=True, help_text="Banner image")
    text = models.TextField(max_length=2000, blank=True, help_text="Text link copy")
    preview_url = URLField(max_length=2000, blank=True, help_text="Landing page to preview")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "kind", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        needs = {self.Kind.BANNER: "file", self.Kind.TEXT: "text", self.Kind.LANDING: "preview_url"}
        field = needs.get(self.kind)
        if field and not getattr(self, field):
            raise ValidationError({field: f"A {self.get_kind_display().lower()} needs this."})


class TermsVersion(models.Model):
    """The program's terms as published: affiliates accept the newest at sign-up, and again at
    their next visit when a new version is published. Never edited: publish a new one."""

    version = models.PositiveIntegerField(unique=True)
    text = models.TextField(max_length=50_000)
    published_at = models.DateTimeField(help_text="In force from here on")

    class Meta:
        ordering = ["-version"]
        verbose_name = "terms version"

    def __str__(self) -> str:
        return f"Terms v{self.version}"


class TermsAcceptance(models.Model):
    """Who accepted which terms, when and from where: kept as evidence."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="terms_accepted"
    )
    terms = models.ForeignKey(TermsVersion, on_delete=models.PROTECT, related_name="acceptances")
    accepted_at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-accepted_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "terms"], name="terms_accepted_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} accepted {self.terms}"


class PaymentDetailsChange(models.Model):
    """New payment details an affiliate gave: confirmed by a link mailed to them, then in use,
    and their next payout held until a manager confirms the change (a hijacked account must
    not be able to redirect money)."""

    class Method(models.TextChoices):
        BANK = "bank", "Bank transfer (IBAN)"
        PAYPAL = "paypal", "PayPal"
        CRYPTO = "crypto", "Crypto wallet"

    class Network(models.TextChoices):
        BITCOIN = "bitcoin", "Bitcoin"
        ETHEREUM = "ethereum", "Ethereum (ERC-20)"
        TRON = "tron", "Tron (TRC-20)"

    class Status(models.TextChoices):
        AWAITING_EMAIL = "awaiting_email", "Waiting for the affiliate's email confirmation"
        AWAITING_MANAGER = "awaiting_manager", "In use; next payout held for a manager"
        CONFIRMED = "confirmed", "Confirmed by a manager"
        CANCELLED = "cancelled", "Replaced before it was confirmed"

    affiliate = models.ForeignKey(
        Affiliate, on_delete=models.CASCADE, related_name="payment_changes"
    )
    method = models.CharField(max_length=8, choices=Method.choices)
    account_name = models.CharField(max_length=200, blank=True)
    iban = models.CharField("IBAN", max_length=34, blank=True)
    bic = models.CharField("SWIFT/BIC", max_length=11, blank=True)
    paypal_email = models.EmailField(blank=True)
    wallet = models.CharField(max_length=128, blank=True)
    network = models.CharField(max_length=10, choices=Network.choices, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AWAITING_EMAIL)
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    email_confirmed_at = models.DateTimeField(null=True, blank=True)
    manager_confirmed_at = models.DateTimeField(null=True, blank=True)
    manager_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["affiliate", "status"])]

    def __str__(self) -> str:
        return f"{self.affiliate}: {self.summary()}"

    def summary(self) -> str:
        """The details as a payout needs them, on one line."""
        if self.method == self.Method.BANK:
            return f"Bank: {self.account_name}, IBAN {self.iban}, BIC {self.bic}"
        if self.method == self.Method.PAYPAL:
            return f"PayPal: {self.paypal_email}"
        return f"Crypto ({self.get_network_display()}): {self.wallet}"


class SettingChange(models.Model):
    """An affiliate's time zone or currency, changed from the start of their next day.

    Their days (dashboards, rollups) and the currency their commission is booked in change at
    midnight, never in the middle of a day: yesterday stays as it was reported. The rows are the
    history; the last applied one of a field is what the affiliate has now.
    """

    class Field(models.TextChoices):
        TIME_ZONE = "time_zone", "Time zone"
        CURRENCY = "currency", "Currency"

    affiliate = models.ForeignKey(
        Affiliate, on_delete=models.CASCADE, related_name="setting_changes"
    )
    field = models.CharField(max_length=12, choices=Field.choices)
    old = models.CharField(max_length=64)
    new = models.CharField(max_length=64)
    effective_at = models.DateTimeField(help_text="The start of the affiliate's next day")
    applied_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["effective_at"],
                condition=Q(applied_at__isnull=True, cancelled_at__isnull=True),
                name="setting_change_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.affiliate_id} {self.field}: {self.old} -> {self.new}"


class AuditEvent(models.Model):
    """Who changed what, when: one row per status change or money move, never edited."""

    content_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.PROTECT)
    object_id = models.CharField(max_length=64)
    field = models.CharField(max_length=64)
    old = models.CharField(max_length=255, blank=True)
    new = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["content_type", "object_id", "at"])]

    def __str__(self) -> str:
        return f"{self.content_type.model} {self.object_id}: {self.field} {self.old} -> {self.new}"


class LegacyLink(models.Model):
    """A link of the platform a program moved from, kept working: the old URL's path and its
    identifying parameters lead to one of our tracking links."""

    path = models.CharField(max_length=200, help_text='e.g. "/click" (Affise) or "/aff_c" (TUNE)')
    key = models.CharField(
        max_length=300,
        help_text='The identifying query parameters, sorted: e.g. "offer_id=45&pid=123"',
    )
    link = models.ForeignKey(TrackingLink, on_delete=models.CASCADE, related_name="legacy")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["path", "key"], name="legacy_link_unique")]

    def __str__(self) -> str:
        return f"{self.path}?{self.key} -> {self.link_id}"


class NoticeKind(models.TextChoices):
    """What a notification is about; each user may turn any kind off."""

    # to affiliates
    APPLICATION_APPROVED = "application_approved", "Application approved"
    APPLICATION_REFUSED = "application_refused", "Application refused"
    PAYOUT_APPROVED = "payout_approved", "Payout approved"
    PAYOUT_PAID = "payout_paid", "Payout paid"
    POSTBACK_DISABLED = "postback_disabled", "Postback URL disabled"
    NEW_OFFER = "new_offer", "New offer"
    ANNOUNCEMENT = "announcement", "Announcements from the program"
    ACCESS_ANSWERED = "access_answered", "Access request answered"
    PAYMENT_DETAILS = "payment_details", "Payment details changed"
    SECURITY = "security", "Two-factor login turned on or off"
    # to managers
    NEW_SIGNUP = "new_signup", "New sign-up"
    ACCESS_REQUEST = "access_request", "Access request"
    REVIEW_QUEUE = "review_queue", "Review queue above its threshold"
    SILENT_SOURCE = "silent_source", "Silent postback source"
    PAYOUT_RUN_READY = "payout_run_ready", "Payout run ready for approval"
    # to both: managers for every cap, an affiliate for a cap of their own
    CAP_REACHED = "cap_reached", "Cap reached"


class Notification(models.Model):
    """One notice to one user: the in-app inbox row, and the email sent from it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32, choices=NoticeKind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=5000, blank=True)
    url = models.CharField(max_length=500, blank=True, help_text="Where to read more (a path).")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["user", "created_at"],
                name="notification_unread",
                condition=Q(read_at__isnull=True),
            ),
            models.Index(fields=["user", "created_at"], name="notification_inbox"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.user_id}: {self.title}"


class NoticeOptOut(models.Model):
    """A kind of notice a user does not want (neither in the app nor by email)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notice_opt_outs"
    )
    kind = models.CharField(max_length=32, choices=NoticeKind.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notice_opt_out_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} off {self.kind}"


class Announcement(models.Model):
    """A manager's message to affiliates: all of them, or a segment."""

    class Segment(models.TextChoices):
        ALL = "all", "All active affiliates"
        CAMPAIGN = "campaign", "Affiliates with links on a campaign"
        CURRENCY = "currency", "Affiliates paid in a currency"

    title = models.CharField(max_length=200)
    body = models.TextField(max_length=5000)
    segment = models.CharField(max_length=16, choices=Segment.choices, default=Segment.ALL)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title
