"""REST API: stats (the dashboard's selectors), conversions and clicks, scoped to the viewer."""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from affiliates.models import Affiliate, Platform
from affiliates.permissions import IsManagerOrActiveAffiliate, active_affiliate, is_manager, scoped
from attribution.models import Channel, Click, Conversion, ConversionType
from attribution.rollups import reports
from attribution.serializers import (
    BreakdownQuerySerializer,
    BreakdownSerializer,
    ClickSerializer,
    ConversionSerializer,
    ManagerClickSerializer,
    StatsModelQuerySerializer,
    StatsQuerySerializer,
    StatsSerializer,
    period_data,
)
from payouts import reports as payouts_reports
from portal.api import ID, ErrorSerializer, IdFilter, InstantFilter

BAD_QUERY = OpenApiResponse(ErrorSerializer, description="A period or filter that cannot be used.")
NO_AFFILIATE = OpenApiResponse(ErrorSerializer, description="No such affiliate (of yours).")


# --- stats --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportScope:
    """Whose figures, in which currency, on whose local days."""

    affiliate_ids: list[int]
    currency: str
    time_zone: str


def report_scope(request: Request, affiliate_id: int | None) -> ReportScope:
    """An affiliate: its own figures, whatever it asks for. A manager: one affiliate or all."""
    if is_manager(request.user):
        if affiliate_id is None:
            ids = list(Affiliate.objects.order_by("pk").values_list("pk", flat=True))
            return ReportScope(ids, settings.BASE_CURRENCY, "UTC")
        affiliates = Affiliate.objects.only("pk", "currency", "time_zone")
        affiliate = affiliates.filter(pk=affiliate_id).first()
    else:
        affiliate = active_affiliate(request.user)
        if affiliate_id is not None and affiliate_id != affiliate.pk:
            affiliate = None
    if affiliate is None:
        raise NotFound("No such affiliate.")
    return ReportScope([affiliate.pk], affiliate.currency, affiliate.time_zone)


class ReportView(APIView):
    permission_classes = [IsManagerOrActiveAffiliate]
    query_serializer: type[StatsQuerySerializer] = StatsQuerySerializer

    def parse(
        self, request: Request
    ) -> tuple[StatsQuerySerializer, ReportScope, reports.Period, reports.Filters]:
        """The query, whose figures it asks for, its period and filters; a 400 that says what
        is wrong."""
        query = self.query_serializer(
            data={k: v for k, v in request.query_params.items() if v != ""}
        )
        if not query.is_valid():
            name, messages = next(iter(query.errors.items()))
            raise ValidationError({"detail": f"{name}: {' '.join(map(str, messages))}"})
        scope = report_scope(request, query.validated_data.get("affiliate"))
        try:
            period = reports.period_for(
                query.validated_data["period"],
                time_zone=scope.time_zone,
                start=query.validated_data.get("start"),
                end=query.validated_data.get("end"),
            )
            filters = query.filters()
        except reports.ReportError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return query, scope, period, filters


class StatsView(ReportView):
    """Mobile (iOS, Android, SKAN) beside web for a period: the dashboard's figures."""

    query_serializer = StatsModelQuerySerializer

    @extend_schema(
        tags=["stats"],
        parameters=[StatsModelQuerySerializer],
        responses={200: StatsSerializer, 400: BAD_QUERY, 404: NO_AFFILIATE},
    )
    def get(self, request: Request) -> Response:
        query, scope, period, filters = self.parse(request)
        table = reports.summary(
            affiliate_ids=scope.affiliate_ids,
            period=period,
            filters=filters,
            currency=scope.currency,
            time_zone=scope.time_zone,
        )
        days = reports.daily(
            affiliate_ids=scope.affiliate_ids,
            period=period,
            filters=filters,
            currency=scope.currency,
            time_zone=scope.time_zone,
        )
        totals = table.totals
        data = {
            "period": period_data(period),
            "currency": scope.currency,
            "time_zone": scope.time_zone,
            "columns": table.rows,
            "mobile": table.mobile(),
            "totals": totals,
            "from_sub_affiliates": totals["sub_commission"],
            "earned": totals["commission"] + totals["sub_commission"],
            "daily": days,
        }
        if model := query.validated_data.get("model"):
            start, end = period.bounds(scope.time_zone)
            credit = payouts_reports.model_credit(
                start=start,
                end=end,
                currency=scope.currency,
                model=model,
                scope=payouts_reports.Scope(
                    affiliate_ids=scope.affiliate_ids,
                    currency=scope.currency,
                    campaign_id=query.validated_data.get("campaign"),
                ),
            )
            data["model_credit"] = {"model": model, **credit}
        return Response(StatsSerializer(data).data)


class StatsBreakdownView(ReportView):
    """The period's figures by campaign, country, platform or sub id (sub1..sub5)."""

    query_serializer = BreakdownQuerySerializer

    @extend_schema(
        tags=["stats"],
        parameters=[BreakdownQuerySerializer],
        responses={200: BreakdownSerializer, 400: BAD_QUERY, 404: NO_AFFILIATE},
    )
    def get(self, request: Request) -> Response:
        query, scope, period, filters = self.parse(request)
        by = query.validated_data["by"]
        try:
            table = reports.breakdown(
                by=by,
                affiliate_ids=scope.affiliate_ids,
                period=period,
                filters=filters,
                currency=scope.currency,
                time_zone=scope.time_zone,
            )
        except reports.ReportError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        rows = [
            {"key": key, "label": table.labels.get(key, key), **table.rows[key]}
            for key in sorted(table.rows)
        ]
        data = {
            "period": period_data(period),
            "currency": scope.currency,
            "time_zone": scope.time_zone,
            "by": by,
            "rows": rows,
            "totals": table.totals,
        }
        return Response(BreakdownSerializer(data).data)


# --- conversions --------------------------------------------------------------------------------


class ConversionFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Conversion.Status.choices)
    type = filters.ChoiceFilter(choices=ConversionType.choices)
    platform = filters.ChoiceFilter(choices=Platform.choices)
    channel = filters.ChoiceFilter(choices=Channel.choices)
    campaign = IdFilter(field_name="campaign_id")
    affiliate = IdFilter(field_name="affiliate_id", help_text="Managers: one affiliate's.")
    occurred_after = InstantFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = InstantFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Conversion
        fields: list[str] = []


@extend_schema(tags=["conversions"])
class ConversionViewSet(viewsets.ReadOnlyModelViewSet):
    """Conversions credited to the affiliate (managers: all), newest first."""

    lookup_value_regex = ID
    permission_classes = [IsManagerOrActiveAffiliate]
    serializer_class = ConversionSerializer
    filterset_class = ConversionFilter

    def get_queryset(self) -> QuerySet[Conversion]:
        conversions = (
            Conversion.objects.select_related("campaign")
            .only(
                *(f for f in ConversionSerializer.Meta.fields if f != "reason_text"),
                "campaign__id",
                "campaign__name",
            )
            .order_by("-occurred_at", "-pk")
        )
        return scoped(conversions, self.request.user)


# --- clicks -------------------------------------------------------------------------------------


class ClickPagination(CursorPagination):
    # A cursor, not page numbers: counting an affiliate's clicks on every page would scan them all.
    ordering = ("-created_at", "-id")


class ClickFilter(filters.FilterSet):
    campaign = IdFilter(field_name="campaign_id")
    affiliate = IdFilter(field_name="affiliate_id", help_text="Managers: one affiliate's.")
    platform = filters.ChoiceFilter(choices=Platform.choices)
    country = filters.CharFilter(lookup_expr="iexact", max_length=2)
    created_after = InstantFilter(field_name="created_at", lookup_expr="gte")
    created_before = InstantFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Click
        fields: list[str] = []


@extend_schema(
    tags=["clicks"],
    responses=ManagerClickSerializer,
    description="The affiliate's clicks (managers: all), newest first. The visitor's IP "
    "address and user agent are shown to managers only.",
)
class ClickViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    lookup_value_regex = ID
    permission_classes = [IsManagerOrActiveAffiliate]
    filterset_class = ClickFilter
    pagination_class = ClickPagination

    def get_serializer_class(self) -> type[BaseSerializer]:
        if is_manager(self.request.user):
            return ManagerClickSerializer
        return ClickSerializer

    def get_queryset(self) -> QuerySet[Click]:
        fields = self.get_serializer_class().Meta.fields
        return scoped(Click.objects.only("id", *fields), self.request.user)
