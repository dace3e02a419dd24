from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.templatetags.static import static

register = template.Library()

LABELS = {
    "clicks": "Clicks",
    "unique_clicks": "Unique clicks",
    "installs": "Installs",
    "registrations": "Registrations",
    "ftds": "FTDs",
    "deposits": "Deposits",
    "rejected": "Rejected",
    "deposit_amount": "Revenue: deposits",
    "revenue": "Revenue: in-app purchases",
    "commission": "Commission",
    "sub_commission": "From sub-affiliates",
}
MONEY = {"deposit_amount", "revenue", "commission", "sub_commission"}


@register.filter
def get(mapping, key):
    if mapping is None:
        return None
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def fmt(value, metric: str) -> str:
    if value is None and metric == "unique_clicks":
        return "-"  # not kept per sub id
    value = value or Decimal(0)
    if metric in MONEY:
        return intcomma(f"{Decimal(value):.2f}")
    return intcomma(int(value))


@register.filter
def metric_label(metric: str) -> str:
    return LABELS.get(metric, metric)


@register.filter
def split(value: str) -> list[str]:
    return value.split()


@register.filter
def without_by(query: str) -> str:
    return "&".join(p for p in query.split("&") if p and not p.startswith(("by=", "export=")))


@register.simple_tag
def optional_static(path: str) -> str:
    """The static URL of ``path``, or "" when the build left it out.

    The chart comes from npm (``npm ci``); a deployment that skipped it has no chart.js in its
    static manifest, where ``{% static %}`` fails the whole page. The page's numbers need no
    chart, so the page is served without it.
    """
    try:
        return static(path)
    except ValueError:
        return ""
