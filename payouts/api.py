"""REST API: payouts (affiliates: their own) and commission plans (managers)."""

import csv
import json
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import authentication, exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from affiliates.permissions import (
    IsManager,
    IsManagerOrActiveAffiliate,
    active_affiliate,
    is_manager,
    scoped,
)
from attribution.crediting import multitouch
from attribution.models import Channel
from portal.api import ID, ErrorSerializer, IdFilter

from . import activity, reports, runs, tasks
from .models import (
    BrandApiToken,
    CommissionPlan,
    CpaRule,
    NgrTier,
    Payout,
    PayoutRun,
    PlanVersion,
    Tier,
)
from .serializers import (
    CommissionPlanSerializer,
    PayoutRunSerializer,
    PayoutSerializer,
    PlanVersionSerializer,
)


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

    # The user's token first: its keyword is what a 401 asks for.
    authentication_classes = [
        *api_settings.DEFAULT_AUTHENTICATION_CLASSES,
        BrandTokenAuthentication,
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


# --- player and cohort reports (affiliates: their own players) ---------------------------------


@extend_schema_field({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "example": "2026-10"})
class MonthField(serializers.Field):
    """A month, YYYY-MM, as its first day."""

    def to_internal_value(self, data: Any) -> date:
        try:
            month = date.fromisoformat(f"{data}-01")
        except (TypeError, ValueError):
            raise serializers.ValidationError("a month, YYYY-MM") from None
        if not 2000 <= month.year <= 2100:
            raise serializers.ValidationError("a month between 2000 and 2100")
        return month

    def to_representation(self, value: date) -> str:
        return f"{value:%Y-%m}"


class PlayerScopeQuery(serializers.Serializer):
    affiliate = serializers.IntegerField(
        required=False, min_value=1, help_text="Managers: one affiliate's players."
    )
    campaign = serializers.IntegerField(required=False, min_value=1)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)


class PlayerReportQuery(PlayerScopeQuery):
    start = MonthField(required=False, help_text="First month, YYYY-MM (default: the first)")
    end = MonthField(required=False, help_text="Last month, YYYY-MM (default: the latest)")


class CohortQuery(PlayerScopeQuery):
    by = serializers.ChoiceField(choices=["ftd_month", "registration_month"], default="ftd_month")
    metric = serializers.ChoiceField(choices=reports.METRICS, default="ngr")
    model = serializers.ChoiceField(
        choices=multitouch.EVERY_MODEL,
        required=False,
        help_text="Credit players by this attribution model instead of the campaign's own: a "
        "player counts for each affiliate with a share, with that share of the figures.",
    )
    through = MonthField(required=False, help_text="The last month shown (default: this one)")


class PlayerRowSerializer(serializers.Serializer):
    player = serializers.CharField(help_text="A stable pseudonymous id, not the operator's")
    affiliate = serializers.IntegerField(source="affiliate_id")
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
    channel = serializers.CharField(help_text="mobile or web: how the player came")
    registered_on = serializers.DateField(allow_null=True)
    ftd_on = serializers.DateField(allow_null=True)
    ftd_amount = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    deposits = serializers.DecimalField(max_digits=20, decimal_places=2)
    ngr = serializers.DecimalField(max_digits=20, decimal_places=2)
    commission = serializers.DecimalField(max_digits=20, decimal_places=2)


class PlayerReportSerializer(serializers.Serializer):
    currency = serializers.CharField()
    players = PlayerRowSerializer(many=True)


class CohortSerializer(serializers.Serializer):
    cohort = MonthField()
    players = serializers.IntegerField()
    values = serializers.ListField(
        child=serializers.CharField(),
        help_text="values[k]: the metric in the k-th month since the cohort's month (money as "
        "decimal strings in the viewer's currency; players as counts)",
    )


class CohortsSerializer(serializers.Serializer):
    currency = serializers.CharField()
    by = serializers.CharField()
    metric = serializers.CharField()
    cohorts = CohortSerializer(many=True)


class CsvRenderer(BaseRenderer):
    """``?format=csv``: the view answers the CSV itself; this only lets DRF choose it."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None):
        return data if isinstance(data, bytes | str) else json.dumps(data)


BAD_QUERY = OpenApiResponse(ErrorSerializer, description="A filter that cannot be used.")
NO_AFFILIATE = OpenApiResponse(ErrorSerializer, description="No such affiliate (of yours).")
AS_CSV = OpenApiParameter("format", str, enum=["json", "csv"], description="csv: a CSV file")


class PlayerReportBase(APIView):
    permission_classes = [IsManagerOrActiveAffiliate]
    renderer_classes = [JSONRenderer, CsvRenderer]
    query_class: type[PlayerScopeQuery] = PlayerScopeQuery

    def parse(self, request: Request) -> tuple[dict[str, Any], reports.Scope]:
        query = self.query_class(
            data={k: v for k, v in request.query_params.items() if v != "" and k != "format"}
        )
        if not query.is_valid():
            name, messages = next(iter(query.errors.items()))
            raise serializers.ValidationError({"detail": f"{name}: {' '.join(map(str, messages))}"})
        data = query.validated_data
        wanted = data.get("affiliate")
        if is_manager(request.user):
            ids = [wanted] if wanted is not None else None
            currency = settings.BASE_CURRENCY
        else:
            affiliate = active_affiliate(request.user)
            if wanted is not None and wanted != affiliate.pk:
                raise exceptions.NotFound("No such affiliate.")
            ids, currency = [affiliate.pk], affiliate.currency
        scope = reports.Scope(
            affiliate_ids=ids,
            currency=currency,
            campaign_id=data.get("campaign"),
            channel=data.get("channel", ""),
        )
        return data, scope

    def csv(self, name: str, header: list[str], rows: list[list[Any]]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        writer = csv.writer(response)
        writer.writerow(header)
        writer.writerows(rows)
        return response


@extend_schema(tags=["reports"])
class PlayerReportView(PlayerReportBase):
    """Each player the affiliate brought (managers: any affiliate's), with registration and
    FTD, and deposits, NGR and commission of the months asked for; ``?format=csv`` for CSV."""

    query_class = PlayerReportQuery

    @extend_schema(
        parameters=[PlayerReportQuery, AS_CSV],
        responses={200: PlayerReportSerializer, 400: BAD_QUERY, 404: NO_AFFILIATE},
    )
    def get(self, request: Request) -> Response | HttpResponse:
        data, scope = self.parse(request)
        rows = reports.player_report(scope, first=data.get("start"), last=data.get("end"))
        if request.accepted_renderer.format == "csv":
            fields = list(PlayerRowSerializer().fields)
            return self.csv(
                "players",
                fields,
                [
                    [
                        _cell(getattr(r, f if f not in ("affiliate", "campaign") else f"{f}_id"))
                        for f in fields
                    ]
                    for r in rows
                ],
            )
        return Response(PlayerReportSerializer({"currency": scope.currency, "players": rows}).data)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


@extend_schema(tags=["reports"])
class CohortView(PlayerReportBase):
    """Players by registration or FTD month (rows) and months since (columns); CSV too."""

    query_class = CohortQuery

    @extend_schema(
        parameters=[CohortQuery, AS_CSV],
        responses={200: CohortsSerializer, 400: BAD_QUERY, 404: NO_AFFILIATE},
    )
    def get(self, request: Request) -> Response | HttpResponse:
        data, scope = self.parse(request)
        through = data.get("through") or timezone.now().date().replace(day=1)
        found = reports.cohorts(
            scope,
            by=data["by"],
            metric=data["metric"],
            through=through,
            model=data.get("model", ""),
        )
        if request.accepted_renderer.format == "csv":
            width = max((len(c.values) for c in found), default=0)
            return self.csv(
                "cohorts",
                ["cohort", "players", *[f"m{k}" for k in range(width)]],
                [[f"{c.cohort:%Y-%m}", c.players, *c.values] for c in found],
            )
        body = {"currency": scope.currency, "by": data["by"], "metric": data["metric"]}
        return Response(CohortsSerializer({**body, "cohorts": found}).data)


class ModelQuery(serializers.Serializer):
    start = MonthField(required=False, help_text="First month, YYYY-MM (default: this one)")
    end = MonthField(required=False, help_text="Last month, YYYY-MM (default: the start)")


class CreditSerializer(serializers.Serializer):
    installs = serializers.DecimalField(max_digits=20, decimal_places=6)
    ftds = serializers.DecimalField(max_digits=20, decimal_places=6)
    ngr = serializers.DecimalField(max_digits=20, decimal_places=2)
    commission = serializers.DecimalField(max_digits=20, decimal_places=2)


class ModelRowSerializer(serializers.Serializer):
    affiliate = serializers.IntegerField(source="affiliate_id")
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
    credit = serializers.DictField(
        child=CreditSerializer(), help_text="Per model: what it credits this row with"
    )


class ModelComparisonSerializer(serializers.Serializer):
    currency = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    rows = ModelRowSerializer(many=True)


@extend_schema(tags=["reports"])
class ModelComparisonView(APIView):
    """Managers: installs, FTDs, NGR and commission per affiliate and campaign under each
    attribution model (first, last, linear, time-decay, position-based, data-driven), side by
    side. Money still follows each campaign's own model."""

    permission_classes = [IsManager]

    @extend_schema(
        parameters=[ModelQuery], responses={200: ModelComparisonSerializer, 400: BAD_QUERY}
    )
    def get(self, request: Request) -> Response:
        query = ModelQuery(data={k: v for k, v in request.query_params.items() if v != ""})
        if not query.is_valid():
            name, messages = next(iter(query.errors.items()))
            raise serializers.ValidationError({"detail": f"{name}: {' '.join(map(str, messages))}"})
        first = query.validated_data.get("start") or timezone.now().date().replace(day=1)
        last = query.validated_data.get("end") or first
        if last < first:
            raise serializers.ValidationError({"detail": "end: before the start"})
        rows = reports.model_comparison(first=first, last=last, currency=settings.BASE_CURRENCY)
        data = {
            "currency": settings.BASE_CURRENCY,
            "models": list(multitouch.EVERY_MODEL),
            "rows": rows,
        }
        return Response(ModelComparisonSerializer(data).data)


# --- payout runs (managers) ---------------------------------------------------------------------


@extend_schema(tags=["payouts"])
class PayoutRunViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Payout runs, newest first. Creating one checks the period as the admin does (a reversed,
    overlapping or repeated period is a 400; months with RevShare not closed need
    ``confirm_open_months``), then a worker works it out."""

    lookup_value_regex = ID
    permission_classes = [IsManager]
    serializer_class = PayoutRunSerializer

    def get_queryset(self) -> QuerySet[PayoutRun]:
        return PayoutRun.objects.prefetch_related("payouts").order_by("-created_at", "-pk")

    def perform_create(self, serializer: PayoutRunSerializer) -> None:
        data = serializer.validated_data
        try:
            run = runs.payout_run_create(
                period_start=data["period_start"],
                period_end=data["period_end"],
                actor=self.request.user,
                open_months_confirmed=data.get("confirm_open_months", False),
            )
        except runs.MonthsOpen as exc:
            raise serializers.ValidationError({"confirm_open_months": [str(exc)]}) from exc
        except runs.PayoutError as exc:
            raise serializers.ValidationError({"period_end": [str(exc)]}) from exc
        transaction.on_commit(lambda: tasks.execute_run.delay(run.pk))
        serializer.instance = run
