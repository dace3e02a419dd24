"""Reads for the affiliate's own pages: always scoped to that affiliate."""

from decimal import Decimal

from django.db.models import QuerySet, Sum

from attribution.models import OutboundDelivery, OutboundEndpoint
from payouts.models import LedgerEntry, Payout

from .models import Affiliate, Campaign, TrackingLink


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
