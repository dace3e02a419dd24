"""Building plans and conversions for the money tests, through the real services."""

from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import transaction

from affiliates.models import Affiliate, Campaign
from attribution.models import Conversion
from payouts import ledger
from payouts.models import CommissionPlan, CpaRule, FxRate, PlanAssignment, PlanVersion, Tier
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
