"""The workers' entry: a batch of inbox rows in, one at a time (SQLite) or as a batch (PostgreSQL);
and which rows are still waiting, for the sweep."""

import logging
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from attribution.models import Postback
from attribution.processing import batch, single

logger = logging.getLogger(__name__)


def postbacks_process(*, postback_ids: list[int], top_up: int = 0) -> dict[str, int]:
    """Process a batch of inbox rows; returns how many ended in each status.

    On PostgreSQL the batch path (``attribution.processing.batch``) attributes the batch in one
    transaction, the oldest ``top_up`` rows still waiting when that is given; elsewhere (the
    embedded SQLite default) the given rows go one at a time.
    """
    if connection.vendor == "postgresql":
        return batch.postbacks_attribute(postback_ids, top_up=top_up)
    return single.postbacks_one_by_one(postback_ids)


def postbacks_waiting(*, older_than: timedelta, limit: int) -> list[int]:
    """Ids of rows still ``received`` after ``older_than``: lost to a broker outage, or slow."""
    cutoff = timezone.now() - older_than
    return list(
        Postback.objects.filter(status=Postback.Status.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("id", flat=True)[:limit]
    )
