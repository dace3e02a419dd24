"""The REST API's shapes for affiliates, campaigns and tracking links (parse and render only)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from portal.api import CURRENCY, UpdateFieldsMixin, model_clean

from . import offers
from .models import Affiliate, Campaign, TrackingLink
from .permissions import active_affiliate, is_manager

# --- affiliates (managers) ----------------------------------------------------------------------


class AffiliateSerializer(UpdateFieldsMixin, serializers.ModelSerializer):
    """An affiliate: status, parent (sub-affiliates), manager, time zone, currency, minimum."""

    user = serializers.PrimaryKeyRelatedField(read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    parent = serializers.PrimaryKeyRelatedField(
        queryset=Affiliate.objects.all(), allow_null=True, required=False
    )
    manager = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_staff=True), allow_null=True, required=False
    )
    currency = serializers.CharField(max_length=3, validators=[CURRENCY], required=False)
    minimum_payout = serializers.DecimalField(
        max_digits=18, decimal_places=2, min_value=0, required=False
    )

    class Meta:
        model = Affiliate
        fields = [
            "id",
            "user",
            "username",
            "name",
            "status",
            "parent",
            "manager",
            "time_zone",
            "currency",
            "minimum_payout",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def validate_parent(self, parent: Affiliate | None) -> Affiliate | None:
        if parent is None or self.instance is None:
            return parent
        seen: set[int] = set()
        ancestor: Affiliate | None = parent
        while ancestor is not None and ancestor.pk not in seen:
            if ancestor.pk == self.instance.pk:
                raise serializers.ValidationError(
                    "An affiliate cannot be its own parent or an ancestor of its parent."
                )
            seen.add(ancestor.pk)
            ancestor = ancestor.parent
        return parent


class AffiliateCreateSerializer(AffiliateSerializer):
    """A new affiliate and the user it signs in with."""

    username = serializers.CharField(
        write_only=True,
        max_length=150,
        validators=[
            UnicodeUsernameValidator(),
            UniqueValidator(queryset=get_user_model().objects.all(), lookup="iexact"),
        ],
    )
    email = serializers.EmailField(write_only=True, required=False, allow_blank=True)
    password = serializers.CharField(
        write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )

    class Meta(AffiliateSerializer.Meta):
        fields = [*AffiliateSerializer.Meta.fields, "email", "password"]

    def validate_password(self, value: str) -> str:
        try:
            validate_password(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value

    def to_representation(self, instance: Affiliate) -> dict[str, Any]:
        return AffiliateSerializer(instance, context=self.context).data


# --- campaigns (managers) -----------------------------------------------------------------------


@extend_schema_field(
    {
        "type": "string",
        "maxLength": 2000,
        "description": "An http(s) URL template; macros such as {click_id} are filled per click.",
    }
)
class URLTemplateField(serializers.CharField):
    """A URL with macros in braces: valid as Django checks URLs, but not an RFC 3986 URI (the
    schema must not say ``format: uri``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(_url)


def _url(value: str) -> None:
    URLValidator()(value)


class CampaignSerializer(UpdateFieldsMixin, serializers.ModelSerializer):
    """An offer: destinations per platform (URL templates), lookback and attribution model."""

    web_url = URLTemplateField(max_length=2000, required=False, allow_blank=True)
    ios_url = URLTemplateField(max_length=2000, required=False, allow_blank=True)
    android_url = URLTemplateField(max_length=2000, required=False, allow_blank=True)
    fallback_url = URLTemplateField(max_length=2000, required=False, allow_blank=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "brand",
            "name",
            "status",
            "visibility",
            "description",
            "allowed_sources",
            "forbidden_sources",
            "countries",
            "fallback_url",
            "web_url",
            "ios_app",
            "ios_url",
            "android_app",
            "android_url",
            "click_lookback_days",
            "event_window_days",
            "attribution_model",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = Campaign(**{**self._current(), **attrs})
        model_clean(candidate)
        if "countries" in attrs:
            attrs["countries"] = candidate.countries  # as clean() tidied them: "DE, AT"
        return attrs

    def _current(self) -> dict[str, Any]:
        if self.instance is None:
            return {}
        return {name: getattr(self.instance, name) for name in self.Meta.fields if name != "id"}


# --- tracking links (affiliates: their own; managers: any) --------------------------------------


class LinkAffiliateField(serializers.PrimaryKeyRelatedField):
    """A manager names any affiliate; an affiliate only itself (or leaves it out)."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is not None and not is_manager(request.user):
            own = active_affiliate(request.user)
            return Affiliate.objects.filter(pk=own.pk if own else None)
        return Affiliate.objects.all()


class LinkCampaignField(serializers.PrimaryKeyRelatedField):
    """A manager links any campaign; an affiliate an active one they may promote: public, or
    approved for them (offers)."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is not None and not is_manager(request.user):
            own = active_affiliate(request.user)
            return offers.campaigns_usable(own) if own else Campaign.objects.none()
        return Campaign.objects.all()


class TrackingLinkSerializer(UpdateFieldsMixin, serializers.ModelSerializer):
    """A tracking link: send traffic to ``url``; sub ids come back in the reports."""

    affiliate = LinkAffiliateField(
        queryset=Affiliate.objects.all(),
        required=False,
        help_text="Managers: whose link (required). Affiliates: leave out (always their own).",
    )
    campaign = LinkCampaignField(
        queryset=Campaign.objects.all(),
        help_text="Affiliates may link active, public campaigns only.",
    )
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    url = serializers.SerializerMethodField(help_text="The tracking URL to send traffic to.")

    class Meta:
        model = TrackingLink
        fields = [
            "id",
            "affiliate",
            "campaign",
            "campaign_name",
            "code",
            "url",
            "name",
            "sub1",
            "sub2",
            "sub3",
            "sub4",
            "sub5",
            "deep_link",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["code", "is_active", "created_at"]

    def get_url(self, link: TrackingLink) -> str:
        return self.context["request"].build_absolute_uri(reverse("click", args=[link.code]))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        request = self.context["request"]
        if not is_manager(request.user):
            attrs["affiliate"] = active_affiliate(request.user)
        elif attrs.get("affiliate") is None:
            raise serializers.ValidationError({"affiliate": "Name the affiliate the link is for."})
        return attrs


class TrackingLinkUpdateSerializer(TrackingLinkSerializer):
    """What may change on a link: its name, sub ids, deep link and whether it sends traffic."""

    affiliate = serializers.PrimaryKeyRelatedField(read_only=True)
    campaign = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta(TrackingLinkSerializer.Meta):
        read_only_fields = ["code", "created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return attrs


# --- offers -------------------------------------------------------------------------------------


class CpaTermSerializer(serializers.Serializer):
    event = serializers.CharField(help_text="The conversion type: ftd, registration, install...")
    label = serializers.CharField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    min_deposit = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    countries = serializers.CharField()
    platform = serializers.CharField()
    channel = serializers.CharField()


class TierTermSerializer(serializers.Serializer):
    from_ftds = serializers.IntegerField()
    cpa_amount = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    revshare_percent = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)


class NgrTierTermSerializer(serializers.Serializer):
    from_ngr = serializers.DecimalField(max_digits=18, decimal_places=2, source="0")
    revshare_percent = serializers.DecimalField(max_digits=5, decimal_places=2, source="1")


class TermsSerializer(serializers.Serializer):
    """The affiliate's own terms on the campaign, from the plan version in force now."""

    plan = serializers.CharField()
    currency = serializers.CharField()
    valid_from = serializers.DateTimeField()
    hold_days = serializers.IntegerField()
    cpa = CpaTermSerializer(many=True)
    revshare_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    revshare_basis = serializers.ChoiceField(choices=["deposits", "ngr"])
    admin_fee_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    ngr_deductions = serializers.ListField(child=serializers.CharField())
    product_percents = serializers.DictField(
        child=serializers.DecimalField(max_digits=5, decimal_places=2)
    )
    tiers = TierTermSerializer(many=True)
    tier_mode = serializers.CharField()
    baseline_ftds = serializers.IntegerField()
    ngr_tiers = NgrTierTermSerializer(many=True)
    subaffiliate_percents = serializers.ListField(
        child=serializers.DecimalField(max_digits=5, decimal_places=2)
    )


class CreativeOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    name = serializers.CharField()
    text = serializers.CharField()
    preview_url = serializers.CharField()
    download_url = serializers.SerializerMethodField()

    def get_download_url(self, creative) -> str | None:
        if not creative.file:
            return None
        return reverse("affiliate-creative", args=[creative.pk])


class CapTermSerializer(serializers.Serializer):
    limit = serializers.CharField(help_text='e.g. "50 First-time deposits a day for you"')
    past_it = serializers.CharField()
    reached = serializers.BooleanField(help_text="Reached in its current period")
    used = serializers.CharField(help_text="Of the affiliate's own cap: how much is used")


class OfferSerializer(serializers.Serializer):
    """A campaign the affiliate may see: access, their own terms, creatives once usable."""

    campaign = serializers.IntegerField(source="campaign.pk")
    name = serializers.CharField(source="campaign.name")
    brand = serializers.CharField(source="campaign.brand.name")
    description = serializers.CharField(source="campaign.description")
    visibility = serializers.CharField(source="campaign.visibility")
    platforms = serializers.ListField(child=serializers.CharField())
    countries = serializers.CharField(
        source="campaign.countries", help_text="Accepted countries; empty: every country"
    )
    allowed_sources = serializers.CharField(source="campaign.allowed_sources")
    forbidden_sources = serializers.CharField(source="campaign.forbidden_sources")
    access = serializers.CharField(
        help_text='"open" (public), "", "requested", "approved", "refused" or "revoked"'
    )
    reason = serializers.CharField()
    can_link = serializers.BooleanField()
    links = serializers.IntegerField()
    terms = TermsSerializer(allow_null=True)
    caps = CapTermSerializer(many=True)
    creatives = CreativeOutSerializer(many=True)


class AccessRequestSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class AccessOutSerializer(serializers.Serializer):
    campaign = serializers.IntegerField(source="campaign_id")
    status = serializers.CharField()
    requested_at = serializers.DateTimeField()
