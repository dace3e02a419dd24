"""The bell: the signed-in user's unread notifications, on every page (one COUNT, lazily)."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from . import notify


def notifications(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {"unread_notifications": SimpleLazyObject(lambda: notify.unread_count(user))}
