import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from attribution.clicks import partitions
from attribution.ingestion import handoff
from attribution.outbound import deliver
from attribution.processing import work
from attribution.rollups import keep

logger = logging.getLogger(__name__)


# Attribution tasks: acknowledged once done (a killed worker's task is redelivered), retried with
# backoff while the database is away.
PROCESSING = {
    "acks_late": True,
    "ignore_result": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "max_retries": 8,
}


@shared_task(name="attribution.process_postback", **PROCESSING)
def process_postback(postback_id: int) -> dict[str, int]:
    """Normalise one inbox row (with, on PostgreSQL, others waiting beside it). Idempotent, so
    it may run again after a crash or a sweep."""
    return work.postbacks_process(postback_ids=[postback_id], top_up=settings.POSTBACK_BATCH)


@shared_task(name="attribution.process_postbacks", **PROCESSING)
def process_postbacks(postback_ids: list[int]) -> dict[str, int]:
    """Normalise and attribute a batch of inbox rows (ingestion hands them over in batches).

    Idempotent like ``process_postback``: rows already handled are skipped, so a redelivered or
    re-swept batch changes nothing twice.
    """
    return work.postbacks_process(postback_ids=postback_ids, top_up=settings.POSTBACK_BATCH)


@shared_task(name="attribution.sweep_postbacks", ignore_result=True)
def sweep_postbacks() -> int:
    """Re-queue inbox rows still waiting after the grace period (a broker outage, a lost task)."""
    ids = work.postbacks_waiting(
        older_than=timedelta(seconds=settings.POSTBACK_SWEEP_GRACE_SECONDS),
        limit=settings.POSTBACK_SWEEP_BATCH,
    )
    if ids:
        handoff.publish_batch(ids)
        logger.info("sweep re-queued %s waiting postbacks", len(ids))
    return len(ids)


@shared_task(name="attribution.fill_click_rollups", ignore_result=True)
def fill_click_rollups() -> int:
    """Bring the rollups' click counters up to date (beat, every minute)."""
    total = 0
    while filled := keep.clicks_fill():
        total += filled
    return total


@shared_task(name="attribution.click_partitions", ignore_result=True)
def click_partitions() -> dict[str, list[str]]:
    """PostgreSQL's click table by month (beat, every 6 hours): make the coming months'
    partitions, then drop those past CLICK_RETENTION_MONTHS whose clicks the rollups counted."""
    keep.clicks_fill()  # a month is dropped only once counted: count what is new first
    return {"made": partitions.partitions_ensure(), "dropped": partitions.retention_apply()}


# Outbound tasks go to the "outbound" queue (CELERY_TASK_ROUTES), served by workers of their own:
# a slow receiver holds those, never attribution. The hard time limit is a backstop behind the
# delivery's own deadline (safe_http), for a call stuck where no timeout reaches.
OUTBOUND = {"ignore_result": True, "time_limit": settings.OUTBOUND_DEADLINE_SECONDS + 30}


@shared_task(name="attribution.dispatch_outbound", **OUTBOUND)
def dispatch_outbound(conversion_id: int, event: str) -> int:
    """Fan a decided conversion out to each of its affiliate's matching postback URLs."""
    return deliver.dispatch(conversion_id=conversion_id, event=event)


@shared_task(name="attribution.send_outbound", **OUTBOUND)
def send_outbound(endpoint_id: int, conversion_id: int | None, event: str, attempt: int) -> str:
    """One attempt to deliver a postback; schedules the next with backoff when it fails."""
    result = deliver.outbound_send(
        endpoint_id=endpoint_id, conversion_id=conversion_id, event=event, attempt=attempt
    )
    if result == "retry":
        return deliver.retry_later(
            endpoint_id=endpoint_id, conversion_id=conversion_id, event=event, attempt=attempt
        )
    return result
