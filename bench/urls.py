"""The portal's URLs plus the bare comparison views under ``bench/bare/``."""

from django.urls import path

from portal.urls import urlpatterns as portal_urlpatterns

from . import views

bare_urlpatterns = [
    path("bench/bare/redirect", views.bare_redirect, name="bench-bare-redirect"),
]

urlpatterns = [*portal_urlpatterns, *bare_urlpatterns]
