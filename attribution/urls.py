from django.urls import path, re_path

from . import views

urlpatterns = [
    path("c/<str:code>", views.click_redirect, name="click"),
    # The trailing slash is optional: a POST redirected to add it would lose its body.
    re_path(r"^postbacks/(?P<source>[^/]+)/(?P<token>[^/]+)/?$", views.postback, name="postback"),
    path(
        ".well-known/skadnetwork/report-attribution/",
        views.skadnetwork_report,
        name="skadnetwork-report",
    ),
    path(
        ".well-known/appattribution/report-attribution/",
        views.adattributionkit_report,
        name="adattributionkit-report",
    ),
]
