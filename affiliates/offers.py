"""Offers: the campaigns an affiliate may promote, with their own terms, and access to the ones
that need a manager's approval (or a manager's invitation, for private ones).

Who may send traffic to a campaign: everyone active on a public one; on an approval-only or a
private one, the affiliates whose ``CampaignAccess`` is approved. A link made on a non-public
campaign by a manager, the importer or before this rule existed carries its access with it
(``access_grant_for_links``); a revoked access stops the links at once: ``/c/`` answers the
campaign's fallback URL instead of recording a click.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from payouts import caps, plans
from payouts.models import Cap, CommissionPlan, PlanVersion

from . import notify
from .models import (
    Affiliate,
    Campaign,
    CampaignAccess,
    Creative,
    NoticeKind,
    TrackingLink,
)
from .services import Actor, audit_record

Status = CampaignAccess.Status
Visibility = Campaign.Visibility


class AccessRefused(ValueError):
    """The access cannot be asked for or decided that way; the message says why."""


def _approved(affiliate: Affiliate) -> Exists:
    return Exists(
        CampaignAccess.objects.filter(
            affiliate=affiliate, campaign=OuterRef("pk"), status=Status.APPROVED
        )
    )


def campaigns_usable(affiliate: Affiliate) -> QuerySet[Campaign]:
    """The active campaigns ``affiliate`` may link and send traffic to now."""
    return Campaign.objects.filter(status=Campaign.Status.ACTIVE).filter(
        Q(visibility=Visibility.PUBLIC) | _approved(affiliate)
    )


def campaigns_visible(affiliate: Affiliate) -> QuerySet[Campaign]:
    """The active campaigns the offers page shows ``affiliate``: public and approval-only ones,
    and private ones they were let into. Other private campaigns are invisible."""
    return Campaign.objects.filter(status=Campaign.Status.ACTIVE).filter(
        Q(visibility__in=[Visibility.PUBLIC, Visibility.APPROVAL]) | _approved(affiliate)
    )


# --- terms --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpaTerm:
    event: str  # the conversion type: ftd, registration, install...
    label: str
    amount: Decimal
    min_deposit: Decimal | None
    countries: str
    platform: str
    channel: str


@dataclass(frozen=True)
class TierTerm:
    from_ftds: int
    cpa_amount: Decimal | None
    revshare_percent: Decimal | None


@dataclass(frozen=True)
class Terms:
    """What the affiliate is paid on a campaign, from the plan version in force for them now."""

    plan: str
    currency: str
    valid_from: datetime
    hold_days: int
    cpa: list[CpaTerm]
    revshare_percent: Decimal
    revshare_basis: str  # "deposits" or "ngr"
    admin_fee_percent: Decimal
    ngr_deductions: list[str]
    product_percents: dict[str, Decimal]
    tiers: list[TierTerm]
    tier_mode: str
    baseline_ftds: int
    ngr_tiers: list[tuple[Decimal, Decimal]]
    subaffiliate_percents: list[Decimal]


def terms_for(affiliate: Affiliate, campaign: Campaign, at: datetime | None = None) -> Terms | None:
    """The affiliate's own terms on ``campaign``: their own plan there, else the campaign's
    default, in the version in force at ``at`` (now). None: no plan pays this campaign."""
    plan = plans.plan_for(affiliate_id=affiliate.pk, campaign_id=campaign.pk)
    return plan_terms(plan, at or timezone.now()) if plan is not None else None


def plan_terms(plan: CommissionPlan, at: datetime) -> Terms | None:
    """A plan's terms in the version in force at ``at`` (None: no version yet)."""
    version: PlanVersion | None = plans.version_at(plan, at)
    if version is None:
        return None
    ngr = version.revshare_basis == "ngr"
    return Terms(
        plan=plan.name,
        currency=plan.currency,
        valid_from=version.valid_from,
        hold_days=plan.hold_days,
        cpa=[
            CpaTerm(
                event=rule.conversion_type,
                label=rule.get_conversion_type_display(),
                amount=rule.amount,
                min_deposit=rule.min_amount,
                countries=rule.countries,
                platform=rule.platform,
                channel=rule.channel,
            )
            for rule in version.cpa_rules.all()
        ],
        revshare_percent=version.revshare_percent,
        revshare_basis=version.revshare_basis,
        admin_fee_percent=version.admin_fee_percent,
        ngr_deductions=list(version.ngr_deductions or []) if ngr else [],
        product_percents=(
            {str(k): Decimal(str(v)) for k, v in (version.product_percents or {}).items()}
            if ngr
            else {}
        ),
        tiers=[
            TierTerm(t.from_ftds, t.cpa_amount, t.revshare_percent)
            for t in sorted(version.tiers.all(), key=lambda t: t.from_ftds)
        ],
        tier_mode=version.get_tier_mode_display(),
        baseline_ftds=version.baseline_ftds,
        ngr_tiers=[
            (t.from_ngr, t.revshare_percent) for t in version.ngr_tiers.order_by("from_ngr")
        ],
        subaffiliate_percents=[Decimal(str(p)) for p in version.subaffiliate_percents or []],
    )


# --- offers -------------------------------------------------------------------------------------


@dataclass
class CapTerm:
    """A cap as the affiliate reads it: the limit, what happens past it, whether it is reached.
    How much of a cap for the whole offer is used is the program's business (other affiliates'
    volume): the affiliate sees only whether it is reached; of their own cap, the count."""

    limit: str
    past_it: str
    reached: bool
    used: str = ""


def _caps_of(affiliate: Affiliate, campaign_ids: list[int]) -> dict[int, list[CapTerm]]:
    found: dict[int, list[CapTerm]] = {}
    mine = (
        Cap.objects.filter(campaign__in=campaign_ids, is_active=True)
        .filter(Q(affiliate__isnull=True) | Q(affiliate=affiliate))
        .order_by("campaign_id", F("affiliate_id").asc(nulls_first=True), "pk")
    )
    for cap in caps.with_current_usage(mine):
        usage = caps.current_usage(cap)
        used = ""
        if cap.affiliate_id:
            count = usage.conversions if usage else 0
            amount = usage.amount if usage else 0
            used = (
                f"{amount} of {cap.limit} {cap.currency}"
                if cap.metric == Cap.Metric.PAYOUT
                else f"{count} of {int(cap.limit)}"
            )
        found.setdefault(cap.campaign_id, []).append(
            CapTerm(
                limit=cap.describe(),
                past_it=caps.PAST_IT[cap.action],
                reached=bool(usage and usage.reached_at),
                used=used,
            )
        )
    return found


@dataclass
class Offer:
    campaign: Campaign
    access: str  # "open" (public), or the CampaignAccess status, or "" (approval, not asked)
    reason: str  # the manager's, when refused or revoked
    can_link: bool
    terms: Terms | None
    platforms: list[str]
    creatives: list[Creative] = field(default_factory=list)
    links: int = 0
    caps: list[CapTerm] = field(default_factory=list)


def _platforms(campaign: Campaign) -> list[str]:
    found = []
    if campaign.ios_url or campaign.ios_app_id:
        found.append("iOS")
    if campaign.android_url or campaign.android_app_id:
        found.append("Android")
    if campaign.web_url:
        found.append("Web")
    return found


def campaigns_listed(affiliate: Affiliate, search: str = "") -> QuerySet[Campaign]:
    """The campaigns ``affiliate`` may see, by brand and name; ``search`` narrows them to those
    whose name or brand holds it."""
    campaigns = campaigns_visible(affiliate)
    search = search.strip()
    if search:
        campaigns = campaigns.filter(Q(name__icontains=search) | Q(brand__name__icontains=search))
    return campaigns.select_related("brand").order_by("brand__name", "name", "pk")


def offers_for(affiliate: Affiliate, campaigns: Iterable[Campaign] | None = None) -> list[Offer]:
    """Every campaign ``affiliate`` may see (or those of ``campaigns``, a page of
    ``campaigns_listed``), with their access and their own terms."""
    campaigns = list(campaigns_listed(affiliate) if campaigns is None else campaigns)
    accesses = {
        a.campaign_id: a
        for a in CampaignAccess.objects.filter(
            affiliate=affiliate, campaign__in=[c.pk for c in campaigns]
        )
    }
    creatives: dict[int, list[Creative]] = {}
    for creative in Creative.objects.filter(campaign__in=[c.pk for c in campaigns]):
        creatives.setdefault(creative.campaign_id, []).append(creative)
    link_counts = dict(
        TrackingLink.objects.filter(affiliate=affiliate)
        .values_list("campaign_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    caps = _caps_of(affiliate, [c.pk for c in campaigns])
    now = timezone.now()
    # Most campaigns share a default plan: each plan's terms are worked out once.
    terms: dict[int, Terms | None] = {}
    offers = []
    for campaign in campaigns:
        access = accesses.get(campaign.pk)
        if campaign.visibility == Visibility.PUBLIC:
            state, can_link = "open", True
        else:
            state = access.status if access else ""
            can_link = state == Status.APPROVED
        offers.append(
            Offer(
                campaign=campaign,
                access=state,
                reason=access.reason
                if access and state in (Status.REFUSED, Status.REVOKED)
                else "",
                can_link=can_link,
                terms=_terms_once(terms, affiliate, campaign, now),
                platforms=_platforms(campaign),
                creatives=creatives.get(campaign.pk, []) if can_link else [],
                links=link_counts.get(campaign.pk, 0),
                caps=caps.get(campaign.pk, []),
            )
        )
    return offers


def _terms_once(
    known: dict[int, Terms | None], affiliate: Affiliate, campaign: Campaign, at: datetime
) -> Terms | None:
    plan = plans.plan_for(affiliate_id=affiliate.pk, campaign_id=campaign.pk)
    if plan is None:
        return None
    if plan.pk not in known:
        known[plan.pk] = plan_terms(plan, at)
    return known[plan.pk]


def creative_for(affiliate: Affiliate, creative_id: int) -> Creative | None:
    """The creative, if it belongs to a campaign ``affiliate`` may use."""
    return (
        Creative.objects.filter(pk=creative_id, campaign__in=campaigns_usable(affiliate))
        .exclude(file="")
        .first()
    )


# --- access -------------------------------------------------------------------------------------


def access_request(
    *, affiliate: Affiliate, campaign: Campaign, message: str = ""
) -> CampaignAccess:
    """``affiliate`` asks to promote an approval-only campaign; managers are told. Asking again
    after a refusal or a revocation asks anew; asking while approved or waiting changes nothing."""
    if affiliate.status != Affiliate.Status.ACTIVE:
        raise AccessRefused("Only active affiliates can ask for access.")
    if campaign.status != Campaign.Status.ACTIVE:
        raise AccessRefused("This campaign is not running.")
    if campaign.visibility == Visibility.PUBLIC:
        raise AccessRefused("This campaign is open to every affiliate: no access to ask for.")
    if campaign.visibility == Visibility.PRIVATE:
        raise AccessRefused("This campaign is by invitation only.")
    with transaction.atomic():
        access, created = CampaignAccess.objects.select_for_update().get_or_create(
            affiliate=affiliate, campaign=campaign, defaults={"message": message[:1000]}
        )
        if not created:
            if access.status in (Status.APPROVED, Status.REQUESTED):
                return access
            access.status, access.message, access.reason = Status.REQUESTED, message[:1000], ""
            access.requested_at, access.decided_at, access.decided_by = timezone.now(), None, None
            access.save()
        audit_record(obj=access, field="status", old="", new=Status.REQUESTED, actor=affiliate.user)
        notify.notify_managers(
            NoticeKind.ACCESS_REQUEST,
            f"{affiliate.name} asks to promote {campaign.name}",
            body=message[:1000],
            url=reverse("admin:affiliates_campaignaccess_change", args=[access.pk]),
        )
    return access


def access_decide(
    *, access: CampaignAccess, approve: bool, reason: str = "", actor: Actor
) -> CampaignAccess:
    """A manager approves or refuses a request (a refusal needs a reason the affiliate reads).
    Deciding again is allowed: approving a refused request, refusing an approved one (revoked)."""
    reason = reason.strip()
    if not approve and not reason:
        raise AccessRefused("Say why: the affiliate reads the reason.")
    with transaction.atomic():
        access = CampaignAccess.objects.select_for_update().get(pk=access.pk)
        old = access.status
        if approve:
            new = Status.APPROVED
        else:
            new = Status.REVOKED if old == Status.APPROVED else Status.REFUSED
        if new == old and access.reason == reason:
            return access
        access.status, access.reason = new, reason[:500]
        access.decided_at, access.decided_by = timezone.now(), actor
        access.save()
        audit_record(obj=access, field="status", old=old, new=new, actor=actor, note=reason)
        campaign = access.campaign
        outcome = "revoked" if new == Status.REVOKED else "refused"
        notify.notify_affiliate(
            access.affiliate,
            NoticeKind.ACCESS_ANSWERED,
            (
                f"You can now promote {campaign.name}"
                if approve
                else f"Access to {campaign.name} was {outcome}"
            ),
            body=reason,
            url=reverse("affiliate-offers"),
        )
    return access


def access_grant(*, affiliate: Affiliate, campaign: Campaign, actor: Actor) -> CampaignAccess:
    """A manager lets ``affiliate`` into a private (or approval-only) campaign."""
    with transaction.atomic():
        access, _ = CampaignAccess.objects.get_or_create(affiliate=affiliate, campaign=campaign)
    return access_decide(access=access, approve=True, reason="", actor=actor)


def access_grant_for_links(campaign_ids: list[int]) -> int:
    """Approved access for each affiliate with a link on a non-public campaign who has no access
    row yet: links made by managers or the importer, or before the campaign stopped being
    public, keep working. A refused or revoked access is left as it is. Returns rows made."""
    links = TrackingLink.objects.exclude(campaign__visibility=Visibility.PUBLIC).filter(
        campaign_id__in=campaign_ids
    )
    pairs = set(links.values_list("affiliate_id", "campaign_id"))
    if not pairs:
        return 0
    known = set(
        CampaignAccess.objects.filter(
            affiliate_id__in={a for a, _ in pairs}, campaign_id__in={c for _, c in pairs}
        ).values_list("affiliate_id", "campaign_id")
    )
    now = timezone.now()
    made = CampaignAccess.objects.bulk_create(
        [
            CampaignAccess(
                affiliate_id=a, campaign_id=c, status=Status.APPROVED, decided_at=now,
                reason="", message="linked by a manager",
            )
            for a, c in sorted(pairs - known)
        ],
        ignore_conflicts=True,
    )  # fmt: skip
    return len(made)


@receiver(post_save, sender=TrackingLink)
@receiver(post_save, sender=Campaign)
def _links_keep_their_access(
    sender: type, instance: TrackingLink | Campaign, **kwargs: Any
) -> None:
    """A link saved on a non-public campaign, or a campaign made non-public, keeps the traffic of
    the affiliates who had links there (an affiliate cannot make such a link without access)."""
    if kwargs.get("raw") or (isinstance(instance, TrackingLink) and not kwargs.get("created")):
        return  # an edited link changes no access
    campaign = instance if isinstance(instance, Campaign) else instance.campaign
    if campaign.visibility != Visibility.PUBLIC:
        access_grant_for_links([campaign.pk])
