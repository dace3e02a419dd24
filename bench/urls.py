"""The portal's URLs plus the bare comparison views under ``bench/bare/``."""

from django.urls import path

from portal.urls import urlpatterns as portal_urlpatterns

from . import views

bare_urlpatterns = [
    path("bench/bare/redirect", views.bare_redirect, name="bench-bare-redirect"),
    # /bench/bare/insert/<kind>/<source id>/?<the same query string as the real postback>
    path(
        "bench/bare/insert/<str:kind>/<int:source_id>/",
        views.bare_insert,
        name="bench-bare-insert",
    ),
]

urlpatterns = [*portal_urlpatterns, *bare_urlpatterns]
