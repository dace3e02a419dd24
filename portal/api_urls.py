"""The REST API's routes (/api/v1/): the apps' viewsets on one router, and the reports."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from affiliates.api import (
    AffiliateViewSet,
    CampaignViewSet,
    OfferViewSet,
    TokenObtainView,
    TrackingLinkViewSet,
)
from attribution.api import ClickViewSet, ConversionViewSet, StatsBreakdownView, StatsView
from payouts.api import (
    CohortView,
    CommissionPlanViewSet,
    ModelComparisonView,
    PayoutRunViewSet,
    PayoutViewSet,
    PlayerActivityView,
    PlayerReportView,
)

router = DefaultRouter()
router.include_format_suffixes = False  # JSON only; ids may then be anything up to a slash
# Affiliates (their own rows) and managers (all rows).
router.register("links", TrackingLinkViewSet, basename="link")
router.register("conversions", ConversionViewSet, basename="conversion")
router.register("clicks", ClickViewSet, basename="click")
router.register("payouts", PayoutViewSet, basename="payout")
router.register("offers", OfferViewSet, basename="offer")
# Managers only.
router.register("affiliates", AffiliateViewSet, basename="affiliate")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("plans", CommissionPlanViewSet, basename="plan")
router.register("payout-runs", PayoutRunViewSet, basename="payout-run")

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="api-token"),
    path("stats/", StatsView.as_view(), name="api-stats"),
    path("stats/breakdown/", StatsBreakdownView.as_view(), name="api-stats-breakdown"),
    path("reports/players/", PlayerReportView.as_view(), name="api-report-players"),
    path("reports/cohorts/", CohortView.as_view(), name="api-report-cohorts"),
    path("reports/models/", ModelComparisonView.as_view(), name="api-report-models"),
    path("player-activity/", PlayerActivityView.as_view(), name="api-player-activity"),
    path("", include(router.urls)),
]
