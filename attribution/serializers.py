"""The REST API's shapes for stats, conversions and clicks (parse and render only)."""

from datetime import date
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from affiliates.permissions import is_manager
from attribution.crediting.multitouch import EVERY_MODEL
from attribution.models import Channel, Click, Conversion
from attribution.rollups import reports

# Periods are local days; beyond these the instants would not fit a datetime in every zone.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)
MAX_ID = 2**63 - 1


def money(**kwargs: Any) -> serializers.DecimalField:
    """An amount as a string with two decimals (Decimal, never float)."""
    return serializers.DecimalField(max_digits=None, decimal_places=2, **kwargs)


# --- stats: the query ---------------------------------------------------------------------------


@extend_schema_field({"type": "string", "enum": list(reports.PRESETS), "default": "last7"})
class PresetField(serializers.CharField):
    """Checked by ``reports.period_for``, so a wrong one gets the report's own message."""


@extend_schema_field({"type": "string", "enum": list(reports.BREAKDOWNS), "default": "campaign"})
class BreakdownField(serializers.CharField):
    """Checked by ``reports.breakdown``."""


class StatsQuerySerializer(serializers.Serializer):
    period = PresetField(required=False, default="last7")
    start = serializers.DateField(
        required=False, help_text="First day of a custom period (the viewer's local day)."
    )
    end = serializers.DateField(required=False, help_text="Last day of a custom period.")
    campaign = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    country = serializers.CharField(
        required=False,
        validators=[RegexValidator(r"^[A-Za-z]{2}\Z", "A two-letter country code.")],
    )
    platform = serializers.ChoiceField(choices=list(reports.COLUMNS), required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    sub1 = serializers.CharField(required=False, max_length=255, help_text="One sub id at a time.")
    sub2 = serializers.CharField(required=False, max_length=255)
    sub3 = serializers.CharField(required=False, max_length=255)
    sub4 = serializers.CharField(required=False, max_length=255)
    sub5 = serializers.CharField(required=False, max_length=255)
    affiliate = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Managers: one affiliate's figures, in its currency and time zone (without "
        "it: the whole program in the base currency and UTC). Affiliates: their own id only.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name in ("start", "end"):
            if name in attrs and not FIRST_DAY <= attrs[name] <= LAST_DAY:
                raise serializers.ValidationError({name: f"A day from {FIRST_DAY} to {LAST_DAY}."})
        return attrs

    def filters(self) -> reports.Filters:
        data = self.validated_data
        return reports.Filters(
            campaign_id=data.get("campaign"),
            country=data.get("country", "").upper(),
            platform=data.get("platform", ""),
            channel=data.get("channel", ""),
            subs=tuple(data.get(sub, "") for sub in reports.SUBS),
        )


class StatsModelQuerySerializer(StatsQuerySerializer):
    model = serializers.ChoiceField(
        choices=EVERY_MODEL,
        required=False,
        help_text="Also what this attribution model would credit (installs, FTDs, their players' "
        "NGR and commission); money still follows the campaign's own model.",
    )


class BreakdownQuerySerializer(StatsQuerySerializer):
    by = BreakdownField(required=False, default="campaign")


# --- stats: the answer --------------------------------------------------------------------------


class MetricsSerializer(serializers.Serializer):
    clicks = serializers.IntegerField()
    unique_clicks = serializers.IntegerField(
        allow_null=True, help_text="Not kept per sub id value: null under a sub id filter."
    )
    installs = serializers.IntegerField()
    registrations = serializers.IntegerField()
    ftds = serializers.IntegerField(help_text="First-time deposits")
    deposits = serializers.IntegerField()
    rejected = serializers.IntegerField()
    deposit_amount = money()
    revenue = money()
    commission = money(help_text="The affiliate's own commission.")
    sub_commission = money(help_text="The affiliate's share of its sub-affiliates' commission.")


class ColumnsSerializer(serializers.Serializer):
    ios = MetricsSerializer()
    android = MetricsSerializer()
    skan = MetricsSerializer(help_text="SKAdNetwork: Apple's aggregated iOS installs.")
    web = MetricsSerializer()
    monthly = MetricsSerializer(
        required=False,
        help_text="Only when the period has monthly RevShare or tier top-ups: their commission, "
        "tied to no conversion (counted on the month's last day; no campaign, platform or "
        "country filter matches it).",
    )


class PeriodSerializer(serializers.Serializer):
    preset = serializers.ChoiceField(choices=list(reports.PRESETS.items()))
    label = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField(help_text="Inclusive.")


class DaySerializer(serializers.Serializer):
    day = serializers.DateField()
    mobile = MetricsSerializer()
    web = MetricsSerializer()
    monthly = MetricsSerializer(help_text="Monthly commission (RevShare, tier top-ups) only.")


class ModelCreditSerializer(serializers.Serializer):
    model = serializers.CharField()
    installs = serializers.DecimalField(max_digits=20, decimal_places=6)
    ftds = serializers.DecimalField(max_digits=20, decimal_places=6)
    ngr = serializers.DecimalField(max_digits=20, decimal_places=2)
    commission = serializers.DecimalField(max_digits=20, decimal_places=2)


class StatsSerializer(serializers.Serializer):
    """Mobile (iOS, Android, SKAN) beside web: ``reports.summary`` and ``reports.daily``."""

    period = PeriodSerializer()
    currency = serializers.CharField(help_text="Money is in this currency.")
    time_zone = serializers.CharField(help_text="Days are local days of this time zone.")
    columns = ColumnsSerializer()
    mobile = MetricsSerializer(help_text="iOS + Android + SKAN")
    totals = MetricsSerializer()
    from_sub_affiliates = money(
        help_text="What the affiliate earned from its sub-affiliates (totals.sub_commission)."
    )
    earned = money(help_text="Own commission plus the share of sub-affiliates'.")
    daily = DaySerializer(many=True)
    model_credit = ModelCreditSerializer(
        required=False, help_text="With ?model=: what that model credits in the period."
    )


class BreakdownMetricsSerializer(MetricsSerializer):
    unique_clicks = serializers.IntegerField(
        allow_null=True, help_text="Not kept per sub id value: null in sub id breakdowns."
    )


class BreakdownRowSerializer(BreakdownMetricsSerializer):
    key = serializers.CharField(
        allow_blank=True,
        help_text='Campaign id, country, platform or sub id value; "" for none (the row of what '
        "no value accounts for).",
    )
    label = serializers.CharField()


class BreakdownSerializer(serializers.Serializer):
    """``reports.breakdown``: the period's figures by campaign, country, platform or sub id."""

    period = PeriodSerializer()
    currency = serializers.CharField()
    time_zone = serializers.CharField()
    by = serializers.ChoiceField(choices=list(reports.BREAKDOWNS))
    rows = BreakdownRowSerializer(many=True)
    totals = BreakdownMetricsSerializer()


def period_data(period: reports.Period) -> dict[str, Any]:
    return {
        "preset": period.preset,
        "label": reports.PRESETS[period.preset],
        "start": period.start,
        "end": period.end,
    }


# --- conversions and clicks ---------------------------------------------------------------------


class CampaignRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ConversionSerializer(serializers.ModelSerializer):
    campaign = CampaignRefSerializer(read_only=True, allow_null=True)
    reason = serializers.SerializerMethodField(
        help_text="Why it has its status. Affiliates: a plain code (ok, under_review, "
        "invalid_traffic, duplicate, not_attributed, declined, rejected, reversed); managers: the "
        "rule's code."
    )
    reason_text = serializers.SerializerMethodField(help_text="The reason in plain words.")

    class Meta:
        model = Conversion
        fields = [
            "id",
            "affiliate",
            "type",
            "channel",
            "platform",
            "campaign",
            "occurred_at",
            "status",
            "reason",
            "reason_text",
            "revenue",
            "currency",
            "country",
            "method",
        ]
        read_only_fields = fields

    def _for_manager(self) -> bool:
        request = self.context.get("request")
        return bool(request and is_manager(request.user))

    def get_reason(self, conversion: Conversion) -> str:
        if self._for_manager():
            return conversion.reason
        return conversion.public_reason.value

    def get_reason_text(self, conversion: Conversion) -> str:
        if self._for_manager():
            return conversion.get_reason_display()
        return conversion.public_reason.label


class ClickSerializer(serializers.ModelSerializer):
    class Meta:
        model = Click
        fields = [
            "click_id",
            "created_at",
            "affiliate",
            "link",
            "campaign",
            "platform",
            "country",
            "sub1",
            "sub2",
            "sub3",
            "sub4",
            "sub5",
        ]
        read_only_fields = fields


class ManagerClickSerializer(ClickSerializer):
    """What managers see of a click: also the visitor's address and browser."""

    # Not read-only, so that the schema marks them optional: affiliates never get them.
    ip = serializers.IPAddressField(
        required=False, allow_null=True, help_text="Managers only (privacy)."
    )
    user_agent = serializers.CharField(required=False, help_text="Managers only (privacy).")

    class Meta(ClickSerializer.Meta):
        fields = [*ClickSerializer.Meta.fields, "ip", "user_agent"]
        read_only_fields = ClickSerializer.Meta.fields
