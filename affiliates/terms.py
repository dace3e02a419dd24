"""The program's terms: the newest published version, and who has accepted it.

Affiliates accept the current version when they sign up; when managers publish a new one, each
affiliate's next page asks them to accept it before anything else (``affiliate_required``).
"""

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone

from .models import TermsAcceptance, TermsVersion

SESSION_KEY = "terms_accepted_version"


def terms_current() -> TermsVersion | None:
    """The terms in force now (None: the program has published none)."""
    return (
        TermsVersion.objects.filter(published_at__lte=timezone.now()).order_by("-version").first()
    )


def terms_pending(request: HttpRequest) -> TermsVersion | None:
    """The current terms if the signed-in user has not accepted them yet. One query when they
    have (the session remembers the version)."""
    current = terms_current()
    if current is None or request.session.get(SESSION_KEY) == current.version:
        return None
    if TermsAcceptance.objects.filter(user=request.user, terms=current).exists():
        request.session[SESSION_KEY] = current.version
        return None
    return current


def terms_outstanding(user: AbstractBaseUser) -> TermsVersion | None:
    """``terms_pending`` for a request without a session (the API): the current terms if
    ``user`` has not accepted them. The answer "accepted" is kept a minute in the cache."""
    current = terms_current()
    if current is None:
        return None
    key = f"terms-accepted:{user.pk}:{current.version}"
    if cache.get(key):
        return None
    if TermsAcceptance.objects.filter(user=user, terms=current).exists():
        cache.set(key, True, 60)
        return None
    return current


def terms_accept(*, user: AbstractBaseUser, terms: TermsVersion, ip: str | None) -> TermsAcceptance:
    """Record that ``user`` accepted ``terms`` (once; accepting again changes nothing)."""
    acceptance, _ = TermsAcceptance.objects.get_or_create(
        user=user, terms=terms, defaults={"ip": ip}
    )
    return acceptance
