"""The REST API's shapes for payouts and commission plans (parse and render only)."""

from decimal import Decimal
from typing import Any

from django.urls import reverse
from rest_framework import serializers

from attribution.models import Channel
from portal.api import CURRENCY, model_clean

from . import invoices
from .models import (
    NGR_DEDUCTIONS,
    CommissionPlan,
    CpaRule,
    NgrTier,
    Payout,
    PayoutRun,
    PlanVersion,
    Tier,
)


class PayoutSerializer(serializers.ModelSerializer):
    period_start = serializers.DateField(source="run.period_start", read_only=True)
    period_end = serializers.DateField(source="run.period_end", read_only=True)
    statement_url = serializers.SerializerMethodField(help_text="The printable statement.")
    invoice_url = serializers.SerializerMethodField(
        help_text="The self-billing invoice (PDF); null until the payout is approved."
    )

    class Meta:
        model = Payout
        fields = [
            "id",
            "affiliate",
            "amount",
            "currency",
            "status",
            "reference",
            "period_start",
            "period_end",
            "paid_at",
            "created_at",
            "statement_url",
            "invoice_url",
        ]
        read_only_fields = fields

    def get_statement_url(self, payout: Payout) -> str:
        url = reverse("payout-statement", args=[payout.pk])
        return self.context["request"].build_absolute_uri(url)

    def get_invoice_url(self, payout: Payout) -> str | None:
        """The self-billing invoice (PDF), once the payout is approved."""
        if payout.status not in invoices.INVOICEABLE:
            return None
        url = reverse("payout-invoice", args=[payout.pk])
        return self.context["request"].build_absolute_uri(url)


# --- commission plans (managers) ----------------------------------------------------------------


class CpaRuleSerializer(serializers.ModelSerializer):
    platform = serializers.ChoiceField(
        choices=[("", "Any"), ("ios", "iOS"), ("android", "Android"), ("web", "Web")],
        required=False,
    )
    channel = serializers.ChoiceField(choices=[("", "Any"), *Channel.choices], required=False)

    class Meta:
        model = CpaRule
        fields = ["conversion_type", "amount", "min_amount", "countries", "platform", "channel"]


class TierSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tier
        fields = ["from_ftds", "cpa_amount", "revshare_percent"]


class NgrTierSerializer(serializers.ModelSerializer):
    class Meta:
        model = NgrTier
        fields = ["from_ngr", "revshare_percent"]


class PlanVersionSerializer(serializers.ModelSerializer):
    cpa_rules = CpaRuleSerializer(many=True, required=False)
    tiers = TierSerializer(many=True, required=False)
    ngr_tiers = NgrTierSerializer(
        many=True, required=False, help_text="NGR basis: the RevShare percent from a month's NGR"
    )
    ngr_deductions = serializers.ListField(
        child=serializers.ChoiceField(choices=NGR_DEDUCTIONS),
        required=False,
        help_text="NGR basis: what is taken off GGR (default: all four)",
    )
    product_percents = serializers.DictField(
        child=serializers.DecimalField(
            max_digits=7, decimal_places=4, min_value=Decimal(0), max_value=Decimal(100)
        ),
        required=False,
        help_text='NGR basis: a percent per product, e.g. {"casino": "30", "sportsbook": "25"}',
    )
    subaffiliate_percents = serializers.ListField(
        child=serializers.DecimalField(
            max_digits=7, decimal_places=4, min_value=Decimal(0), max_value=Decimal(100)
        ),
        required=False,
        help_text="Percent of a sub-affiliate's commission per level up: the parent, the "
        "grandparent...",
    )

    class Meta:
        model = PlanVersion
        fields = [
            "id",
            "plan",
            "valid_from",
            "revshare_percent",
            "admin_fee_percent",
            "tier_mode",
            "baseline_ftds",
            "subaffiliate_percents",
            "revshare_basis",
            "ngr_deductions",
            "product_percents",
            "cpa_rules",
            "tiers",
            "ngr_tiers",
        ]
        read_only_fields = ["plan"]

    def validate_subaffiliate_percents(self, percents: list[Decimal]) -> list[str]:
        # Kept as strings in JSON: the ledger reads them back with Decimal(str(p)).
        return [str(p) for p in percents]

    def validate_product_percents(self, percents: dict[str, Decimal]) -> dict[str, str]:
        return {str(product).lower(): str(p) for product, p in percents.items()}

    def validate_ngr_deductions(self, deductions: list[str]) -> list[str]:
        return list(dict.fromkeys(deductions))

    def validate_ngr_tiers(self, tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        starts = [t["from_ngr"] for t in tiers]
        if len(starts) != len(set(starts)):
            raise serializers.ValidationError("Two tiers start at the same NGR.")
        return tiers

    def validate_tiers(self, tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        starts = [t["from_ftds"] for t in tiers]
        if len(starts) != len(set(starts)):
            raise serializers.ValidationError("Two tiers start at the same FTD.")
        return tiers

    def validate_valid_from(self, valid_from: Any) -> Any:
        if not 2000 <= valid_from.year <= 2100:
            raise serializers.ValidationError("A version starts between 2000 and 2100.")
        plan = self.context.get("plan")
        if plan is not None and plan.versions.filter(valid_from=valid_from).exists():
            raise serializers.ValidationError("The plan already has a version from then.")
        return valid_from

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        fields = {k: v for k, v in attrs.items() if k not in ("cpa_rules", "tiers", "ngr_tiers")}
        model_clean(PlanVersion(**fields))
        return attrs


class CommissionPlanSerializer(serializers.ModelSerializer):
    currency = serializers.CharField(max_length=3, validators=[CURRENCY], required=False)
    versions = PlanVersionSerializer(many=True, read_only=True)

    class Meta:
        model = CommissionPlan
        fields = [
            "id",
            "name",
            "currency",
            "hold_days",
            "negative_carryover",
            "created_at",
            "versions",
        ]
        read_only_fields = ["created_at"]


# --- payout runs (managers) ---------------------------------------------------------------------


class PayoutRunSerializer(serializers.ModelSerializer):
    confirm_open_months = serializers.BooleanField(
        write_only=True,
        default=False,
        help_text="Create the run although RevShare is not closed for a month of it.",
    )
    totals = serializers.SerializerMethodField(
        help_text="Payouts not cancelled, summed per currency (decimal strings)."
    )

    class Meta:
        model = PayoutRun
        fields = [
            "id",
            "period_start",
            "period_end",
            "status",
            "total_affiliates",
            "done_affiliates",
            "totals",
            "created_at",
            "finished_at",
            "confirm_open_months",
        ]
        read_only_fields = [
            "id",
            "status",
            "total_affiliates",
            "done_affiliates",
            "totals",
            "created_at",
            "finished_at",
        ]

    def get_totals(self, run: PayoutRun) -> dict[str, str]:
        totals: dict[str, Decimal] = {}
        for payout in run.payouts.all():
            if payout.status != Payout.Status.CANCELLED:
                totals[payout.currency] = totals.get(payout.currency, Decimal(0)) + payout.amount
        return {currency: f"{amount:.2f}" for currency, amount in sorted(totals.items())}
