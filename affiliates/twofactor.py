"""The second factor: managers' at every door that gives manager rights, affiliates' if they want.

The admin (django-otp's OTPAdminSite), ``/login/`` (``LoginForm``), the API token endpoint and the
API itself (``permissions.is_manager``) all ask the same: a staff user is a manager only when a
one-time code from their authenticator (TOTP) vouches for the session, or for the short-lived API
token it was issued with. A password alone opens nothing a manager can do. ``ADMIN_2FA`` (on
unless ``DEBUG``) switches it off for local development only.

An affiliate may turn on a one-time code for their own login (``/dashboard/profile/two-factor/``):
from then on ``/login/`` and the API token endpoint ask them for it too, and a session of theirs
that did not give one (opened before, say) is logged out.

The code is checked only once the password is right, so a stranger cannot run a manager's device
into its throttle (django-otp pauses verification after failed codes) and lock them out.
"""

import segno
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from . import notify
from .models import Affiliate, NoticeKind
from .services import audit_record


def required(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Whether ``user`` needs a second factor for manager rights."""
    return bool(settings.ADMIN_2FA and user and user.is_authenticated and user.is_staff)


def verified(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Whether a second factor vouches for ``user`` on this request: a session that passed a
    one-time code (django-otp's ``is_verified``), or a manager's API token (issued after one)."""
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def login_needs_code(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Whether logging in (a session or an API token) asks ``user`` for a one-time code: a
    manager (when on), or an affiliate who turned it on."""
    if required(user):
        return True
    affiliate = getattr(user, "affiliate", None)
    return bool(affiliate is not None and affiliate.two_factor)


def totp_device(user: AbstractBaseUser, token: str | None) -> TOTPDevice:
    """The user's authenticator that ``token`` verifies; ValidationError says what is wrong.

    Call it only after the password has been checked.
    """
    token = (token or "").strip()
    if not token:
        raise ValidationError(
            "Enter the one-time code from your authenticator app.", code="otp_required"
        )
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        raise ValidationError(
            "No authenticator is set up for this account; a manager adds one in the admin "
            "(TOTP devices).",
            code="otp_no_device",
        )
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        raise ValidationError(
            "Too many wrong codes: code checks are paused for a moment; try again soon.",
            code="otp_throttled",
        )
    if not device.verify_token(token):
        raise ValidationError("The one-time code is not right.", code="otp_invalid")
    return device


# --- an affiliate's own authenticator -----------------------------------------------------------

SETUP_NAME = "authenticator (being set up)"


def setup_device(user: AbstractBaseUser) -> TOTPDevice:
    """The authenticator being set up for ``user``: a new secret until a code confirms it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False, name=SETUP_NAME).first()
    return device or TOTPDevice.objects.create(user=user, name=SETUP_NAME, confirmed=False)


def qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// address as an inline SVG QR code, for the authenticator app."""
    return segno.make(device.config_url, error="m").svg_inline(scale=4, border=2)


def _told(affiliate: Affiliate) -> None:
    state = "on" if affiliate.two_factor else "off"
    notify.notify_affiliate(
        affiliate,
        NoticeKind.SECURITY,
        f"Two-factor login turned {state}",
        "If this was not you, reset your password and tell your affiliate manager.",
        reverse("affiliate-two-factor"),
    )


def turn_on(*, affiliate: Affiliate, token: str) -> TOTPDevice:
    """Confirm the device being set up with a code from it; the affiliate's logins ask for one
    from then on, and API tokens issued without a code stop working. ValidationError when the
    code is not right."""
    user = affiliate.user
    device = TOTPDevice.objects.filter(user=user, confirmed=False, name=SETUP_NAME).first()
    if device is None or not device.verify_token((token or "").strip()):
        raise ValidationError("The one-time code is not right.", code="otp_invalid")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed, device.name = True, "authenticator"
        device.save(update_fields=["confirmed", "name"])
        Affiliate.objects.filter(pk=affiliate.pk).update(two_factor=True)
        affiliate.two_factor = True
        Token.objects.filter(user=user).delete()
        audit_record(obj=affiliate, field="two_factor", old="off", new="on", actor=user)
        _told(affiliate)
    return device


def turn_off(*, affiliate: Affiliate) -> None:
    """No more one-time codes for the affiliate's logins (the caller checked password and code)."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=affiliate.user).delete()
        Affiliate.objects.filter(pk=affiliate.pk).update(two_factor=False)
        affiliate.two_factor = False
        audit_record(obj=affiliate, field="two_factor", old="on", new="off", actor=affiliate.user)
        _told(affiliate)
