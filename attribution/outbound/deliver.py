"""Outbound postbacks: calling the affiliates' own URLs when their conversions are decided.

Each delivery is one Celery task per endpoint and attempt, on a queue of its own ("outbound",
served by workers of their own): a slow or misbehaving receiver can hold only those workers,
never attribution. An attempt is claimed by inserting its log row before the call (a unique
constraint keeps two workers from calling twice) and has an overall deadline
(OUTBOUND_DEADLINE_SECONDS, DNS to the last byte read); every failure (an error status, a reply
that is no HTTP, a URL that cannot be called, the deadline) is logged and retried with
exponential backoff up to OUTBOUND_MAX_ATTEMPTS, a conversion delivered once is never sent again,
and an endpoint that keeps failing is switched off with a notice. An affiliate's URLs are called
up to OUTBOUND_MAX_ENDPOINTS, and no endpoint has more than OUTBOUND_MAX_QUEUED deliveries
waiting: one receiver cannot fill the queue.
"""

import hashlib
import hmac
import json
import logging
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Sum, Value, When
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import iri_to_uri

from affiliates import notify
from affiliates.models import Affiliate, NoticeKind
from attribution.models import Conversion, OutboundDelivery, OutboundEndpoint
from attribution.outbound import safe_http
from attribution.parsing.wire import clean_text
from payouts.models import LedgerEntry
from portal.lib import queue
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
    # The first OUTBOUND_MAX_ENDPOINTS only: the forms refuse more, and endpoints made before
    # the cap was (157 on one affiliate once queued 69,476 tasks) must not fan out either.
    endpoints = OutboundEndpoint.objects.filter(
        affiliate_id=conversion.affiliate_id, is_active=True
    ).order_by("pk")[: settings.OUTBOUND_MAX_ENDPOINTS]
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


def enqueue(
    *,
    endpoint_id: int,
    conversion_id: int | None,
    event: str,
    attempt: int,
    countdown: float = 0,
    limit: int | None = None,
) -> bool:
    """Publish one delivery attempt, unless ``limit`` (OUTBOUND_MAX_QUEUED) deliveries wait for
    the endpoint already.

    The count is taken with one conditional UPDATE, so concurrent publishers cannot overshoot it;
    a count not touched for OUTBOUND_QUEUED_STALE_SECONDS is taken to have been left by lost
    tasks and starts again. False when refused (the caller logs the failure).
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.OUTBOUND_QUEUED_STALE_SECONDS)
    taken = (
        OutboundEndpoint.objects.filter(pk=endpoint_id)
        .filter(
            Q(queued__lt=settings.OUTBOUND_MAX_QUEUED if limit is None else limit)
            | Q(queued_at__lt=stale)
            | Q(queued_at__isnull=True)
        )
        .update(
            queued=Case(When(queued_at__lt=stale, then=Value(1)), default=F("queued") + 1),
            queued_at=now,
        )
    )
    if not taken:
        return False
    try:
        queue.publish(
            "attribution.send_outbound",
            endpoint_id,
            conversion_id,
            event,
            attempt,
            countdown=countdown or None,
        )
    except Exception:
        _started(endpoint_id)  # not queued after all
        raise
    return True


def _started(endpoint_id: int) -> None:
    OutboundEndpoint.objects.filter(pk=endpoint_id, queued__gt=0).update(queued=F("queued") - 1)


def dispatch(*, conversion_id: int, event: str) -> int:
    """Fan a decided conversion out to its affiliate's matching URLs; returns how many."""
    conversion = Conversion.objects.filter(pk=conversion_id).first()
    if conversion is None:
        return 0
    sent = 0
    for endpoint in endpoints_for(conversion, event):
        if enqueue(endpoint_id=endpoint.pk, conversion_id=conversion_id, event=event, attempt=1):
            sent += 1
        else:
            _refused(endpoint, conversion, event, 1)
    return sent


def retry_later(*, endpoint_id: int, conversion_id: int | None, event: str, attempt: int) -> str:
    """Publish attempt ``attempt + 1`` after its backoff; a full queue makes it a failure."""
    if enqueue(
        endpoint_id=endpoint_id,
        conversion_id=conversion_id,
        event=event,
        attempt=attempt + 1,
        countdown=backoff(attempt),
    ):
        return "retry"
    endpoint = OutboundEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return "skipped"
    conversion = Conversion.objects.filter(pk=conversion_id).first() if conversion_id else None
    return _refused(endpoint, conversion, event, attempt + 1)


def _refused(
    endpoint: OutboundEndpoint, conversion: Conversion | None, event: str, attempt: int
) -> str:
    """A delivery not even queued, because the endpoint's queue is full: logged, and counted
    against the endpoint like any failure (a receiver that slow is failing)."""
    delivery = _claim(endpoint, conversion, event, attempt, endpoint.url_template[:4000])
    if delivery is None:
        return "skipped"
    delivery.error = (
        f"not sent: {settings.OUTBOUND_MAX_QUEUED} deliveries already wait for this URL"
    )
    delivery.finished = True
    delivery.save(update_fields=["error", "finished"])
    if event in (Event.TEST, Event.RESENT):
        return "failed"
    return _failed_for_good(endpoint, delivery)


def _call(endpoint: OutboundEndpoint, url: str, values: dict[str, str]) -> safe_http.Reply:
    timeout = settings.OUTBOUND_TIMEOUT_SECONDS
    deadline = settings.OUTBOUND_DEADLINE_SECONDS
    allow = parse_networks(",".join(settings.OUTBOUND_ALLOW_NETWORKS))
    if endpoint.method == OutboundEndpoint.Method.POST:
        body = json.dumps(values, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Signature": signature(endpoint.secret, body),
            "User-Agent": "affiliate-portal-postback/1",
        }
        return safe_http.request(
            "POST",
            url,
            body=body,
            headers=headers,
            timeout=timeout,
            deadline=deadline,
            allow=allow,
        )
    headers = {
        "X-Signature": signature(endpoint.secret, url.encode()),
        "User-Agent": "affiliate-portal-postback/1",
    }
    return safe_http.request(
        "GET", url, headers=headers, timeout=timeout, deadline=deadline, allow=allow
    )


def outbound_send(*, endpoint_id: int, conversion_id: int | None, event: str, attempt: int) -> str:
    """One delivery attempt; returns "sent", "failed", "retry", "skipped" or "disabled"."""
    _started(endpoint_id)
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
    # A template with a space or a non-ASCII letter in it is called percent-encoded, not refused.
    url = iri_to_uri(render(endpoint.url_template, values))[:4000]
    delivery = _claim(endpoint, conversion, event, attempt, url)
    if delivery is None:
        return "skipped"  # another worker has this attempt
    try:
        reply = _call(endpoint, url, values)
        delivery.status_code = reply.status
        delivery.latency_ms = reply.latency_ms
        # A reply is the receiver's text: PostgreSQL cannot even store a NUL of it.
        delivery.response_snippet = clean_text(reply.snippet)[:500]
        delivery.succeeded = 200 <= reply.status < 300
        if not delivery.succeeded:
            delivery.error = f"HTTP {reply.status}"
    except safe_http.Refused as exc:
        delivery.error = f"refused: {exc}"[:500]
    except safe_http.DeadlineExceeded as exc:
        delivery.error = f"deadline: {exc}"[:500]
    except Exception as exc:
        # Whatever the receiver or the URL does (no HTTP in the reply, a URL http.client will
        # not send), it is this delivery's failure, counted like any other: never a crash.
        delivery.error = f"{type(exc).__name__}: {exc}"[:500]
    delivery.error = clean_text(delivery.error)
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
        notify.notify_affiliate(
            Affiliate.objects.select_related("user").get(pk=endpoint.affiliate_id),
            NoticeKind.POSTBACK_DISABLED,
            "A postback URL of yours was switched off",
            f"{endpoint.url_template[:200]} was {endpoint.disabled_reason}. Fix the receiver; "
            "your affiliate manager can switch it back on.",
            reverse("affiliate-postbacks"),
        )
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
