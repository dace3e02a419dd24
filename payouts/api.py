"""REST API: payouts (affiliates: their own) and commission plans (managers)."""

import json
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema
from rest_framework import authentication, exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from affiliates.permissions import IsManager, IsManagerOrActiveAffiliate, is_manager, scoped
from portal.api import ID, ErrorSerializer, IdFilter

from . import activity
from .models import BrandApiToken, CommissionPlan, CpaRule, NgrTier, Payout, PlanVersion, Tier
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
    ngr_tiers: list[dict[str, Any]] | None = None,
    **terms: Any,
) -> PlanVersion:
    """A new version of ``plan`` with its CPA rules and tiers, all or nothing.

    Plain ORM writes; belongs in ``payouts.plans`` (or a ``payouts.services``) once one is made.
    """
    with transaction.atomic():
        version = PlanVersion.objects.create(plan=plan, **terms)
        CpaRule.objects.bulk_create(CpaRule(version=version, **rule) for rule in cpa_rules)
        Tier.objects.bulk_create(Tier(version=version, **tier) for tier in tiers)
        NgrTier.objects.bulk_create(NgrTier(version=version, **tier) for tier in ngr_tiers or [])
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
            "cpa_rules", "tiers", "ngr_tiers"
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
                ngr_tiers=data.pop("ngr_tiers", []),
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


# --- the operator's player activity (managers, or the brand's own token) -----------------------


class BrandTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Brand <key>``: the operator's platform, for its own brand's activity."""

    keyword = "Brand"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, BrandApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace") != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization: Brand <key>")
        key = header[1].decode(errors="replace")
        token = BrandApiToken.objects.filter(key=key, active=True).select_related("brand").first()
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown or inactive brand token.")
        return AnonymousUser(), token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class BrandTokenScheme(OpenApiAuthenticationExtension):
    target_class = BrandTokenAuthentication
    name = "brandToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Brand <key>`: a brand's API token (Admin > Brand API tokens).",
        }


class IsManagerOrBrandToken(BasePermission):
    message = "Only affiliate managers and the brand's own API token may send player activity."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, BrandApiToken) or is_manager(request.user)


# A 10,000-row request with every column is about 3 MB of JSON; Django's own cap (2.5 MB) is
# for forms, so this view reads its body itself, up to this.
ACTIVITY_MAX_BYTES = 8 * 1024 * 1024


class ActivityRowSerializer(serializers.Serializer):
    """One player's activity on one day and product (the schema; rows are checked by
    ``payouts.activity``). Amounts are decimal strings; ``ggr`` or ``bets`` and ``wins``."""

    brand = serializers.IntegerField(
        required=False, help_text="The brand's id: managers; a brand token sends its own."
    )
    player_id = serializers.CharField(max_length=100)
    date = serializers.DateField()
    product = serializers.CharField(max_length=32, help_text="casino, sportsbook, poker, ...")
    currency = serializers.CharField(max_length=3)
    bets = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)
    wins = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)
    ggr = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)
    bonuses = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)
    chargebacks = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)
    taxes = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)
    fees = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)
    deposits = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)
    withdrawals = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)


class ActivityOutcomeSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    revised = serializers.IntegerField(help_text="Rows replaced by other amounts (audited)")
    unchanged = serializers.IntegerField(help_text="Rows sent again as they were")


class RowErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The row's 0-based place in the array")
    field = serializers.CharField()
    reason = serializers.CharField()


class ActivityRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = RowErrorSerializer(many=True)


@extend_schema(tags=["player activity"])
class PlayerActivityView(APIView):
    """The operator's daily player activity: a JSON array of up to 10,000 rows, all or none."""

    authentication_classes = [
        BrandTokenAuthentication,
        *api_settings.DEFAULT_AUTHENTICATION_CLASSES,
    ]
    permission_classes = [IsManagerOrBrandToken]
    parser_classes: list = []  # the body is read here, with its own cap

    @extend_schema(
        request=ActivityRowSerializer(many=True),
        responses={
            200: ActivityOutcomeSerializer,
            400: ActivityRefusedSerializer,
            413: ErrorSerializer,
        },
        summary="Send player activity (idempotent per brand, player, date and product)",
    )
    def post(self, request: Request) -> Response:
        body = request.stream.read(ACTIVITY_MAX_BYTES + 1) if request.stream else b""
        if len(body) > ACTIVITY_MAX_BYTES:
            return Response(
                {"detail": f"The body is over {ACTIVITY_MAX_BYTES} bytes: send fewer rows."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            rows = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return Response({"detail": "The body is not JSON.", "errors": []}, status=400)
        if not isinstance(rows, list):
            return Response({"detail": "The body is a JSON array of rows.", "errors": []}, 400)
        if len(rows) > activity.MAX_ROWS:
            detail = f"{len(rows)} rows: at most {activity.MAX_ROWS} a request."
            return Response({"detail": detail, "errors": []}, status=400)
        token = request.auth if isinstance(request.auth, BrandApiToken) else None
        outcome, errors = activity.activity_ingest(
            raw_rows=rows,
            brand_id=token.brand_id if token else None,
            actor=request.user,
            token=token,
        )
        if errors:
            detail = f"{len({e.index for e in errors})} bad row(s): nothing was stored."
            return Response({"detail": detail, "errors": [e.as_dict() for e in errors]}, 400)
        return Response(outcome.as_dict())
