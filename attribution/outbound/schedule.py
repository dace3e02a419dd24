"""When the affiliate's postbacks go out: scheduled after a decision commits, resent or tested by
hand. Work leaves through ``portal.lib.queue``, by task name."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from attribution.models import Conversion, OutboundDelivery, OutboundEndpoint
from attribution.outbound import deliver
from portal.lib import queue

Event = OutboundDelivery.Event

logger = logging.getLogger(__name__)


def outbound_decided(*, conversion: Conversion, old_status: str | None) -> None:
    """Schedule the affiliate's postbacks for a conversion whose status was just decided.

    Called inside the deciding transaction; the tasks are sent after it commits.
    """
    approved = Conversion.Status.APPROVED
    if conversion.affiliate_id is None or (not conversion.is_winner and old_status is None):
        return
    if conversion.status == approved and old_status != approved:
        event = Event.APPROVED
    elif old_status == approved and conversion.status in (
        Conversion.Status.REJECTED,
        Conversion.Status.REVERSED,
    ):
        event = Event.REVERSED
    else:
        return
    # Most affiliates have no postback URL: no task for them.
    if not OutboundEndpoint.objects.filter(
        affiliate_id=conversion.affiliate_id, is_active=True
    ).exists():
        return
    queue.publish_on_commit("attribution.dispatch_outbound", conversion.pk, event)


def endpoint_enable(*, endpoint: OutboundEndpoint) -> None:
    endpoint.is_active, endpoint.consecutive_failures = True, 0
    endpoint.disabled_at, endpoint.disabled_reason = None, ""
    endpoint.save(
        update_fields=["is_active", "consecutive_failures", "disabled_at", "disabled_reason"]
    )


def outbound_resend(*, delivery: OutboundDelivery) -> None:
    """Send a logged conversion's postback once more, by hand (after the receiver was fixed)."""
    if delivery.conversion_id is None:
        return
    attempt = (
        OutboundDelivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            conversion_id=delivery.conversion_id,
            event=Event.RESENT,
        ).count()
        + 1
    )
    endpoint_id, conversion_id = delivery.endpoint_id, delivery.conversion_id
    transaction.on_commit(
        lambda: deliver.enqueue(
            endpoint_id=endpoint_id,
            conversion_id=conversion_id,
            event=Event.RESENT,
            attempt=attempt,
        )
    )


def outbound_test(*, endpoint: OutboundEndpoint) -> str:
    """A test call with sample values, logged like any other; "" once queued, else why not.

    One test per OUTBOUND_TEST_INTERVAL_SECONDS, and none while anything waits for the URL: the
    button cannot be used to flood a receiver, or the workers.
    """
    interval = settings.OUTBOUND_TEST_INTERVAL_SECONDS
    recent = OutboundDelivery.objects.filter(
        endpoint=endpoint,
        event=Event.TEST,
        created_at__gte=timezone.now() - timedelta(seconds=interval),
    ).exists()
    busy = f"A test (or a delivery) is under way for this URL; try again in {interval} s."
    if recent:
        return busy
    try:
        queued = deliver.enqueue(
            endpoint_id=endpoint.pk, conversion_id=None, event=Event.TEST, attempt=1, limit=1
        )
    except Exception:
        logger.warning("test postback not queued", exc_info=True)
        return "The queue cannot be reached just now; try again later."
    return "" if queued else busy


def outbound_new(conversions: list[Conversion]) -> None:
    """``outbound_decided`` for a batch's new conversions: approved ones, where a URL exists."""
    approved = [c for c in conversions if c.affiliate_id and c.status == Conversion.Status.APPROVED]
    if not approved:
        return
    with_urls = set(
        OutboundEndpoint.objects.filter(
            affiliate_id__in={c.affiliate_id for c in approved}, is_active=True
        ).values_list("affiliate_id", flat=True)
    )
    for conversion in approved:
        if conversion.affiliate_id in with_urls:
            queue.publish_on_commit("attribution.dispatch_outbound", conversion.pk, Event.APPROVED)
