"""How API requests say who they are (DRF's DEFAULT_AUTHENTICATION_CLASSES).

Kept apart from ``permissions``: DRF imports authentication classes while ``rest_framework.views``
is still loading, so this module must not import it.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from . import twofactor


class PortalTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``. An affiliate's token lasts until it is replaced; a
    manager's is issued only after a one-time code (``TokenObtainView``) and lasts
    STAFF_TOKEN_HOURS, after which a new code is needed."""

    def authenticate_credentials(self, key: str):
        user, token = super().authenticate_credentials(key)
        if twofactor.required(user):
            if token.created < timezone.now() - timedelta(hours=settings.STAFF_TOKEN_HOURS):
                raise AuthenticationFailed(
                    "A manager's token lasts "
                    f"{settings.STAFF_TOKEN_HOURS} hours: get a new one with your one-time code."
                )
            user.is_verified = lambda: True  # the code was given when the token was issued
        return user, token
