"""Self-billing invoices: the operator invoices itself on each affiliate's behalf for a payout.

A payout gets its invoice when its run is approved (or, for runs approved before invoices
existed, the first time it is asked for). Numbers are ``<prefix>-<year>-<000001>``, one after
another without gaps: the year's counter row is locked while a number is taken, so concurrent
approvals never share or skip one. The invoice keeps a copy of both parties as they were; its
lines (by campaign and kind) are read from the payout's ledger entries, which never change once
paid. The PDF is drawn by fpdf2 with a Unicode font (``INVOICE_FONT``).
"""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from fpdf import FPDF
from fpdf.fonts import FontFace

from . import selectors
from .models import Invoice, InvoiceCounter, LedgerEntry, Payout

INVOICEABLE = (Payout.Status.APPROVED, Payout.Status.PAID)


class NotInvoiceable(ValueError):
    """A draft or cancelled payout has no invoice: its amount is not final."""


def _issuer() -> str:
    return "\n".join(
        line
        for line in (
            settings.INVOICE_ISSUER,
            settings.INVOICE_ISSUER_ADDRESS,
            f"VAT id {settings.INVOICE_ISSUER_VAT_ID}" if settings.INVOICE_ISSUER_VAT_ID else "",
        )
        if line
    )


def _recipient(payout: Payout) -> str:
    affiliate = payout.affiliate
    return "\n".join(
        line
        for line in (
            affiliate.company or affiliate.name,
            affiliate.address,
            f"VAT id {affiliate.vat_id}" if affiliate.vat_id else "",
            f"Affiliate #{affiliate.pk}",
        )
        if line
    )


def invoice_issue(*, payout: Payout) -> Invoice:
    """The payout's invoice, numbered now if it has none yet. Safe to call again."""
    if payout.status not in INVOICEABLE:
        raise NotInvoiceable(f"a {payout.status} payout has no invoice yet")
    existing = Invoice.objects.filter(payout=payout).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        # The payout row first: two callers for the same payout wait here, and the second finds
        # the invoice the first made instead of taking a second number.
        Payout.objects.select_for_update().get(pk=payout.pk)
        existing = Invoice.objects.filter(payout=payout).first()
        if existing is not None:
            return existing
        now = timezone.now()
        InvoiceCounter.objects.get_or_create(year=now.year)
        counter = InvoiceCounter.objects.select_for_update().get(year=now.year)
        counter.last += 1
        counter.save(update_fields=["last"])
        return Invoice.objects.create(
            payout=payout,
            number=f"{settings.INVOICE_PREFIX}-{now.year}-{counter.last:06d}",
            issued_at=now,
            issuer=_issuer(),
            recipient=_recipient(payout),
            amount=payout.amount,
            currency=payout.currency,
        )


@dataclass(frozen=True)
class Line:
    description: str
    count: int
    amount: Decimal


def invoice_lines(payout: Payout) -> list[Line]:
    """The payout's ledger entries by campaign and kind (CPA per conversion type, RevShare per
    month, sub-affiliate shares, adjustments, reversals), in the payout's currency."""
    groups: dict[str, list[Decimal]] = defaultdict(list)
    for entry in selectors.statement_lines(payout=payout):
        conversion = entry.conversion
        campaign = conversion.campaign.name if conversion and conversion.campaign else ""
        if entry.kind == LedgerEntry.Kind.CPA and conversion is not None:
            what = f"CPA {conversion.get_type_display()}"
        elif entry.kind == LedgerEntry.Kind.REVSHARE and entry.period:
            what = f"RevShare {entry.period:%Y-%m}"
        else:
            what = entry.get_kind_display()
        groups[f"{campaign} - {what}" if campaign else what].append(entry.amount)
    return [Line(key, len(amounts), sum(amounts, Decimal(0))) for key, amounts in groups.items()]


def _money(value: Decimal, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF document."""
    payout = invoice.payout
    pdf = FPDF(format="A4")
    pdf.set_title(f"Invoice {invoice.number}")
    pdf.set_creator(settings.INVOICE_ISSUER)
    font = Path(settings.INVOICE_FONT)
    if font.is_file():
        pdf.add_font("Body", fname=str(font))
        family = "Body"
        text = str
    else:
        # The core fonts hold Latin-1 only: other characters become "?".
        family = "Helvetica"

        def text(value: str) -> str:
            return value.encode("latin-1", "replace").decode("latin-1")

    pdf.add_page()
    pdf.set_font(family, size=18)
    pdf.cell(0, 10, text(f"Self-billing invoice {invoice.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=10)
    pdf.cell(
        0,
        6,
        text(
            f"Issued {invoice.issued_at:%Y-%m-%d} on behalf of the supplier below; "
            f"period {payout.run.period_start:%Y-%m-%d} to {payout.run.period_end:%Y-%m-%d}"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(4)
    top = pdf.get_y()
    pdf.multi_cell(90, 5, text("Supplier (affiliate)\n" + invoice.recipient))
    pdf.set_xy(110, top)
    pdf.multi_cell(90, 5, text("Customer (operator)\n" + invoice.issuer))
    pdf.set_y(max(pdf.get_y(), top + 30))
    pdf.ln(4)
    with pdf.table(
        col_widths=(120, 20, 50),
        text_align=("LEFT", "RIGHT", "RIGHT"),
        headings_style=FontFace(emphasis=""),  # one font file: no bold face to draw with
    ) as table:
        table.row(["Description", "Items", "Amount"])
        for line in invoice_lines(payout):
            table.row(
                [text(line.description), str(line.count), _money(line.amount, invoice.currency)]
            )
        table.row(["Total", "", _money(invoice.amount, invoice.currency)])
    pdf.ln(4)
    if payout.reference:
        pdf.cell(0, 6, text(f"Paid: reference {payout.reference}"), new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(
        0,
        5,
        text(
            "Self-billing: this invoice is issued by the customer on the supplier's behalf, as "
            "agreed in the affiliate terms. VAT, where due, is the supplier's to account for."
        ),
    )
    return bytes(pdf.output())
