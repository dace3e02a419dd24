from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Q

from affiliates.models import Affiliate, Campaign, TrackingLink

from .models import Postback, PostbackSource


@dataclass(frozen=True)
class LinkTarget:
    """What the click redirect needs to know of a link, its campaign and its affiliate."""

    link_id: int
    affiliate_id: int
    campaign_id: int
    campaign_name: str
    web_url: str
    ios_url: str
    android_url: str
    lookback_days: int
    deep_link: str
    subs: tuple[str, str, str, str, str]


def _link_sql() -> str:
    link, campaign, affiliate = (
        connection.ops.quote_name(m._meta.db_table) for m in (TrackingLink, Campaign, Affiliate)
    )
    # Written out rather than built by the ORM: this runs on every click, and compiling the
    # equivalent queryset costs more CPU than the database spends answering it.
    return (
        f"SELECT l.id, l.affiliate_id, l.campaign_id, c.name, c.web_url, c.ios_url, "  # noqa: S608
        f"c.android_url, c.click_lookback_days, l.deep_link, "
        f"l.sub1, l.sub2, l.sub3, l.sub4, l.sub5 "
        f"FROM {link} l JOIN {campaign} c ON c.id = l.campaign_id "
        f"JOIN {affiliate} a ON a.id = l.affiliate_id "
        f"WHERE l.code = %s AND l.is_active AND c.status = %s AND a.status = %s"
    )


def link_for_redirect(*, code: str) -> LinkTarget | None:
    """The link behind /c/<code> if it may send traffic now: link, campaign and affiliate active."""
    with connection.cursor() as cursor:
        cursor.execute(_link_sql(), [code, Campaign.Status.ACTIVE, Affiliate.Status.ACTIVE])
        row = cursor.fetchone()
    if row is None:
        return None
    return LinkTarget(*row[:9], subs=tuple(row[9:14]))


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
    errors = (
        Postback.objects.filter(status__in=[Postback.Status.REJECTED, Postback.Status.FAILED])
        .select_related("source")
        .only("id", "kind", "status", "reason", "received_at", "source__name", "source__kind")
        .order_by("-received_at")[:25]
    )
    return {
        "rows": sorted(table.values(), key=lambda e: (e["kind"], str(e["source"] or ""))),
        "backlog": waiting.count(),
        "oldest_waiting": oldest,
        "errors": list(errors),
        "statuses": Postback.Status.values,
    }
