"""The click redirect in front of Django: ``GET /c/<code>`` answered straight from WSGI.

A click is the hottest request the portal serves, and a redirect needs none of what Django's
middleware is for (sessions, sign-in, CSRF, messages, static files, framing of pages): passing
through it cost more CPU than recording the click. So ``portal.wsgi`` puts ``ClickFastPath`` in
front of Django. It answers the common case, a GET or HEAD of one link code, with the same
``redirect.click_answer`` as the view, and the same headers the middleware would add; everything
else goes on to Django unchanged (a 404 page, another method, a plain-HTTP request that must be
sent to HTTPS, a Host not in ALLOWED_HOSTS, a query too large, a code that is not UTF-8).

As a request ends it does what Django's request signals do for the database: a connection past
``CONN_MAX_AGE`` or left unusable is closed (without the signals themselves, a third of the fast
path's own time).
"""

from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import connections
from django.http.request import split_domain_port, validate_host
from django.utils.encoding import iri_to_uri

from attribution.clicks import redirect, writing

PREFIX = "/c/"
_STATUS = {302: "302 Found", 503: "503 Service Unavailable"}


def security_headers() -> list[tuple[str, str]]:
    """The headers Django's middleware puts on every answer (``SecurityMiddleware``,
    ``XFrameOptionsMiddleware``, ``portal.lib.csp``), from the same settings."""
    headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS))
    if settings.CONTENT_SECURITY_POLICY:
        headers.append(("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY))
    return headers


def hsts_header() -> tuple[str, str] | None:
    """``SecurityMiddleware``'s Strict-Transport-Security, for answers over HTTPS."""
    if not settings.SECURE_HSTS_SECONDS:
        return None
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return ("Strict-Transport-Security", value)


def _close_old_connections() -> None:
    """``django.db.close_old_connections``, but for a connection inside a transaction (only a
    test's): Django's test client keeps that one by disconnecting the signal instead."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


class ClickFastPath:
    """WSGI middleware: clicks answered here, any other request passed to ``app``."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", "0"),
            *redirect.REDIRECT_HEADERS,
            *security_headers(),
        ]
        self.hsts = hsts_header()
        self.ssl_redirect = settings.SECURE_SSL_REDIRECT
        proxy = settings.SECURE_PROXY_SSL_HEADER
        self.proxy_ssl = proxy if proxy else None
        self.max_fields = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]  # as HttpRequest.get_host
        self.allowed_hosts = allowed
        self.forwarded_host = settings.USE_X_FORWARDED_HOST
        self._hosts: dict[str, bool] = {}  # Host header -> allowed, for the hosts seen

    def _host_allowed(self, environ: dict) -> bool:
        """``HttpRequest.get_host``'s check: a Host not in ALLOWED_HOSTS goes on to Django (400)."""
        if self.forwarded_host and "HTTP_X_FORWARDED_HOST" in environ:
            host = environ["HTTP_X_FORWARDED_HOST"]
        else:
            host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        allowed = self._hosts.get(host)
        if allowed is None:
            domain, _ = split_domain_port(host)
            allowed = bool(domain) and validate_host(domain, self.allowed_hosts)
            if len(self._hosts) < 1000:
                self._hosts[host] = allowed
        return allowed

    def _secure(self, environ: dict) -> bool:
        if self.proxy_ssl is not None:
            header, value = self.proxy_ssl
            if header in environ:
                return environ[header].split(",", 1)[0].strip() == value
        return environ.get("wsgi.url_scheme") == "https"

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX) or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        with writing.coming():  # announced from the start, as ClickComingMiddleware does
            answered = self._click(environ, path, start_response)
        return self.app(environ, start_response) if answered is None else answered

    def _click(self, environ: dict, path: str, start_response: Callable) -> list[bytes] | None:
        secure = self._secure(environ)
        if (self.ssl_redirect and not secure) or not self._host_allowed(environ):
            return None  # Django sends it to HTTPS, or refuses the Host
        try:
            # WSGI carries the path's bytes as Latin-1; Django reads them as UTF-8.
            code = path[len(PREFIX) :].encode("latin-1").decode("utf-8")
            params = dict(
                parse_qsl(
                    environ.get("QUERY_STRING", ""),
                    keep_blank_values=True,
                    max_num_fields=self.max_fields,
                )
            )
        except (UnicodeError, ValueError):
            return None
        if not code or "/" in code:
            return None
        try:
            answer = redirect.click_answer(code, params, environ, environ["REQUEST_METHOD"])
        finally:
            _close_old_connections()
        if answer.status == 302:
            location = iri_to_uri(answer.location)
            if (
                location.split(":", 1)[0].lower() not in redirect.ALLOWED_SCHEMES
                or "\n" in location
                or "\r" in location
            ):
                # A destination Django would refuse too (DisallowedRedirect, BadHeaderError).
                start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [b"This link's destination is not a valid URL."]
            headers = [("Location", location), *self.headers]
            if secure and self.hsts is not None:
                headers.append(self.hsts)
        elif answer.status == 503:
            body = redirect.UNAVAILABLE_TEXT.encode()
            headers = [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                *self.headers[2:],
            ]
            start_response(_STATUS[503], headers)
            return [body]
        else:
            return None  # the 404 page is Django's
        start_response(_STATUS[302], headers)
        return []
