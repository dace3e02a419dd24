"""Bare views: the least Django can do for a request, to measure the portal's views against.

They run behind the same middleware, settings and server as the real views; only the work of the
view itself is missing. Add one per benchmark (e.g. a bare view doing one INSERT for postbacks).
"""

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

BARE_REDIRECT_TO = "https://bench.example/landing"


def bare_redirect(request: HttpRequest) -> HttpResponse:
    """302 to a fixed URL: no database, no work."""
    return HttpResponseRedirect(BARE_REDIRECT_TO)
