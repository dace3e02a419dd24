from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from . import invoices, selectors


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


@login_required
def invoice(request: HttpRequest, payout_id: int) -> HttpResponse:
    """A payout's self-billing invoice as PDF: staff any, an affiliate only their own; none for a
    payout not yet approved."""
    payout = selectors.payout_for_viewer(payout_id=payout_id, user=request.user)
    if payout is None or payout.status not in invoices.INVOICEABLE:
        raise Http404("No invoice for this payout")
    made = invoices.invoice_issue(payout=payout)
    response = HttpResponse(invoices.invoice_pdf(made), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{made.number}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response
