import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from . import processing, rollup

logger = logging.getLogger(__name__)


@shared_task(
    name="attribution.process_postback",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=8,
)
def process_postback(postback_id: int) -> str:
    """Normalise one inbox row. Idempotent, so it may run again after a crash or a sweep."""
    return processing.postback_process(postback_id=postback_id)


@shared_task(name="attribution.sweep_postbacks", ignore_result=True)
def sweep_postbacks() -> int:
    """Re-queue inbox rows still waiting after the grace period (a broker outage, a lost task)."""
    ids = processing.postbacks_waiting(
        older_than=timedelta(seconds=settings.POSTBACK_SWEEP_GRACE_SECONDS),
        limit=settings.POSTBACK_SWEEP_BATCH,
    )
    for postback_id in ids:
        process_postback.delay(postback_id)
    if ids:
        logger.info("sweep re-queued %s waiting postbacks", len(ids))
    return len(ids)


@shared_task(name="attribution.fill_click_rollups", ignore_result=True)
def fill_click_rollups() -> int:
    """Bring the rollups' click counters up to date (beat, every minute)."""
    total = 0
    while filled := rollup.clicks_fill():
        total += filled
    return total
