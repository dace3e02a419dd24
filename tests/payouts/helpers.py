"""Building plans and conversions for the money tests, through the real services."""

from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import transaction

from affiliates.models import Affiliate, Campaign
from attribution.models import Conversion
from payouts import activity, ledger
from payouts.models import (
    CommissionPlan,
    CpaRule,
    FxRate,
    NgrTier,
    PlanAssignment,
    PlanVersion,
    Tier,
)
from tests.factories import ConversionFactory

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def plan(
    campaign: Campaign,
    *,
    name: str = "Plan",
    currency: str = "EUR",
    hold_days: int = 0,
    carryover: bool = True,
    cpa: dict[str, str] | None = None,
    min_deposit: str | None = None,
    revshare: str = "0",
    fee: str = "0",
    tiers: list[tuple[int, str]] | None = None,
    tier_mode: str = "progressive",
    baseline: int = 0,
    sub_levels: list[str] | None = None,
    valid_from: datetime = EPOCH,
    affiliate: Affiliate | None = None,
) -> CommissionPlan:
    """A plan with one version, assigned as the campaign's default (or to one affiliate)."""
    commission_plan, _ = CommissionPlan.objects.get_or_create(
        name=name,
        defaults={"currency": currency, "hold_days": hold_days, "negative_carryover": carryover},
    )
    version = PlanVersion.objects.create(
        plan=commission_plan,
        valid_from=valid_from,
        revshare_percent=Decimal(revshare),
        admin_fee_percent=Decimal(fee),
        tier_mode=tier_mode,
        baseline_ftds=baseline,
        subaffiliate_percents=sub_levels or [],
    )
    for kind, amount in (cpa or {}).items():
        CpaRule.objects.create(
            version=version,
            conversion_type=kind,
            amount=Decimal(amount),
            min_amount=Decimal(min_deposit) if min_deposit and kind == "ftd" else None,
        )
    for from_ftds, amount in tiers or []:
        Tier.objects.create(version=version, from_ftds=from_ftds, cpa_amount=Decimal(amount))
    PlanAssignment.objects.get_or_create(
        plan=commission_plan, campaign=campaign, affiliate=affiliate
    )
    return commission_plan


def convert(
    affiliate: Affiliate,
    campaign: Campaign,
    *,
    type: str = "ftd",
    amount: str | None = "100.00",
    currency: str = "EUR",
    at: datetime = datetime(2026, 10, 5, 12, tzinfo=UTC),
    player: str = "",
    status: str = "approved",
) -> Conversion:
    """A conversion credited to ``affiliate``, the ledger brought in line as the worker does."""
    with transaction.atomic():
        conversion = ConversionFactory(
            affiliate=affiliate,
            campaign=campaign,
            type=type,
            occurred_at=at,
            revenue=Decimal(amount) if amount is not None else None,
            currency=currency if amount is not None else "",
            player_key=player,
            status=status,
        )
        ledger.ledger_sync(conversion=conversion)
    return conversion


def fx(day: date, **rates: str) -> None:
    for currency, rate in rates.items():
        FxRate.objects.create(day=day, currency=currency, rate=Decimal(rate))


def ngr_plan(
    campaign: Campaign,
    *,
    name: str = "NGR plan",
    currency: str = "EUR",
    percent: str = "30",
    deductions: tuple[str, ...] = ("bonuses", "chargebacks", "taxes", "fees"),
    fee: str = "0",
    products: dict[str, str] | None = None,
    carryover: bool = True,
    ngr_tiers: list[tuple[str, str]] | None = None,
    ftd_tiers: list[tuple[int, str]] | None = None,
    affiliate: Affiliate | None = None,
) -> CommissionPlan:
    """A plan whose RevShare is on NGR, assigned as the campaign's default."""
    commission_plan = CommissionPlan.objects.create(
        name=name, currency=currency, hold_days=0, negative_carryover=carryover
    )
    version = PlanVersion.objects.create(
        plan=commission_plan,
        valid_from=EPOCH,
        revshare_percent=Decimal(percent),
        admin_fee_percent=Decimal(fee),
        revshare_basis="ngr",
        ngr_deductions=list(deductions),
        product_percents=products or {},
    )
    for from_ngr, tier_percent in ngr_tiers or []:
        NgrTier.objects.create(
            version=version, from_ngr=Decimal(from_ngr), revshare_percent=Decimal(tier_percent)
        )
    for from_ftds, tier_percent in ftd_tiers or []:
        Tier.objects.create(
            version=version, from_ftds=from_ftds, revshare_percent=Decimal(tier_percent)
        )
    PlanAssignment.objects.create(plan=commission_plan, campaign=campaign, affiliate=affiliate)
    return commission_plan


def register(
    affiliate: Affiliate | None,
    campaign: Campaign,
    player: str,
    *,
    at: datetime = datetime(2026, 10, 1, 9, tzinfo=UTC),
    type: str = "registration",
    amount: str | None = None,
    channel: str = "web",
) -> Conversion:
    """The player's registration (or FTD) as attribution leaves it, credited to ``affiliate``."""
    with transaction.atomic():
        conversion = ConversionFactory(
            affiliate=affiliate,
            campaign=campaign,
            brand=campaign.brand,
            type=type,
            occurred_at=at,
            player_key=f"player:{campaign.brand_id}:{player}",
            revenue=Decimal(amount) if amount else None,
            currency="EUR" if amount else "",
            channel=channel,
            platform="ios" if channel == "mobile" else "web",
            reason="ok" if affiliate else "organic",
            method="click_id" if affiliate else "none",
        )
        ledger.ledger_sync(conversion=conversion)
    return conversion


def send_activity(campaign: Campaign, *rows: dict) -> activity.Outcome:
    """Rows of player activity for the campaign's brand, through the real ingestion."""
    outcome, errors = activity.activity_ingest(raw_rows=list(rows), brand_id=campaign.brand_id)
    assert not errors, errors
    return outcome


def day(player: str, on: str, product: str = "casino", currency: str = "EUR", **amounts) -> dict:
    return {"player_id": player, "date": on, "product": product, "currency": currency, **amounts}
