"""Offers in a real browser (issue 17): an affiliate reads their own terms, asks for an
approval-only campaign, a manager approves it in the admin, the affiliate builds a link on it
that redirects, sets payment details through the mailed confirmation link, and downloads the
self-billing invoice of an approved payout, whose text is read back from the PDF. Screenshots
go to var/screenshots/offers-*.png."""

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect
from pypdf import PdfReader

from affiliates.models import Campaign, CampaignAccess, TrackingLink
from payouts import runs
from payouts.models import Invoice, Payout

from .test_console_browser import manager_context, manager_log_in
from .test_dashboard_browser import DEMO_PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_an_affiliate_asks_for_an_offer_gets_it_links_it_and_downloads_an_invoice(
    demo, live_server, browser, screenshots
):
    # given: a payout run over the demo's weeks, approved, and an affiliate it pays who has not
    # asked for the approval-only campaign yet
    today = timezone.now().date()
    run = runs.payout_run_create(
        period_start=today - timedelta(days=40), period_end=today, open_months_confirmed=True
    )
    run = runs.payout_run_execute(run_id=run.pk)
    runs.payout_run_approve(run=run, actor=None)
    gated = Campaign.objects.get(visibility=Campaign.Visibility.APPROVAL)
    asked = set(CampaignAccess.objects.values_list("affiliate__user__username", flat=True))
    payout = (
        Payout.objects.filter(run=run)
        .exclude(affiliate__user__username__in=asked)
        .select_related("affiliate__user")
        .order_by("pk")
        .first()
    )
    assert payout is not None, "the demo run pays nobody who could still ask"
    username = payout.affiliate.user.username

    affiliate = browser.new_context(base_url=live_server.url, viewport=PHONE)
    affiliate.set_default_timeout(15_000)
    page = affiliate.new_page()
    log_in(page, username)

    # the offers: their terms on the public campaigns, and the gated one to ask for
    page.goto("/dashboard/offers/")
    offer = page.locator(f'section[data-offer="{gated.pk}"]')
    expect(offer.locator(".access")).to_contain_text("Needs a manager's approval")
    # their terms are the deal the demo's manager set: 100 EUR per FTD over a 20 EUR deposit,
    # 25% RevShare, a sub-affiliate level of 10%, 14 days' hold (affiliates/demo.py)
    terms = page.locator("table.terms").first
    for shown in ("CPA First-time deposit", "100.00 EUR", "minimum deposit 20.00 EUR",
                  "RevShare", "25%", "Sub-affiliates, level 1", "10%", "14 days"):  # fmt: skip
        expect(terms).to_contain_text(shown)
    page.screenshot(path=str(screenshots / "offers-list.png"), full_page=True)
    offer.locator('input[name="message"]').fill("Casino reviews, 20k visits a month")
    with page.expect_navigation():
        offer.get_by_role("button", name="Request access").click()
    expect(page.locator(f'section[data-offer="{gated.pk}"] .access')).to_contain_text(
        "waiting for a manager"
    )

    # a manager approves it in the admin
    console = manager_context(browser, live_server.url)
    admin = console.new_page()
    manager_log_in(admin)
    access = CampaignAccess.objects.get(affiliate=payout.affiliate, campaign=gated)
    admin.goto(f"/admin/affiliates/campaignaccess/{access.pk}/change/")
    expect(admin.locator("#content")).to_contain_text("Casino reviews, 20k visits a month")
    admin.select_option("#id_decision", "approve")
    with admin.expect_navigation():
        admin.click('input[name="_save"]')
    access.refresh_from_db()
    assert access.status == "approved"
    console.close()

    # the affiliate now has access, builds a link on it, and the link redirects
    page.goto("/dashboard/offers/")
    offer = page.locator(f'section[data-offer="{gated.pk}"]')
    expect(offer.locator(".access")).to_contain_text("You have access")
    with page.expect_navigation():
        offer.get_by_role("link", name="Get a link").click()
    expect(page.locator("#id_campaign")).to_have_value(str(gated.pk))
    page.fill("#id_name", "reviews")
    with page.expect_navigation():
        page.get_by_role("button", name="Create link").click()
    link = TrackingLink.objects.get(affiliate=payout.affiliate, campaign=gated, name="reviews")
    expect(page.locator(f"#link-{link.pk}")).to_be_visible()
    page.screenshot(path=str(screenshots / "offers-link.png"), full_page=True)
    answer = page.request.get(f"/c/{link.code}", max_redirects=0)
    assert answer.status == 302 and "luckyspins" in answer.headers["location"]

    # sets payment details, which apply once the mailed link is followed and confirmed
    payout.affiliate.user.email = f"{username}@demo.example"
    payout.affiliate.user.save(update_fields=["email"])
    mail.outbox.clear()
    page.goto("/dashboard/profile/")
    form = page.locator("#payment-form")
    form.locator('select[name="method"]').select_option("bank")
    form.locator('input[name="account_name"]').fill("Demo Media Ltd")
    form.locator('input[name="iban"]').fill("DE89 3704 0044 0532 0130 00")  # ECBS's example
    form.locator('input[name="bic"]').fill("DEUTDEFF")
    form.locator('input[name="password"]').fill(DEMO_PASSWORD)
    with page.expect_navigation():
        form.get_by_role("button", name="Change payment details").click()
    expect(page.locator('[data-payment-status="awaiting_email"]')).to_contain_text("DEUTDEFF")
    expect(page.locator("[data-current-payment]")).not_to_contain_text("DEUTDEFF")
    (message,) = [m for m in mail.outbox if m.subject == "Confirm your new payment details"]
    assert message.to == [f"{username}@demo.example"]
    link = re.search(r"https?://\S+/dashboard/profile/payment/\S+/", message.body).group(0)
    page.goto(link)
    expect(page.locator("main")).to_contain_text("DE89370400440532013000")
    page.screenshot(path=str(screenshots / "offers-payment-confirm.png"), full_page=True)
    with page.expect_navigation():
        page.click("#confirm-payment")
    expect(page.locator("[data-current-payment]")).to_contain_text("DE89370400440532013000")
    expect(page.locator('[data-payment-status="awaiting_manager"]')).to_be_visible()
    page.screenshot(path=str(screenshots / "offers-payment-details.png"), full_page=True)

    # and downloads the invoice of the approved payout
    page.goto("/dashboard/payouts/")
    page.screenshot(path=str(screenshots / "offers-payouts.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Invoice (PDF)").first.click()
    content = Path(download.value.path()).read_bytes()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)
    invoice = Invoice.objects.get(payout=payout)
    assert f"Self-billing invoice {invoice.number}" in text
    assert f"{invoice.amount:,.2f} {invoice.currency}" in text
    affiliate.close()
