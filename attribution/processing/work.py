"""The workers' entry: a batch of inbox rows in, one at a time (SQLite) or as a batch (PostgreSQL);
and which rows are still waiting, for the sweep."""

import logging
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from affiliates.services import Actor, audit_record
from attribution.models import Postback
from attribution.processing import batch, single
from portal.lib import queue

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


def postbacks_rerun(*, postback_ids: list[int], actor: Actor) -> int:
    """Send failed inbox rows through the worker again (once their cause is fixed); returns how
    many. Each goes back to ``received`` with its attempts reset, an audit row saying who."""
    with transaction.atomic():
        rows = list(
            Postback.objects.select_for_update(of=("self",))
            .filter(pk__in=postback_ids, status=Postback.Status.FAILED)
            .order_by("pk")
        )
        for row in rows:
            note = f"re-run; it had failed: {row.reason}"
            row.status, row.attempts, row.reason, row.processed_at = "received", 0, "", None
            row.save(update_fields=["status", "attempts", "reason", "processed_at"])
            audit_record(
                obj=row, field="status", old="failed", new="received", actor=actor, note=note
            )
        if rows:
            queue.publish_on_commit("attribution.process_postbacks", [row.pk for row in rows])
    return len(rows)
