"""Who may use the REST API: managers (staff) and active affiliates; nobody else.

A pending, suspended or rejected affiliate, or a user with no affiliate at all, is refused
everywhere but the token endpoint. The querysets behind each endpoint are then narrowed to the
affiliate's own rows (``scoped``), so a guessed id or a filter can never reach another's data.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from . import terms, twofactor
from .models import Affiliate

User = AbstractBaseUser | AnonymousUser


def is_manager(user: User) -> bool:
    """Staff whose second factor vouches for this request (see ``twofactor``)."""
    if not (user and user.is_authenticated and user.is_staff):
        return False
    return not twofactor.required(user) or twofactor.verified(user)


def active_affiliate(user: User) -> Affiliate | None:
    """The user's affiliate if it may use the API now (one query, cached on the user)."""
    if not (user and user.is_authenticated):
        return None
    try:
        affiliate = user.affiliate
    except Affiliate.DoesNotExist:
        return None
    return affiliate if affiliate.status == Affiliate.Status.ACTIVE else None


def scoped(queryset: QuerySet, user: User, *, field: str = "affiliate") -> QuerySet:
    """``queryset`` as ``user`` may see it: everything for a manager, else only its own rows.

    Apply before any filter, so that filters only ever narrow what is already the user's.
    """
    if is_manager(user):
        return queryset
    affiliate = active_affiliate(user)
    if affiliate is None:
        return queryset.none()
    return queryset.filter(**{field: affiliate})


class IsManager(BasePermission):
    """Staff only: program-wide reads and every write that is not an affiliate's own link."""

    message = "Only affiliate managers may use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_manager(request.user)


class IsManagerOrActiveAffiliate(BasePermission):
    """Staff, or a user whose affiliate is active; the view scopes the rows."""

    message = "Only active affiliates and affiliate managers may use the API."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if is_manager(request.user):
            return True
        if active_affiliate(request.user) is None:
            return False
        outstanding = terms.terms_outstanding(request.user)
        if outstanding is not None:
            # As on the pages: the program's new terms are accepted before anything else.
            raise PermissionDenied(
                f"The program published new terms (version {outstanding.version}): accept "
                "them at /terms/accept/ before using the API."
            )
        return True
