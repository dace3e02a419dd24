from django.contrib.auth import views as auth
from django.urls import path, re_path

from . import legacy, views
from .forms import AffiliatePasswordResetForm

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("signup/sent/", views.signup_done, name="signup-done"),
    path("terms/", views.terms_page, name="terms"),
    path("terms/accept/", views.terms_accept, name="terms-accept"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path(
        "password-reset/",
        auth.PasswordResetView.as_view(form_class=AffiliatePasswordResetForm),
        name="password_reset",
    ),
    path("password-reset/sent/", auth.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        auth.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("notifications/", views.notifications, name="notifications"),
    path(
        "notifications/unsubscribe/<str:token>/",
        views.unsubscribe,
        name="notifications-unsubscribe",
    ),
    path("dashboard/", views.dashboard, name="affiliate-dashboard"),
    path("dashboard/view-as/stop/", views.view_as_stop, name="affiliate-view-as-stop"),
    path("dashboard/conversions/", views.conversions, name="affiliate-conversions"),
    path("dashboard/links/", views.links, name="affiliate-links"),
    path("dashboard/offers/", views.offers_page, name="affiliate-offers"),
    path("dashboard/profile/", views.profile_page, name="affiliate-profile"),
    path(
        "dashboard/profile/password/",
        views.password_change,
        name="affiliate-password",
    ),
    path(
        "dashboard/profile/two-factor/",
        views.two_factor_page,
        name="affiliate-two-factor",
    ),
    path(
        "dashboard/profile/payment/<str:token>/",
        views.payment_confirm,
        name="affiliate-payment-confirm",
    ),
    path(
        "dashboard/offers/<int:campaign_id>/request/",
        views.offer_request,
        name="affiliate-offer-request",
    ),
    path(
        "dashboard/creatives/<int:creative_id>/",
        views.creative_download,
        name="affiliate-creative",
    ),
    path("dashboard/payouts/", views.payouts, name="affiliate-payouts"),
    path("dashboard/cohorts/", views.cohorts, name="affiliate-cohorts"),
    path("dashboard/sub-affiliates/", views.sub_affiliates, name="affiliate-subs"),
    path("dashboard/api-token/", views.api_token, name="affiliate-token"),
    path("dashboard/postbacks/", views.postback_settings, name="affiliate-postbacks"),
    path(
        "dashboard/postbacks/<int:endpoint_id>/test/",
        views.postback_test,
        name="affiliate-postback-test",
    ),
    path(
        "dashboard/postbacks/log/<int:delivery_id>/resend/",
        views.postback_resend,
        name="affiliate-postback-resend",
    ),
    path(
        "dashboard/postbacks/<int:endpoint_id>/delete/",
        views.postback_delete,
        name="affiliate-postback-delete",
    ),
    re_path(r"^click/?$", legacy.legacy_redirect, name="legacy-click"),  # Affise
    re_path(r"^aff_c/?$", legacy.legacy_redirect, name="legacy-aff-c"),  # TUNE / HasOffers
    re_path(r"^go/?$", legacy.legacy_redirect, name="legacy-go"),
]
