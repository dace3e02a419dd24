import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from attribution.clicks import redirect
from attribution.clicks.recording import client_ip
from attribution.ingestion import door
from attribution.models import SourceKind

logger = logging.getLogger(__name__)


class _Redirect(HttpResponseRedirect):
    allowed_schemes = list(redirect.ALLOWED_SCHEMES)


@csrf_exempt  # a POST is refused with 405 (require_safe), not with a CSRF 403
@require_safe
def click_redirect(request: HttpRequest, code: str) -> HttpResponse:
    """GET /c/<code>: record the click, 302 to the destination with our click id on it.

    Most clicks are answered before Django by ``attribution.fastpath``, with the same
    ``redirect.click_answer``; this view takes the rest (404 pages, odd requests) and the tests'
    client."""
    answer = redirect.click_answer(code, request.GET, request.META, request.method)
    if answer.status == 302:
        response = _Redirect(answer.location)
        for name, value in redirect.REDIRECT_HEADERS:
            response[name] = value
        return response
    if answer.status == 503:
        return HttpResponse(redirect.UNAVAILABLE_TEXT, status=503)
    return render(request, "attribution/link_not_found.html", status=404)


def _json(outcome: door.Outcome) -> JsonResponse:
    response = JsonResponse(outcome.body, status=outcome.http_status)
    response["Cache-Control"] = "no-store"
    return response


class _BodyRefused(Exception):
    def __init__(self, response: JsonResponse) -> None:
        self.response = response


def _read_body(request: HttpRequest) -> bytes:
    """The raw body, read no further than the cap; ``_BodyRefused`` says why not."""
    meta = request.META
    if not meta.get("CONTENT_LENGTH") and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", ""):
        # Django reads a body by its Content-Length only, and so took a chunked one as empty.
        # gunicorn de-chunks the input and says so (wsgi.input_terminated): read it to its end.
        if not request.environ.get("wsgi.input_terminated"):
            raise _BodyRefused(
                JsonResponse({"error": "send the body with a Content-Length"}, status=411)
            )
        body = request.environ["wsgi.input"].read(door.MAX_BODY + 1)
    else:
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > door.MAX_BODY:
            raise _BodyRefused(_too_big())
        body = request.read(door.MAX_BODY + 1)
    if len(body) > door.MAX_BODY:
        raise _BodyRefused(_too_big())
    return body


def _too_big() -> JsonResponse:
    return JsonResponse({"error": f"body is larger than {door.MAX_BODY} bytes"}, status=413)


def _unavailable(exc: Exception) -> JsonResponse:
    logger.error("postback not stored, database unavailable: %s", exc)
    response = JsonResponse(
        {"error": "temporarily unable to store the postback; retry later"}, status=503
    )
    response["Retry-After"] = "30"
    return response


def _method_not_allowed(allowed: str) -> JsonResponse:
    response = JsonResponse({"error": f"method not allowed; use {allowed}"}, status=405)
    response["Allow"] = allowed
    return response


@csrf_exempt
def postback(request: HttpRequest, source: str, token: str) -> HttpResponse:
    """GET|POST /postbacks/<source>/<token>/: store the postback durably, then answer."""
    if request.method not in ("GET", "POST"):
        return _method_not_allowed("GET, POST")
    try:
        body = _read_body(request) if request.method == "POST" else b""
    except _BodyRefused as refused:
        return refused.response
    try:
        outcome = door.postback_ingest(
            kind=source,
            token=token,
            method=request.method,
            query=request.META.get("QUERY_STRING", ""),
            body=body,
            meta=request.META,
            remote_addr=client_ip(request.META),
        )
    except DatabaseError as exc:
        return _unavailable(exc)
    return _json(outcome)


def _apple(kind: str):
    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return _method_not_allowed("POST")
        try:
            body = _read_body(request)
        except _BodyRefused as refused:
            return refused.response
        try:
            outcome = door.apple_ingest(
                kind=kind, body=body, meta=request.META, remote_addr=client_ip(request.META)
            )
        except DatabaseError as exc:
            return _unavailable(exc)
        return _json(outcome)

    view.__name__ = f"{kind}_report_attribution"
    return view


skadnetwork_report = _apple(SourceKind.SKADNETWORK)
adattributionkit_report = _apple(SourceKind.ADATTRIBUTIONKIT)
