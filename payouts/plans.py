"""Which plan and version pay a conversion, and what its CPA is worth under them."""

from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from attribution.models import Conversion

from . import fx
from .models import CommissionPlan, CpaRule, PlanAssignment, PlanVersion, Tier


def plan_for(*, affiliate_id: int, campaign_id: int | None) -> CommissionPlan | None:
    """The affiliate's own plan on the campaign, else the campaign's default."""
    if campaign_id is None:
        return None
    assignments = {
        a.affiliate_id: a.plan
        for a in PlanAssignment.objects.select_related("plan").filter(
            Q(affiliate_id=affiliate_id) | Q(affiliate__isnull=True), campaign_id=campaign_id
        )
    }
    return assignments.get(affiliate_id) or assignments.get(None)


def version_at(plan: CommissionPlan, moment: datetime) -> PlanVersion | None:
    """The version in force at ``moment``."""
    return (
        PlanVersion.objects.filter(plan=plan, valid_from__lte=moment)
        .prefetch_related("cpa_rules", "tiers")
        .order_by("-valid_from")
        .first()
    )


def _qualifies(rule: CpaRule, conversion: Conversion, plan: CommissionPlan) -> bool:
    if rule.conversion_type != conversion.type:
        return False
    countries = {c.strip().upper() for c in rule.countries.split(",") if c.strip()}
    if countries and conversion.country.upper() not in countries:
        return False
    if rule.platform and rule.platform != conversion.platform:
        return False
    if rule.channel and rule.channel != conversion.channel:
        return False
    if rule.min_amount is not None:
        if conversion.revenue is None:
            return False
        rate = fx.rate(conversion.currency or plan.currency, plan.currency, conversion.occurred_at)
        if conversion.revenue * rate < rule.min_amount:
            return False
    return True


def cpa_rule(version: PlanVersion, conversion: Conversion) -> CpaRule | None:
    """The first of the version's CPA rules this conversion qualifies for."""
    for rule in version.cpa_rules.all():
        if _qualifies(rule, conversion, version.plan):
            return rule
    return None


def tier_for(version: PlanVersion, ftds: int) -> Tier | None:
    """The tier the month's ``ftds``-th qualified FTD falls in (None below the first tier)."""
    reached = [t for t in version.tiers.all() if t.from_ftds <= ftds]
    return max(reached, key=lambda t: t.from_ftds) if reached else None


def cpa_amount(version: PlanVersion, rule: CpaRule, ordinal: int) -> tuple[Decimal, str]:
    """The CPA (plan currency) for the month's ``ordinal``-th qualified conversion, and a note."""
    if rule.conversion_type != "ftd":
        return rule.amount, ""
    if ordinal <= version.baseline_ftds:
        return Decimal(0), f"baseline: FTD {ordinal} of {version.baseline_ftds} unpaid"
    tier = tier_for(version, ordinal)
    if tier is not None and tier.cpa_amount is not None:
        return tier.cpa_amount, f"tier from FTD {tier.from_ftds}"
    return rule.amount, ""
