"""The managers' back office: the admin named for the portal, business pages first, and the
tables only engineers read (rollups, raw events, sign-in devices and logs) together under
"System". No domain here: models are named by "app_label.model_name"."""

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django_otp.admin import OTPAdminSite

SITE_NAME = "Affiliate portal"

# Read by engineers when something looks wrong, not in a manager's day.
SYSTEM_MODELS = {
    "attribution.dailyrollup",
    "attribution.postbackevent",
    "axes.accessattempt",
    "axes.accessfailurelog",
    "axes.accesslog",
    "otp_totp.totpdevice",
    "authtoken.tokenproxy",
    "auth.group",
}
# The order a manager's sections come in; anything else follows, System last.
APP_ORDER = ["affiliates", "attribution", "payouts", "auth"]
APP_NAMES = {"attribution": "Tracking & conversions", "auth": "Users"}


class PortalAdminSite(AdminSite):
    site_header = SITE_NAME
    site_title = SITE_NAME
    index_title = "Back office"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        system = {
            "name": "System",
            "app_label": "system",
            "app_url": "",
            "has_module_perms": True,
            "models": [],
        }
        kept = []
        for app in apps:
            models = []
            for model in app["models"]:
                key = f"{app['app_label']}.{model['object_name'].lower()}"
                (system["models"] if key in SYSTEM_MODELS else models).append(model)
            if models:
                kept.append(
                    {**app, "models": models, "name": APP_NAMES.get(app["app_label"], app["name"])}
                )
        order = {label: n for n, label in enumerate(APP_ORDER)}
        kept.sort(key=lambda app: (order.get(app["app_label"], len(order)), app["name"]))
        if system["models"]:
            system["models"].sort(key=lambda model: model["name"])
            kept.append(system)
        return kept


class PortalOTPAdminSite(OTPAdminSite, PortalAdminSite):
    """The same back office behind a one-time code (ADMIN_2FA)."""

    site_header = SITE_NAME
    site_title = SITE_NAME
