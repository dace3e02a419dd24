from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from . import selectors


@login_required
def statement(request: HttpRequest, payout_id: int) -> HttpResponse:
    """A payout's statement, printable: staff see any, an affiliate only their own."""
    payout = selectors.payout_for_viewer(payout_id=payout_id, user=request.user)
    if payout is None:
        raise Http404("No such payout")
    return render(
        request,
        "payouts/statement.html",
        {"payout": payout, "lines": selectors.statement_lines(payout=payout)},
    )
