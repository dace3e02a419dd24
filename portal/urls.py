import sys

from django.conf import settings
from django.contrib import admin
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults
from django.views.defaults import page_not_found
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from affiliates.admin_import import import_program_view
from affiliates.admin_views import overview
from portal import health
from portal.admin_site import PortalAdminSite, PortalOTPAdminSite
from portal.lib.deadlines import UnavailableMiddleware


def not_found(request: HttpRequest, exception: Exception) -> object:
    # Machines (MMPs, API clients) get JSON; people get the page.
    if request.path.startswith(("/postbacks/", "/api/", "/.well-known/")):
        return JsonResponse({"error": f"no such endpoint: {request.path}"}, status=404)
    return page_not_found(request, exception)


handler404 = not_found


def server_error(request: HttpRequest) -> HttpResponse:
    # Reached from anywhere a request fails, middleware included: a database that is away is
    # a 503 (retry later), not a 500.
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        return UnavailableMiddleware.unavailable(request, exc)
    return defaults.server_error(request)


handler500 = server_error

# The portal's back office; with ADMIN_2FA, managers' admin logins need a one-time code from an
# authenticator as well as a password.
admin.site.__class__ = PortalOTPAdminSite if settings.ADMIN_2FA else PortalAdminSite

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="affiliate-dashboard"), name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("livez", health.livez, name="livez"),
    path("admin/overview/", admin.site.admin_view(overview), name="admin-overview"),
    path("admin/import/", admin.site.admin_view(import_program_view), name="admin-import"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("portal.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("attribution.urls")),
    path("", include("payouts.urls")),
    path("", include("affiliates.urls")),
]
