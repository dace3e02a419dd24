"""The dashboard's filters (django-filter), scoped to what the viewing affiliate may see."""

import django_filters
from django import forms

from affiliates.models import Campaign
from attribution.models import Conversion, ConversionType, DailyRollup
from attribution.rollups import reports


def _period_choices() -> list[tuple[str, str]]:
    return list(reports.PRESETS.items())


class PeriodFilter(django_filters.FilterSet):
    """The period picker: a preset or a custom range of the viewer's local days."""

    period = django_filters.ChoiceFilter(
        choices=_period_choices, method="ignore", empty_label=None, label="Period"
    )
    start = django_filters.DateFilter(
        method="ignore", label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = django_filters.DateFilter(
        method="ignore", label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    class Meta:
        model = DailyRollup
        fields: list[str] = []

    def ignore(self, queryset, name, value):
        # The figures are read through rollups.reports; the FilterSet validates the form.
        return queryset

    def chosen_period(self, *, time_zone: str, default: str) -> tuple[reports.Period, str]:
        """The period picked, in ``time_zone``, and "" or why it cannot be used (then the
        ``default`` preset is given). An invalid form gives the default, without a reason."""
        fallback = reports.period_for(default, time_zone=time_zone)
        if not self.is_valid():
            return fallback, ""
        data = self.form.cleaned_data
        try:
            period = reports.period_for(
                data.get("period") or default,
                time_zone=time_zone,
                start=data.get("start"),
                end=data.get("end"),
            )
        except reports.ReportError as exc:
            return fallback, str(exc)
        return period, ""


class StatsFilter(PeriodFilter):
    """Period and dimension filters shared by the dashboard's tables and exports."""

    campaign = django_filters.ModelChoiceFilter(
        queryset=Campaign.objects.none(),
        method="ignore",
        empty_label="All campaigns",
        label="Campaign",
    )
    platform = django_filters.ChoiceFilter(
        choices=[(c, reports.COLUMN_LABELS[c]) for c in reports.COLUMNS],
        method="ignore",
        empty_label="All platforms",
        label="Platform",
    )
    channel = django_filters.ChoiceFilter(
        choices=[("mobile", "Mobile"), ("web", "Web")],
        method="ignore",
        empty_label="Mobile + web",
        label="Channel",
    )
    country = django_filters.CharFilter(
        method="ignore",
        max_length=2,
        label="Country",
        widget=forms.TextInput(attrs={"size": 3, "placeholder": "DE"}),
    )

    sub1 = django_filters.CharFilter(method="ignore", max_length=255, label="sub1")
    sub2 = django_filters.CharFilter(method="ignore", max_length=255, label="sub2")
    sub3 = django_filters.CharFilter(method="ignore", max_length=255, label="sub3")
    sub4 = django_filters.CharFilter(method="ignore", max_length=255, label="sub4")
    sub5 = django_filters.CharFilter(method="ignore", max_length=255, label="sub5")

    class Meta(PeriodFilter.Meta):
        pass

    def __init__(self, *args, campaigns, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.filters["campaign"].queryset = campaigns

    def report_filters(self) -> reports.Filters:
        data = self.form.cleaned_data
        return reports.Filters(
            campaign_id=data["campaign"].pk if data.get("campaign") else None,
            country=(data.get("country") or "").upper(),
            platform=data.get("platform") or "",
            channel=data.get("channel") or "",
            subs=tuple(data.get(sub) or "" for sub in reports.SUBS),
        )


class ConversionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=Conversion.Status.choices, empty_label="Any status"
    )
    type = django_filters.ChoiceFilter(choices=ConversionType.choices, empty_label="Any type")
    channel = django_filters.ChoiceFilter(
        choices=[("mobile", "Mobile"), ("web", "Web")], empty_label="Mobile + web"
    )
    campaign = django_filters.ModelChoiceFilter(
        queryset=Campaign.objects.none(), empty_label="All campaigns"
    )

    class Meta:
        model = Conversion
        fields = ["status", "type", "channel", "campaign"]

    def __init__(self, *args, campaigns, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.filters["campaign"].queryset = campaigns
