"""Ingestion health for managers: per source and status, counts, backlog and the latest errors."""

from datetime import datetime, timedelta

from django.db.models import Count, Max, Q

from attribution.models import Postback, PostbackSource


def ingestion_health(*, now: datetime) -> dict:
    """Per source and status: counts for the last hour and day, the backlog, the latest errors."""
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    rows = (
        Postback.objects.filter(received_at__gte=day)
        .values("source_id", "kind", "status")
        .annotate(
            last_day=Count("id"),
            last_hour=Count("id", filter=Q(received_at__gte=hour)),
        )
    )
    sources = {s.pk: s for s in PostbackSource.objects.select_related("app", "brand")}
    table: dict[tuple, dict] = {}
    for row in rows:
        key = (row["source_id"], row["kind"])
        entry = table.setdefault(
            key,
            {
                "source": sources.get(row["source_id"]),
                "kind": row["kind"],
                "hour": dict.fromkeys(Postback.Status.values, 0),
                "day": dict.fromkeys(Postback.Status.values, 0),
            },
        )
        entry["hour"][row["status"]] = row["last_hour"]
        entry["day"][row["status"]] = row["last_day"]
    waiting = Postback.objects.filter(status=Postback.Status.RECEIVED)
    oldest = waiting.order_by("received_at").values_list("received_at", flat=True).first()
    latest = (
        Postback.objects.select_related("source")
        .only("id", "kind", "status", "reason", "received_at", "source__name", "source__kind")
        .order_by("-received_at")
    )
    # Failed rows are listed apart: refusals at the door can be many, and must not push the
    # rows that wait for a manager's re-run out of sight.
    errors = [
        *latest.filter(status=Postback.Status.FAILED)[:25],
        *latest.filter(status=Postback.Status.REJECTED)[:25],
    ]
    return {
        "rows": sorted(table.values(), key=lambda e: (e["kind"], str(e["source"] or ""))),
        "backlog": waiting.count(),
        "oldest_waiting": oldest,
        "errors": errors,
        "statuses": Postback.Status.values,
    }


SILENT_LOOKBACK = timedelta(days=7)


def silent_sources(*, now: datetime, hours: int) -> list[dict]:
    """Active sources that sent postbacks in the week before the last ``hours`` and none since:
    an MMP whose postback URL was changed or broken goes quiet rather than failing."""
    since = now - timedelta(hours=hours)
    last_seen = (
        Postback.objects.filter(received_at__gte=now - SILENT_LOOKBACK, source__isnull=False)
        .values("source_id")
        .annotate(last=Max("received_at"))
        .filter(last__lt=since)
        .order_by("last")
    )
    sources = {
        s.pk: s
        for s in PostbackSource.objects.filter(
            is_active=True, pk__in=[row["source_id"] for row in last_seen]
        )
    }
    return [
        {"source": sources[row["source_id"]], "last": row["last"]}
        for row in last_seen
        if row["source_id"] in sources
    ]
