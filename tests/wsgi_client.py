"""A test client for the deployed WSGI application (``portal.wsgi.application``): requests go
through what gunicorn calls, the click fast path in front of Django included, where Django's own
test client calls Django's handler directly.

Like Django's client it keeps the test's database connection open (the request signals do not
close it) and answers with an object that reads like Django's test response.
"""

from collections.abc import Iterable
from typing import Any

from django.core import signals
from django.db import close_old_connections
from django.test import RequestFactory
from django.utils.datastructures import CaseInsensitiveMapping


class WsgiResponse:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: Iterable[bytes]):
        self.status_code = int(status.split(" ", 1)[0])
        self.header_list = headers
        self.headers = CaseInsensitiveMapping(dict(headers))
        self.content = b"".join(body)

    def __getitem__(self, name: str) -> str:
        return self.headers[name]

    def has_header(self, name: str) -> bool:
        return name in self.headers

    def get(self, name: str, default: Any = None) -> Any:
        return self.headers.get(name, default)


class WsgiClient:
    def __init__(self, application: Any = None) -> None:
        if application is None:
            from portal.wsgi import application
        self.application = application
        self.factory = RequestFactory()

    def request(self, method: str, path: str, data: Any = None, **extra: Any) -> WsgiResponse:
        request = getattr(self.factory, method)(path, data=data, **extra)
        environ = dict(request.environ)
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
            answer["status"], answer["headers"] = status, headers

        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            body = self.application(environ, start_response)
            try:
                content = list(body)
            finally:
                if hasattr(body, "close"):
                    body.close()
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)
        return WsgiResponse(answer["status"], answer["headers"], content)

    def get(self, path: str, data: Any = None, **extra: Any) -> WsgiResponse:
        return self.request("get", path, data, **extra)

    def head(self, path: str, data: Any = None, **extra: Any) -> WsgiResponse:
        return self.request("head", path, data, **extra)

    def post(self, path: str, data: Any = None, **extra: Any) -> WsgiResponse:
        return self.request("post", path, data, **extra)
