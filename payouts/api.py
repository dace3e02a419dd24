"""REST API: payouts (affiliates: their own) and commission plans (managers)."""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from affiliates.permissions import IsManager, IsManagerOrActiveAffiliate, scoped
from portal.api import ID, IdFilter

from .models import CommissionPlan, CpaRule, Payout, PlanVersion, Tier
from .serializers import CommissionPlanSerializer, PayoutSerializer, PlanVersionSerializer


class PayoutFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Payout.Status.choices)
    affiliate = IdFilter(field_name="affiliate_id", help_text="Managers: one affiliate's.")

    class Meta:
        model = Payout
        fields: list[str] = []


@extend_schema(tags=["payouts"])
class PayoutViewSet(viewsets.ReadOnlyModelViewSet):
    """The affiliate's payouts (managers: all), newest first, with their statements."""

    lookup_value_regex = ID
    permission_classes = [IsManagerOrActiveAffiliate]
    serializer_class = PayoutSerializer
    filterset_class = PayoutFilter

    def get_queryset(self) -> QuerySet[Payout]:
        payouts = (
            Payout.objects.select_related("run")
            .only(
                "id",
                "affiliate",
                "amount",
                "currency",
                "status",
                "reference",
                "paid_at",
                "created_at",
                "run__period_start",
                "run__period_end",
            )
            .order_by("-created_at", "-pk")
        )
        return scoped(payouts, self.request.user)


# --- commission plans (managers) ----------------------------------------------------------------


def plan_version_add(
    *,
    plan: CommissionPlan,
    cpa_rules: list[dict[str, Any]],
    tiers: list[dict[str, Any]],
    **terms: Any,
) -> PlanVersion:
    """A new version of ``plan`` with its CPA rules and tiers, all or nothing.

    Plain ORM writes; belongs in ``payouts.plans`` (or a ``payouts.services``) once one is made.
    """
    with transaction.atomic():
        version = PlanVersion.objects.create(plan=plan, **terms)
        CpaRule.objects.bulk_create(CpaRule(version=version, **rule) for rule in cpa_rules)
        Tier.objects.bulk_create(Tier(version=version, **tier) for tier in tiers)
    return version


@extend_schema(tags=["plans"])
class CommissionPlanViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Commission plans with their versions (read-only here: add one with POST .../versions/)."""

    lookup_value_regex = ID
    permission_classes = [IsManager]
    serializer_class = CommissionPlanSerializer

    def get_queryset(self) -> QuerySet[CommissionPlan]:
        versions = PlanVersion.objects.order_by("-valid_from").prefetch_related(
            "cpa_rules", "tiers"
        )
        return CommissionPlan.objects.prefetch_related(
            Prefetch("versions", queryset=versions)
        ).order_by("name", "pk")

    @extend_schema(
        request=PlanVersionSerializer,
        responses={201: PlanVersionSerializer},
        summary="Add a version (terms from valid_from on) with its CPA rules and tiers",
    )
    @action(detail=True, methods=["post"], serializer_class=PlanVersionSerializer)
    def versions(self, request: Request, pk: str | None = None) -> Response:
        plan = self.get_object()
        serializer = PlanVersionSerializer(
            data=request.data, context={**self.get_serializer_context(), "plan": plan}
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        try:
            version = plan_version_add(
                plan=plan,
                cpa_rules=data.pop("cpa_rules", []),
                tiers=data.pop("tiers", []),
                **data,
            )
        except IntegrityError as exc:
            # Another request added a version from the same moment first.
            raise serializers.ValidationError(
                {"valid_from": ["The plan already has a version from then."]}
            ) from exc
        return Response(
            PlanVersionSerializer(version, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )
