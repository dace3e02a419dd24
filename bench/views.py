"""Bare views: the least Django can do for a request, to measure the portal's views against.

They run behind the same middleware, settings and server as the real views; only the work of the
view itself is missing. Add one per benchmark (e.g. a bare view doing one INSERT for postbacks).
"""

import hashlib

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from attribution.models import Postback

BARE_REDIRECT_TO = "https://bench.example/landing"
# The request headers the real postback endpoint keeps (attribution.ingestion.KEPT_HEADERS).
_KEPT = ("HTTP_USER_AGENT", "CONTENT_TYPE", "HTTP_X_SIGNATURE", "HTTP_X_FORWARDED_FOR")


def bare_redirect(request: HttpRequest) -> HttpResponse:
    """302 to a fixed URL: no database, no work."""
    return HttpResponseRedirect(BARE_REDIRECT_TO)


@csrf_exempt
def bare_insert(request: HttpRequest, kind: str, source_id: int) -> HttpResponse:
    """ONE INSERT of the request into the postback inbox, then 200 JSON: no lookup, no parse.

    Stores what the real ``/postbacks/<kind>/<token>/`` stores (source, kind, method, query, body,
    content type, kept headers, address, time, status), with a dedup key made from a hash of the
    query string, so the benchmark's unique query strings make unique rows. It names the source
    by id in its path instead of looking up a token, and it enqueues nothing.
    """
    meta = request.META
    query = meta.get("QUERY_STRING", "")
    body = request.body.decode("utf-8", "replace") if request.method == "POST" else ""
    digest = hashlib.sha256(f"{request.method}\n{query}\n{body}".encode()).hexdigest()
    row = Postback.objects.create(
        source_id=source_id,
        kind=kind,
        method=request.method,
        query=query,
        body=body,
        content_type=meta.get("CONTENT_TYPE", "")[:200],
        headers={
            key.removeprefix("HTTP_").lower().replace("_", "-"): str(meta[key])[:512]
            for key in _KEPT
            if key in meta
        },
        remote_addr=meta.get("REMOTE_ADDR") or None,
        received_at=timezone.now(),
        dedup_key=f"bare:{digest}",
        status=Postback.Status.RECEIVED,
    )
    response = JsonResponse({"status": "accepted", "id": row.pk})
    response["Cache-Control"] = "no-store"
    return response
