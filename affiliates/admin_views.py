"""The managers' program overview: the program's money and traffic for a period, in the
manager's time zone, with what needs a manager's attention today."""

import zoneinfo
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from affiliates.models import Affiliate
from attribution.ingestion import monitor
from attribution.models import Conversion, DailyRollup, OutboundEndpoint
from attribution.rollups import reports

TZ_SESSION = "manager_time_zone"
SILENT_HOURS = 6
TOP = 10
# What the totals show, in order: counts, then money in the base currency.
OVERVIEW_COUNTS = ("clicks", "installs", "registrations", "ftds", "deposits")
OVERVIEW_MONEY = ("deposit_amount", "revenue", "commission", "margin")
RANKED = ("clicks", "installs", "registrations", "ftds")


def _zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise forms.ValidationError(f"{value!r} is not a time zone (e.g. Europe/Berlin)") from exc
    return value


class OverviewForm(forms.Form):
    period = forms.ChoiceField(choices=list(reports.PRESETS.items()), initial="last30")
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    time_zone = forms.CharField(max_length=64, validators=[_zone], label="Time zone")


def _money_columns(table: reports.Table) -> dict[str, dict[str, Decimal]]:
    """Mobile, web and total, with margin (operator revenue minus commission)."""
    mobile, web, total = table.mobile(), dict(table.rows.get("web", {})), dict(table.totals)
    # RevShare is earned per month, not per channel: it counts in the total only.
    columns = {"mobile": mobile, "web": web, "total": total}
    for values in columns.values():
        for metric in reports.METRICS:
            values[metric] = values.get(metric) or Decimal(0)
        values["margin"] = values["revenue"] - values["commission"]
    return columns


def _ranked(period: reports.Period) -> list[dict]:
    """Affiliates' counts of the period and of the period before it (for "rising")."""
    length = (period.end - period.start).days + 1
    before = reports.Period(
        period.start - timedelta(days=length), period.start - timedelta(days=1), "custom"
    )
    rows: dict[int, dict] = {}
    for key, span in (("now", period), ("before", before)):
        for row in (
            DailyRollup.objects.filter(day__gte=span.start, day__lte=span.end)
            .exclude(affiliate_id=0)
            .values("affiliate_id")
            .annotate(**{m: Sum(m) for m in RANKED})
            .order_by()
        ):
            entry = rows.setdefault(row["affiliate_id"], {"now": {}, "before": {}})
            entry[key] = {m: row[m] or 0 for m in RANKED}
    names = dict(Affiliate.objects.filter(pk__in=list(rows)).values_list("pk", "name"))
    return [
        {
            "id": affiliate_id,
            "name": names.get(affiliate_id, "?"),
            **{m: entry["now"].get(m, 0) for m in RANKED},
            **{f"{m}_rise": entry["now"].get(m, 0) - entry["before"].get(m, 0) for m in RANKED},
        }
        for affiliate_id, entry in rows.items()
    ]


def overview(request: HttpRequest) -> HttpResponse:
    zone = request.session.get(TZ_SESSION) or settings.TIME_ZONE
    form = OverviewForm({"period": "last30", "time_zone": zone, **request.GET.dict()})
    period = reports.period_for("last30", time_zone=zone)
    if form.is_valid():
        zone = form.cleaned_data["time_zone"]
        request.session[TZ_SESSION] = zone
        try:
            period = reports.period_for(
                form.cleaned_data["period"],
                time_zone=zone,
                start=form.cleaned_data.get("start"),
                end=form.cleaned_data.get("end"),
            )
        except reports.ReportError as exc:
            form.add_error(None, str(exc))
            period = reports.period_for("last30", time_zone=zone)
    currency = settings.BASE_CURRENCY
    everyone = list(Affiliate.objects.values_list("pk", flat=True))
    table = reports.summary(
        affiliate_ids=everyone,
        period=period,
        filters=reports.Filters(),
        currency=currency,
        time_zone=zone,
    )
    campaigns = reports.breakdown(
        by="campaign",
        affiliate_ids=everyone,
        period=period,
        filters=reports.Filters(),
        currency=currency,
        time_zone=zone,
    )
    campaign_rows = [
        {"name": campaigns.labels.get(key, key), **values} for key, values in campaigns.rows.items()
    ]
    affiliates = _ranked(period)
    now = timezone.now()
    health = monitor.ingestion_health(now=now)
    context = {
        **admin.site.each_context(request),
        "title": "Program overview",
        "form": form,
        "period": period,
        "time_zone": zone,
        "currency": currency,
        "columns": _money_columns(table),
        "counts": OVERVIEW_COUNTS,
        "money": OVERVIEW_MONEY,
        "trend": reports.daily(
            affiliate_ids=everyone,
            period=period,
            filters=reports.Filters(),
            currency=currency,
            time_zone=zone,
        ),
        "top_affiliates": {m: sorted(affiliates, key=lambda a, m=m: -a[m])[:TOP] for m in RANKED},
        "rising_affiliates": sorted(
            (a for a in affiliates if a["ftds_rise"] > 0 or a["installs_rise"] > 0),
            key=lambda a: (-a["ftds_rise"], -a["installs_rise"]),
        )[:TOP],
        "top_campaigns": sorted(
            campaign_rows, key=lambda c: (-c["commission"], -c["ftds"], -c["installs"])
        )[:TOP],
        "pending_affiliates": Affiliate.objects.filter(status=Affiliate.Status.PENDING).count(),
        "review_queue": Conversion.objects.filter(status=Conversion.Status.PENDING).count(),
        "backlog": health["backlog"],
        "oldest_waiting": health["oldest_waiting"],
        "errors_last_day": sum(
            row["day"]["rejected"] + row["day"]["failed"] for row in health["rows"]
        ),
        "silent": monitor.silent_sources(now=now, hours=SILENT_HOURS),
        "silent_hours": SILENT_HOURS,
        "disabled_endpoints": OutboundEndpoint.objects.filter(is_active=False)
        .exclude(disabled_reason="")
        .count(),
        "since": now - timedelta(days=1),
    }
    return TemplateResponse(request, "admin/overview.html", context)
