"""Links of the platform a program moved from, kept working.

An old link such as ``https://old.example/click?pid=123&offer_id=45&sub1=fb`` (Affise),
``/aff_c?offer_id=45&aff_id=123&aff_sub=fb`` (TUNE/HasOffers) or ``/go?a=123&c=45&s1=fb``
(CAKE-style) is known by its path and its *identifying* parameters: every parameter except sub ids,
click ids and device ids. The import stores them, sorted, as a LegacyLink; here a request to the
same path with the same identifying parameters is answered with a 302 to ``/c/<code>``, its sub ids
mapped to ``sub1``..``sub5`` and its advertising ids to ``gaid``/``idfa``, so the click is recorded
by the normal redirect.
"""

from collections.abc import Iterable
from itertools import combinations
from urllib.parse import unquote, urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.http import require_safe

from .models import LegacyLink

# Sub ids of the old platforms and the sub of ours each one fills (0: recognised, not kept).
SUB_PARAMS: dict[str, int] = {
    **{f"sub{n}": n for n in range(1, 6)},  # Affise, Everflow
    **{f"sub{n}": 0 for n in range(6, 9)},  # Affise sub6..sub8: we keep five
    **{f"s{n}": n for n in range(1, 6)},  # CAKE
    "aff_sub": 1,  # TUNE / HasOffers
    **{f"aff_sub{n}": n for n in range(1, 6)},
}
# Click ids (ours are new; the old platform's and the ad networks' are per click) and device ids.
CLICK_ID_PARAMS = frozenset(
    {
        "clickid",
        "click_id",
        "transaction_id",
        "aff_click_id",
        "tid",
        "gclid",
        "gbraid",
        "wbraid",
        "fbclid",
        "ttclid",
        "msclkid",
        "dclid",
        "dub_id",
    }
)
DEVICE_PARAMS: dict[str, str] = {
    "gaid": "gaid",
    "google_aid": "gaid",
    "advertising_id": "gaid",
    "gps_adid": "gaid",
    "idfa": "idfa",
    "ios_ifa": "idfa",
}
# Identifying parameters beyond this many are not tried in every combination (see lookup).
MAX_IDENTIFYING = 8


def is_identifying(name: str) -> bool:
    lowered = name.lower()
    return not (
        lowered in SUB_PARAMS
        or lowered in CLICK_ID_PARAMS
        or lowered in DEVICE_PARAMS
        or lowered.startswith("utm_")
    )


def legacy_path(path: str) -> str:
    """A URL path as LegacyLink keeps it: decoded, without a trailing slash ("/" stays "/")."""
    path = unquote(path or "/")
    if not path.startswith("/"):
        path = "/" + path
    return path.rstrip("/") or "/"


def legacy_key(pairs: Iterable[tuple[str, str]]) -> str:
    """The identifying parameters of a query, sorted and encoded: "offer_id=45&pid=123"."""
    return urlencode(sorted((k, v) for k, v in pairs if is_identifying(k)))


def mapped_subs(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """sub1..sub5 from the old platform's sub ids; ``subN`` beats ``sN`` beats ``aff_subN``."""
    ranked: dict[int, tuple[int, str]] = {}
    for name, value in pairs:
        lowered = name.lower()
        number = SUB_PARAMS.get(lowered, 0)
        if not number or not value:
            continue
        rank = 0 if lowered.startswith("sub") else 1 if lowered.startswith("s") else 2
        if number not in ranked or rank < ranked[number][0]:
            ranked[number] = (rank, value)
    return {f"sub{n}": ranked[n][1] for n in sorted(ranked)}


def mapped_devices(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    devices: dict[str, str] = {}
    for name, value in pairs:
        ours = DEVICE_PARAMS.get(name.lower())
        if ours and value and ours not in devices:
            devices[ours] = value
    return devices


def is_routed(path: str) -> bool:
    """Does a request to ``path`` reach the legacy redirect (a line in affiliates/urls.py)?"""
    try:
        return resolve(path).func is legacy_redirect
    except Resolver404:
        return False


def lookup(path: str, pairs: list[tuple[str, str]]) -> LegacyLink | None:
    """The LegacyLink for this path and query: all identifying parameters, else the largest
    subset that names one (old links pick up extra parameters on their way: ``&ref=x``)."""
    identifying = sorted({(k, v) for k, v in pairs if is_identifying(k)})
    if not identifying:
        return None
    exact = legacy_key(identifying)
    if len(identifying) > MAX_IDENTIFYING:
        candidates = [exact]
    else:
        candidates = [
            urlencode(subset)
            for size in range(len(identifying), 0, -1)
            for subset in combinations(identifying, size)
        ]
    found = {
        legacy.key: legacy
        for legacy in LegacyLink.objects.select_related("link").filter(
            path=path, key__in=candidates
        )
    }
    for key in candidates:  # the most parameters first
        if key in found:
            return found[key]
    return None


@require_safe
def legacy_redirect(request: HttpRequest) -> HttpResponse:
    """GET /click, /aff_c, /go (old platforms' link paths): 302 to /c/<code> with the sub ids."""
    pairs = [(k, v) for k, values in request.GET.lists() for v in values[:1]]
    legacy = lookup(legacy_path(request.path), pairs)
    if legacy is None:
        return render(request, "attribution/link_not_found.html", status=404)
    query = urlencode({**mapped_subs(pairs), **mapped_devices(pairs)})
    target = reverse("click", args=[legacy.link.code])
    response = HttpResponseRedirect(f"{target}?{query}" if query else target)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
