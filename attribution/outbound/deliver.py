"""Outbound postbacks: calling the affiliates' own URLs when their conversions are decided.

Each delivery is one Celery task per endpoint and attempt. An attempt is claimed by inserting its
log row before the call (a unique constraint keeps two workers from calling twice), failures are
retried with exponential backoff up to OUTBOUND_MAX_ATTEMPTS, a conversion delivered once is never
sent again, and an endpoint that keeps failing is switched off with a notice.
"""

import hashlib
import hmac
import json
import logging
import re
from decimal import Decimal
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from attribution.models import Conversion, OutboundDelivery, OutboundEndpoint
from attribution.outbound import safe_http
from payouts.models import LedgerEntry
from portal.lib.networks import parse_networks

logger = logging.getLogger(__name__)


Event = OutboundDelivery.Event


MACRO_RE = re.compile(
    r"\{(click_id|sub[1-5]|event|payout|currency|revenue|conversion_id|campaign_id|status|"
    r"timestamp|affiliate_id|country|platform)\}"
)


def _payout(conversion: Conversion) -> Decimal:
    total = (
        LedgerEntry.objects.filter(
            conversion=conversion, beneficiary_id=conversion.affiliate_id, kind="cpa"
        )
        .exclude(status="void")
        .aggregate(s=Sum("amount"))["s"]
    )
    return total or Decimal(0)


def macro_values(conversion: Conversion, event: str) -> dict[str, str]:
    click = conversion.click
    affiliate = conversion.affiliate
    values = {
        "click_id": click.click_id if click else "",
        "event": conversion.type,
        "payout": f"{_payout(conversion):.2f}",
        "currency": affiliate.currency if affiliate else "",
        "revenue": f"{conversion.revenue:.2f}" if conversion.revenue is not None else "",
        "conversion_id": str(conversion.pk),
        "campaign_id": str(conversion.campaign_id or ""),
        "status": "reversed" if event == Event.REVERSED else conversion.status,
        "timestamp": str(int(conversion.occurred_at.timestamp())),
        "affiliate_id": str(conversion.affiliate_id or ""),
        "country": conversion.country,
        "platform": conversion.platform,
    }
    for n in range(1, 6):
        values[f"sub{n}"] = getattr(click, f"sub{n}") if click else ""
    return values


def render(template: str, values: dict[str, str]) -> str:
    """The endpoint's URL with every macro filled in, URL-encoded."""
    return MACRO_RE.sub(lambda m: quote(values.get(m.group(1), ""), safe=""), template)


def signature(secret: str, message: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def endpoints_for(conversion: Conversion, event: str) -> list[OutboundEndpoint]:
    if conversion.affiliate_id is None:
        return []
    endpoints = OutboundEndpoint.objects.filter(
        affiliate_id=conversion.affiliate_id, is_active=True
    )
    wanted = [e for e in endpoints if e.wants(conversion.type, conversion.campaign_id)]
    if event == Event.REVERSED:
        # A reversal only follows an approval that was delivered, and only where asked for.
        delivered = set(
            OutboundDelivery.objects.filter(
                conversion=conversion, event=Event.APPROVED, succeeded=True
            ).values_list("endpoint_id", flat=True)
        )
        wanted = [e for e in wanted if e.send_on_reversal and e.pk in delivered]
    return wanted


def _claim(
    endpoint: OutboundEndpoint, conversion: Conversion | None, event: str, attempt: int, url: str
) -> OutboundDelivery | None:
    try:
        with transaction.atomic():
            return OutboundDelivery.objects.create(
                endpoint=endpoint, conversion=conversion, event=event, attempt=attempt, url=url
            )
    except IntegrityError:
        return None


def _call(endpoint: OutboundEndpoint, url: str, values: dict[str, str]) -> safe_http.Reply:
    timeout = settings.OUTBOUND_TIMEOUT_SECONDS
    allow = parse_networks(",".join(settings.OUTBOUND_ALLOW_NETWORKS))
    if endpoint.method == OutboundEndpoint.Method.POST:
        body = json.dumps(values, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Signature": signature(endpoint.secret, body),
            "User-Agent": "affiliate-portal-postback/1",
        }
        return safe_http.request(
            "POST", url, body=body, headers=headers, timeout=timeout, allow=allow
        )
    headers = {
        "X-Signature": signature(endpoint.secret, url.encode()),
        "User-Agent": "affiliate-portal-postback/1",
    }
    return safe_http.request("GET", url, headers=headers, timeout=timeout, allow=allow)


def outbound_send(*, endpoint_id: int, conversion_id: int | None, event: str, attempt: int) -> str:
    """One delivery attempt; returns "sent", "failed", "retry", "skipped" or "disabled"."""
    endpoint = OutboundEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None or (not endpoint.is_active and event not in (Event.TEST, Event.RESENT)):
        return "skipped"
    conversion = None
    if conversion_id is not None:
        conversion = (
            Conversion.objects.select_related("click", "affiliate").filter(pk=conversion_id).first()
        )
        if conversion is None:
            return "skipped"
        if (
            event in (Event.APPROVED, Event.REVERSED)
            and OutboundDelivery.objects.filter(
                endpoint=endpoint, conversion=conversion, event=event, succeeded=True
            ).exists()
        ):
            return "skipped"
        values = macro_values(conversion, event)
    else:
        values = sample_values(endpoint)
    url = render(endpoint.url_template, values)
    delivery = _claim(endpoint, conversion, event, attempt, url)
    if delivery is None:
        return "skipped"  # another worker has this attempt
    try:
        reply = _call(endpoint, url, values)
        delivery.status_code = reply.status
        delivery.latency_ms = reply.latency_ms
        delivery.response_snippet = reply.snippet[:500]
        delivery.succeeded = 200 <= reply.status < 300
        if not delivery.succeeded:
            delivery.error = f"HTTP {reply.status}"
    except safe_http.Refused as exc:
        delivery.error = f"refused: {exc}"[:500]
    except OSError as exc:
        delivery.error = f"{type(exc).__name__}: {exc}"[:500]
    delivery.finished = True
    delivery.save(
        update_fields=[
            "status_code",
            "latency_ms",
            "response_snippet",
            "succeeded",
            "error",
            "finished",
        ]
    )
    if event in (Event.TEST, Event.RESENT):
        return "sent" if delivery.succeeded else "failed"
    if delivery.succeeded:
        OutboundEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
        return "sent"
    refused = delivery.error.startswith("refused:")
    if attempt < settings.OUTBOUND_MAX_ATTEMPTS and not refused:
        return "retry"
    return _failed_for_good(endpoint, delivery)


def _failed_for_good(endpoint: OutboundEndpoint, delivery: OutboundDelivery) -> str:
    OutboundEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    endpoint.refresh_from_db(fields=["consecutive_failures", "is_active"])
    failures = endpoint.consecutive_failures
    if failures in settings.OUTBOUND_NOTICE_AT:
        logger.warning(
            "outbound endpoint %s failing: %s deliveries in a row", endpoint.pk, failures
        )
    if failures >= settings.OUTBOUND_DISABLE_AFTER and endpoint.is_active:
        endpoint.is_active = False
        endpoint.disabled_at = timezone.now()
        endpoint.disabled_reason = (
            f"switched off after {failures} failed deliveries in a row; last: {delivery.error}"
        )[:300]
        endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
        logger.warning("outbound endpoint %s disabled: %s", endpoint.pk, endpoint.disabled_reason)
        return "disabled"
    return "failed"


def backoff(attempt: int) -> int:
    """Seconds before attempt ``attempt + 1``: exponential, from OUTBOUND_BACKOFF_SECONDS."""
    return settings.OUTBOUND_BACKOFF_SECONDS * 2 ** (attempt - 1)


def sample_values(endpoint: OutboundEndpoint) -> dict[str, str]:
    """What a test send fills the macros with."""
    now = timezone.now()
    return {
        "click_id": "TEST-CLICK-ID",
        "event": "ftd",
        "payout": "0.00",
        "currency": endpoint.affiliate.currency,
        "revenue": "0.00",
        "conversion_id": "0",
        "campaign_id": str(endpoint.campaign_id or ""),
        "status": "test",
        "timestamp": str(int(now.timestamp())),
        "affiliate_id": str(endpoint.affiliate_id),
        "country": "",
        "platform": "",
        **{f"sub{n}": f"test-sub{n}" for n in range(1, 6)},
    }
