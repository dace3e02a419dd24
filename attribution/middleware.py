"""Middleware of the click redirect."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from attribution.clicks import writing


class ClickComingMiddleware:
    """Tell this process's click committer, as a request to ``/c/`` comes in, that a click is
    on its way (``GroupCommitter.coming``).

    First in the stack: the committer then waits for every click request this process is
    already serving, middleware included, rather than only those that reached the view, so a
    group holds about as many clicks as there are requests in flight (the threads take turns on
    the interpreter anyway, so waiting for them costs a click little time), and the cost of a
    commit and of a COPY is shared by that many. A request that ends without a click (a 404, a
    bot) stops being waited for as it ends.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith("/c/"):
            return self.get_response(request)
        with writing.coming():
            return self.get_response(request)
