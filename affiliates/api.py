"""REST API: tokens, affiliates and campaigns (managers), tracking links (affiliates, managers)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from portal.api import ID, IdFilter

from . import offers, services, twofactor
from .models import Affiliate, Campaign, TrackingLink
from .permissions import (
    IsManager,
    IsManagerOrActiveAffiliate,
    active_affiliate,
    is_manager,
    scoped,
)
from .serializers import (
    AccessOutSerializer,
    AccessRequestSerializer,
    AffiliateCreateSerializer,
    AffiliateSerializer,
    CampaignSerializer,
    OfferSerializer,
    TrackingLinkSerializer,
    TrackingLinkUpdateSerializer,
)

# --- filters ------------------------------------------------------------------------------------


class TrackingLinkFilter(filters.FilterSet):
    campaign = IdFilter(field_name="campaign_id")
    affiliate = IdFilter(field_name="affiliate_id")
    is_active = filters.BooleanFilter()

    class Meta:
        model = TrackingLink
        fields: list[str] = []


# --- tokens -------------------------------------------------------------------------------------


class TokenRequestSerializer(AuthTokenSerializer):
    otp_token = serializers.CharField(
        required=False,
        max_length=16,
        write_only=True,
        help_text="Managers: the one-time code from their authenticator.",
    )


class TokenObtainView(APIView):
    """Trade a username and password for the API token (an affiliate's: the same token on every
    call). A manager also gives the one-time code from their authenticator and gets a new token
    that lasts STAFF_TOKEN_HOURS: a manager's password alone opens nothing."""

    # No authentication: the credentials are the point, and a stale token must not get in the way.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth-token"

    @extend_schema(
        tags=["auth"],
        request=TokenRequestSerializer,
        responses={
            200: inline_serializer("Token", {"token": serializers.CharField()}),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Wrong credentials, a manager's missing or wrong one-time code, or "
                "locked out after repeated failures (django-axes counts API logins too).",
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        if not twofactor.login_needs_code(user):
            token, _ = Token.objects.get_or_create(user=user)
            return Response({"token": token.key})
        try:
            twofactor.totp_device(user, serializer.validated_data.get("otp_token"))
        except DjangoValidationError as exc:
            return Response({"otp_token": exc.messages}, status=400)
        return Response({"token": services.api_token_renew(user=user).key})


# --- affiliates (managers) ----------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Affiliates (managers)"),
    create=extend_schema(
        summary="Create an affiliate and its user (managers)",
        responses={201: AffiliateSerializer},
    ),
)
@extend_schema(tags=["affiliates"])
class AffiliateViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    lookup_value_regex = ID
    permission_classes = [IsManager]
    queryset = Affiliate.objects.select_related("user").order_by("name", "pk")
    serializer_class = AffiliateSerializer
    filterset_fields = ["status", "parent", "manager"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return AffiliateCreateSerializer if self.action == "create" else AffiliateSerializer

    def perform_create(self, serializer: AffiliateCreateSerializer) -> None:
        data = serializer.validated_data
        extra = {k: data[k] for k in ("parent", "manager", "minimum_payout") if k in data}
        with transaction.atomic():
            try:
                affiliate = services.affiliate_apply(
                    username=data["username"],
                    email=data.get("email", ""),
                    password=data["password"],
                    name=data["name"],
                    time_zone=data.get("time_zone", "UTC"),
                    currency=data.get("currency", "EUR"),
                )
            except IntegrityError as exc:
                # Two requests for one username: the unique index, not the validator, decides.
                taken = {"username": ["That username is taken."]}
                raise serializers.ValidationError(taken) from exc
            if affiliate is None:  # the username or the email has an account already
                raise serializers.ValidationError(
                    {"username": ["That username or email already has an account."]}
                )
            if extra:
                for name, value in extra.items():
                    setattr(affiliate, name, value)
                affiliate.save(update_fields=list(extra))
            self._set_status(affiliate, data.get("status", Affiliate.Status.PENDING))
        serializer.instance = affiliate

    def perform_update(self, serializer: AffiliateSerializer) -> None:
        status = serializer.validated_data.pop("status", None)
        with transaction.atomic():
            serializer.save()
            if status is not None:
                self._set_status(serializer.instance, status)

    def _set_status(self, affiliate: Affiliate, status: str) -> None:
        # Through the service: a status change leaves its audit row.
        services.affiliates_set_status(
            affiliates=Affiliate.objects.filter(pk=affiliate.pk),
            status=status,
            actor=self.request.user,
        )
        affiliate.refresh_from_db(fields=["status"])


# --- campaigns (managers) -----------------------------------------------------------------------


@extend_schema(tags=["campaigns"])
class CampaignViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    lookup_value_regex = ID
    permission_classes = [IsManager]
    queryset = Campaign.objects.order_by("name", "pk")
    serializer_class = CampaignSerializer
    filterset_fields = ["brand", "status", "visibility"]
    http_method_names = ["get", "post", "patch", "head", "options"]


# --- tracking links -----------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(summary="Create a tracking link (affiliates: their own)"),
    partial_update=extend_schema(summary="Rename, re-tag, pause or resume a link"),
)
@extend_schema(tags=["links"])
class TrackingLinkViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Affiliates see and change only their own links; managers any."""

    lookup_value_regex = ID
    permission_classes = [IsManagerOrActiveAffiliate]
    serializer_class = TrackingLinkSerializer
    filterset_class = TrackingLinkFilter
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[TrackingLink]:
        links = TrackingLink.objects.select_related("campaign").only(
            *(f.name for f in TrackingLink._meta.concrete_fields), "campaign__name"
        )
        return scoped(links, self.request.user).order_by("-created_at", "-pk")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.action in ("update", "partial_update"):
            return TrackingLinkUpdateSerializer
        return TrackingLinkSerializer

    def perform_create(self, serializer: TrackingLinkSerializer) -> None:
        serializer.instance = services.link_create(**serializer.validated_data)


# --- offers -------------------------------------------------------------------------------------


@extend_schema(tags=["offers"])
class OfferViewSet(viewsets.ViewSet):
    """The campaigns an affiliate may see, with their own terms; managers name the affiliate."""

    permission_classes = [IsManagerOrActiveAffiliate]
    lookup_value_regex = ID

    def _affiliate(self, request: Request) -> Affiliate:
        if is_manager(request.user):
            wanted = request.query_params.get("affiliate", "")
            affiliate = (
                Affiliate.objects.filter(pk=int(wanted)).first()
                if wanted.isascii() and wanted.isdigit() and len(wanted) < 19
                else None
            )
            if affiliate is None:
                raise serializers.ValidationError({"affiliate": "Managers: an affiliate id."})
            return affiliate
        return active_affiliate(request.user)

    @extend_schema(
        summary="Offers: campaigns the affiliate may see, their terms and access",
        parameters=[
            OpenApiParameter(
                "affiliate", OpenApiTypes.INT, description="Managers: whose offers (required)."
            )
        ],
        responses={
            200: OfferSerializer(many=True),
            400: OpenApiResponse(description="Managers: no affiliate named."),
        },
    )
    def list(self, request: Request) -> Response:
        found = offers.offers_for(self._affiliate(request))
        return Response(OfferSerializer(found, many=True).data)

    @extend_schema(
        summary="Ask for access to an approval-only campaign (affiliates)",
        request=AccessRequestSerializer,
        responses={201: AccessOutSerializer, 400: OpenApiResponse(description="Not possible")},
    )
    @action(detail=True, methods=["post"], url_path="request")
    def request_access(self, request: Request, pk: str | None = None) -> Response:
        affiliate = active_affiliate(request.user)
        if affiliate is None or is_manager(request.user):
            raise serializers.ValidationError({"detail": "Affiliates ask for their own access."})
        campaign = (
            offers.campaigns_visible(affiliate).filter(pk=int(pk)).first()
            if pk and pk.isascii() and pk.isdigit() and len(pk) < 19
            else None
        )
        if campaign is None:
            raise NotFound("No such offer.")
        body = AccessRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            access = offers.access_request(
                affiliate=affiliate, campaign=campaign, message=body.validated_data["message"]
            )
        except offers.AccessRefused as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from None
        return Response(AccessOutSerializer(access).data, status=201)
