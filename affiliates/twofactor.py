"""The managers' second factor, at every door that gives manager rights.

The admin (django-otp's OTPAdminSite), ``/login/`` (``LoginForm``), the API token endpoint and the
API itself (``permissions.is_manager``) all ask the same: a staff user is a manager only when a
one-time code from their authenticator (TOTP) vouches for the session, or for the short-lived API
token it was issued with. A password alone opens nothing a manager can do. ``ADMIN_2FA`` (on
unless ``DEBUG``) switches it off for local development only.

The code is checked only once the password is right, so a stranger cannot run a manager's device
into its throttle (django-otp pauses verification after failed codes) and lock them out.
"""

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django_otp.plugins.otp_totp.models import TOTPDevice


def required(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Whether ``user`` needs a second factor for manager rights."""
    return bool(settings.ADMIN_2FA and user and user.is_authenticated and user.is_staff)


def verified(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Whether a second factor vouches for ``user`` on this request: a session that passed a
    one-time code (django-otp's ``is_verified``), or a manager's API token (issued after one)."""
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def totp_device(user: AbstractBaseUser, token: str | None) -> TOTPDevice:
    """The manager's authenticator that ``token`` verifies; ValidationError says what is wrong.

    Call it only after the password has been checked.
    """
    token = (token or "").strip()
    if not token:
        raise ValidationError(
            "Managers also enter the one-time code from their authenticator.", code="otp_required"
        )
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        raise ValidationError(
            "No authenticator is set up for this manager; another manager adds one in the admin "
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
