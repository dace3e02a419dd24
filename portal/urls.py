from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def not_found(request: HttpRequest, exception: Exception) -> object:
    # Machines (MMPs, API clients) get JSON; people get the page.
    if request.path.startswith(("/postbacks/", "/api/", "/.well-known/")):
        return JsonResponse({"error": f"no such endpoint: {request.path}"}, status=404)
    return page_not_found(request, exception)


handler404 = not_found

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("attribution.urls")),
    path("", include("payouts.urls")),
]
