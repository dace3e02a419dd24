"""Outbound postbacks: the affiliates' own URLs the portal calls when a conversion is decided."""

import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def new_endpoint_secret() -> str:
    return secrets.token_urlsafe(24)


class OutboundEndpoint(models.Model):
    """An affiliate's postback URL template, for all campaigns or one, for some event types."""

    class Method(models.TextChoices):
        GET = "GET"
        POST = "POST"

    affiliate = models.ForeignKey(
        "affiliates.Affiliate", on_delete=models.CASCADE, related_name="outbound_endpoints"
    )
    campaign = models.ForeignKey(
        "affiliates.Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: every campaign.",
    )
    event_types = models.CharField(
        max_length=200,
        blank=True,
        help_text="Comma-separated conversion types (install, registration, ftd, ...); empty: all.",
    )
    url_template = models.CharField(
        max_length=2000,
        help_text="e.g. https://tracker.example/postback?cid={click_id}&payout={payout}&event={event}",
    )
    method = models.CharField(max_length=4, choices=Method.choices, default=Method.GET)
    secret = models.CharField(
        max_length=64,
        default=new_endpoint_secret,
        help_text="Signs each request: X-Signature: sha256=<hex HMAC of the URL or body>.",
    )
    send_on_reversal = models.BooleanField(
        default=False, help_text="Call again when a conversion is reversed or rejected later."
    )
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Deliveries published and not yet started (attribution.outbound.deliver): capped, so that a
    # slow receiver cannot pile up work; when the last was published, so that a count left by a
    # lost task does not block the endpoint for ever.
    queued = models.PositiveIntegerField(default=0, editable=False)
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "postback URL"
        ordering = ["affiliate", "pk"]
        indexes = [models.Index(fields=["affiliate", "is_active"], name="outbound_affiliate")]

    def __str__(self) -> str:
        return f"{self.affiliate_id}: {self.url_template[:60]}"

    def clean(self) -> None:
        """What every form that makes one checks (the affiliate's page, the admin)."""
        if re.search(r"[\s\x00-\x1f\x7f]", self.url_template.strip()):
            raise ValidationError(
                {"url_template": "A URL has no spaces or control characters (write %20)."}
            )
        if self.affiliate_id and not self.pk:
            count = OutboundEndpoint.objects.filter(affiliate_id=self.affiliate_id).count()
            if count >= settings.OUTBOUND_MAX_ENDPOINTS:
                raise ValidationError(
                    f"An affiliate can have up to {settings.OUTBOUND_MAX_ENDPOINTS} postback URLs;"
                    " remove one first."
                )

    def wants(self, conversion_type: str, campaign_id: int | None) -> bool:
        types = {t.strip() for t in self.event_types.split(",") if t.strip()}
        if types and conversion_type not in types:
            return False
        return self.campaign_id is None or self.campaign_id == campaign_id


class OutboundDelivery(models.Model):
    """One attempt to deliver one conversion's postback to one endpoint: the delivery log."""

    class Event(models.TextChoices):
        APPROVED = "approved"
        REVERSED = "reversed"
        RESENT = "resent", "Re-sent by hand"
        TEST = "test"

    endpoint = models.ForeignKey(OutboundEndpoint, on_delete=models.CASCADE, related_name="log")
    conversion = models.ForeignKey(
        "attribution.Conversion",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    event = models.CharField(max_length=10, choices=Event.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    url = models.CharField(max_length=4000)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_snippet = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=False)
    finished = models.BooleanField(default=False, help_text="False while the call is under way")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "outbound deliveries"
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Delivered once: a second success for the same conversion and event is impossible.
            models.UniqueConstraint(
                fields=["endpoint", "conversion", "event"],
                condition=models.Q(succeeded=True, event__in=["approved", "reversed"]),
                name="outbound_delivered_once",
            ),
            # Each attempt is claimed by one worker before it calls out: no double send.
            models.UniqueConstraint(
                fields=["endpoint", "conversion", "event", "attempt"],
                condition=models.Q(event__in=["approved", "reversed"]),
                name="outbound_attempt_once",
            ),
        ]
        indexes = [models.Index(fields=["endpoint", "created_at"], name="outbound_log")]

    def __str__(self) -> str:
        return f"{self.event} #{self.conversion_id} -> {self.status_code or self.error[:30]}"
