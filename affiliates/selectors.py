"""Reads for the affiliate's own pages: always scoped to that affiliate."""

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet, Sum

from attribution.models import OutboundDelivery, OutboundEndpoint
from attribution.rollups import reports
from payouts.models import LedgerEntry, Payout

from .models import Affiliate, AffiliateNote, AuditEvent, Campaign, TrackingLink


def campaigns_of(affiliate: Affiliate) -> QuerySet[Campaign]:
    """Campaigns the affiliate has links on: the only ones its filters may name."""
    return (
        Campaign.objects.filter(pk__in=affiliate.links.values("campaign_id"))
        .select_related("brand")
        .order_by("name")
    )


def links_of(affiliate: Affiliate) -> QuerySet[TrackingLink]:
    return affiliate.links.select_related("campaign").order_by("-created_at")


def payouts_of(affiliate: Affiliate) -> QuerySet[Payout]:
    return Payout.objects.filter(affiliate=affiliate).select_related("run").order_by("-created_at")


def balance_of(affiliate: Affiliate) -> dict[str, Decimal]:
    """What is owed and not yet in a payout: approved (payable after hold) and pending."""
    unpaid = LedgerEntry.objects.filter(beneficiary=affiliate, payout__isnull=True)
    sums = {
        status: unpaid.filter(status=status).aggregate(s=Sum("amount"))["s"] or Decimal(0)
        for status in (LedgerEntry.Status.APPROVED, LedgerEntry.Status.PENDING)
    }
    return sums


def sub_affiliates_of(affiliate: Affiliate) -> QuerySet[Affiliate]:
    return affiliate.sub_affiliates.order_by("name").only("id", "name", "status", "created_at")


def endpoints_of(affiliate: Affiliate) -> QuerySet[OutboundEndpoint]:
    return affiliate.outbound_endpoints.select_related("campaign").order_by("pk")


def deliveries_of(affiliate: Affiliate, limit: int | None = 50) -> QuerySet[OutboundDelivery]:
    deliveries = (
        OutboundDelivery.objects.filter(endpoint__affiliate=affiliate)
        .select_related("endpoint")
        .order_by("-created_at", "-pk")
    )
    return deliveries[:limit] if limit else deliveries


# --- a manager's view of one affiliate (the admin's affiliate 360) -------------------------------

HISTORY = 20


@dataclass
class EndpointHealth:
    endpoint: OutboundEndpoint
    sent: int  # of the last deliveries read
    failed: int

    @property
    def health(self) -> str:
        if not self.endpoint.is_active:
            return f"disabled: {self.endpoint.disabled_reason or 'by a manager'}"
        if self.endpoint.consecutive_failures:
            return f"failing ({self.endpoint.consecutive_failures} in a row)"
        if self.sent and self.failed:
            return f"{self.failed} of the last {self.sent} failed"
        return "healthy" if self.sent else "nothing sent yet"


@dataclass
class Affiliate360:
    affiliate: Affiliate
    period: reports.Period
    summary: reports.Table
    mobile: dict[str, Decimal]
    earnings: dict[str, Decimal]  # ledger totals per status (all time, the affiliate's currency)
    balance: dict[str, Decimal]  # unpaid: approved and pending
    payouts: list[Payout]
    links: list[TrackingLink]
    endpoints: list[EndpointHealth]
    subs: list[Affiliate]
    notes: list[AffiliateNote]
    audit: list[AuditEvent]


def affiliate_360(*, affiliate: Affiliate, period: reports.Period) -> Affiliate360:
    """Everything a manager reads about one affiliate, for the period, in its zone and currency."""
    table = reports.summary(
        affiliate_ids=[affiliate.pk],
        period=period,
        filters=reports.Filters(),
        currency=affiliate.currency,
        time_zone=affiliate.time_zone,
    )
    earnings = {
        row["status"]: row["total"]
        for row in LedgerEntry.objects.filter(beneficiary=affiliate)
        .values("status")
        .annotate(total=Sum("amount"))
        .order_by("status")
    }
    recent = list(
        OutboundDelivery.objects.filter(endpoint__affiliate=affiliate)
        .order_by("-created_at", "-pk")
        .values_list("endpoint_id", "succeeded")[:200]
    )
    endpoints = []
    for endpoint in endpoints_of(affiliate):
        mine = [ok for endpoint_id, ok in recent if endpoint_id == endpoint.pk]
        endpoints.append(EndpointHealth(endpoint, len(mine), sum(1 for ok in mine if not ok)))
    kind = ContentType.objects.get_for_model(Affiliate)
    return Affiliate360(
        affiliate=affiliate,
        period=period,
        summary=table,
        mobile=table.mobile(),
        earnings=earnings,
        balance=balance_of(affiliate),
        payouts=list(payouts_of(affiliate)[:HISTORY]),
        links=list(links_of(affiliate)[:HISTORY]),
        endpoints=endpoints,
        subs=list(sub_affiliates_of(affiliate)[:HISTORY]),
        notes=list(affiliate.notes.select_related("author")[:HISTORY]),
        audit=list(
            AuditEvent.objects.filter(content_type=kind, object_id=str(affiliate.pk))
            .select_related("actor")
            .order_by("-at", "-pk")[:HISTORY]
        ),
    )
