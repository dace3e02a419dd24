"""The managers' program overview: the day's state of the program on one admin page."""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from affiliates.models import Affiliate
from attribution.ingestion import monitor
from attribution.models import Conversion, DailyRollup
from attribution.rollups import reports


def overview(request: HttpRequest) -> HttpResponse:
    period = reports.period_for("last30", time_zone="UTC")
    rows = DailyRollup.objects.filter(day__gte=period.start, day__lte=period.end)
    top = list(
        rows.exclude(affiliate_id=0)
        .values("affiliate_id")
        .annotate(
            ftds=Sum("ftds"),
            installs=Sum("installs"),
            clicks=Sum("clicks"),
            # In the affiliate's own currency, as its ledger entries are.
            commission=Sum("commission"),
            sub_commission=Sum("sub_commission"),
        )
        .order_by("-ftds", "-installs")[:10]
    )
    names = {
        pk: (name, currency)
        for pk, name, currency in Affiliate.objects.filter(
            pk__in=[t["affiliate_id"] for t in top]
        ).values_list("pk", "name", "currency")
    }
    for entry in top:
        entry["name"], entry["currency"] = names.get(entry["affiliate_id"], ("?", ""))
    trend = reports.daily(
        affiliate_ids=None,
        period=period,
        filters=reports.Filters(),
        currency=settings.BASE_CURRENCY,
    )
    health = monitor.ingestion_health(now=timezone.now())
    context = {
        **admin.site.each_context(request),
        "title": "Program overview",
        "top": top,
        "trend": trend,
        "pending_affiliates": Affiliate.objects.filter(status=Affiliate.Status.PENDING).count(),
        "review_queue": Conversion.objects.filter(status=Conversion.Status.PENDING).count(),
        "backlog": health["backlog"],
        "oldest_waiting": health["oldest_waiting"],
        "errors_last_day": sum(
            row["day"]["rejected"] + row["day"]["failed"] for row in health["rows"]
        ),
        "since": timezone.now() - timedelta(days=1),
    }
    return TemplateResponse(request, "admin/overview.html", context)
