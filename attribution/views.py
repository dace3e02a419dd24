from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_safe

from . import selectors, services


class _Redirect(HttpResponseRedirect):
    # Destinations are app-store, MMP and landing URLs of any scheme the operator configured
    # (itms-apps://, market://); the operator, not the visitor, chose them.
    allowed_schemes = ["http", "https", "itms-apps", "market"]


@require_safe
def click_redirect(request: HttpRequest, code: str) -> HttpResponse:
    """GET /c/<code>: record the click, 302 to the destination with our click id on it."""
    link = selectors.link_for_redirect(code=code[:64])
    recorded = (
        services.click_record(link=link, params=request.GET, meta=request.META) if link else None
    )
    if recorded is None:
        return render(request, "attribution/link_not_found.html", status=404)
    response = _Redirect(recorded.destination)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
