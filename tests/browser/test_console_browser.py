"""The manager's console in a real browser: signing in with password and one-time code, then
working the review queue at 1366 px. Screenshots go to var/screenshots/console-*.png."""

from urllib.parse import urlsplit

import pytest
from django_otp.oath import totp
from playwright.sync_api import Browser, BrowserContext, Page, expect

from affiliates.demo import DEMO_PASSWORD, DEMO_TOTP_KEY
from affiliates.models import Affiliate, AuditEvent, TrackingLink
from attribution.models import Conversion

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"width": 1366, "height": 768}


def manager_context(browser: Browser, base_url: str) -> BrowserContext:
    context = browser.new_context(base_url=base_url, viewport=LAPTOP)
    context.set_default_timeout(15_000)
    return context


def manager_log_in(page: Page) -> None:
    """The admin's own login form: password and the authenticator's current code (the form
    lists the manager's devices once it knows who is signing in)."""
    page.goto("/admin/")
    for _ in range(2):
        page.fill('input[name="username"]', "manager")
        page.fill('input[name="password"]', DEMO_PASSWORD)
        device = page.locator('select[name="otp_device"] option', has_text="demo authenticator")
        if device.count():
            page.select_option('select[name="otp_device"]', label="demo authenticator")
        if page.locator('input[name="otp_token"]').count():
            page.fill('input[name="otp_token"]', f"{totp(bytes.fromhex(DEMO_TOTP_KEY)):06d}")
        with page.expect_navigation():
            page.click('input[type="submit"]')
        if urlsplit(page.url).path == "/admin/":
            return
    raise AssertionError(page.locator("#content").inner_text())


def right_edge(page: Page, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"]


def test_a_manager_approves_a_held_conversion_from_the_queue(
    demo, live_server, browser, screenshots
):
    # given: the demo's default policy held its click-injection installs for review
    held = Conversion.objects.filter(status="pending").order_by("-occurred_at")
    assert held.exists(), "the demo has no review queue"
    first = held.first()
    context = manager_context(browser, live_server.url)
    page = context.new_page()
    manager_log_in(page)

    # when: the manager opens the queue at 1366 px
    page.goto("/admin/attribution/conversion/?status=pending")
    # then: the status and reason columns are on the screen, not past its right edge
    for column in ("th.column-status", "th.column-reason_code", "th.column-ctit_seconds"):
        assert right_edge(page, column) <= LAPTOP["width"], column
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    expect(page.locator("#result_list tbody tr")).to_have_count(held.count())
    page.screenshot(path=str(screenshots / "console-review-queue.png"), full_page=True)

    # when: the manager opens the newest held conversion, reads the evidence, approves it
    page.click(f'#result_list a[href*="/conversion/{first.pk}/change/"] >> nth=0')
    expect(page.locator("#evidence")).to_contain_text("minimum click-to-install time 10 s")
    expect(page.locator('[data-field="ctit"]')).to_have_text("4 s")
    page.screenshot(path=str(screenshots / "console-review-evidence.png"), full_page=True)
    page.fill("#review textarea[name=note]", "MMP clock skew, real player")
    with page.expect_navigation():
        page.click('#review button[value="approve"]')

    # then: back on the queue, one fewer, and the decision is stored with its audit row
    expect(page.locator("ul.messagelist")).to_contain_text("approved")
    expect(page.locator("#result_list tbody tr")).to_have_count(held.count())
    first.refresh_from_db()
    assert (first.status, first.reason) == ("approved", "manager")
    audit = AuditEvent.objects.get(object_id=str(first.pk), field="status")
    assert audit.note == "MMP clock skew, real player"
    assert audit.actor.username == "manager"
    context.close()


def test_a_manager_views_as_an_affiliate_and_cannot_change_anything(
    demo, live_server, browser, screenshots
):
    alice = Affiliate.objects.get(user__username="alice")
    links_before = TrackingLink.objects.filter(affiliate=alice).count()
    context = manager_context(browser, live_server.url)
    page = context.new_page()
    manager_log_in(page)

    # the affiliate 360: stats, money, links, postbacks, notes, history
    page.goto(f"/admin/affiliates/affiliate/{alice.pk}/change/?period=last30")
    expect(page.locator("#affiliate-360")).to_contain_text("Earnings and balance")
    expect(page.locator('table[data-table="stats-360"]')).to_be_visible()
    page.screenshot(path=str(screenshots / "console-affiliate-360.png"), full_page=True)

    # when: the manager views the dashboard as alice
    with page.expect_navigation():
        page.click("#view-as-form button")
    # then: alice's dashboard, marked as a read-only view on every page
    assert urlsplit(page.url).path == "/dashboard/"
    expect(page.locator("#view-as-banner")).to_contain_text(f"Viewing as {alice.name}")
    expect(page.locator("header.topbar")).not_to_contain_text("API")
    page.screenshot(path=str(screenshots / "console-view-as-dashboard.png"), full_page=True)

    # when: the manager tries to create a link as alice, the form is refused
    page.goto("/dashboard/links/")
    expect(page.locator("#view-as-banner")).to_be_visible()
    page.select_option('main form select[name="campaign"]', index=1)
    page.fill('main form input[name="name"]', "made while viewing as")
    with page.expect_navigation():
        page.click('main form button[type="submit"]')
    expect(page.locator("main")).to_contain_text("Read-only")
    assert TrackingLink.objects.filter(affiliate=alice).count() == links_before
    page.screenshot(path=str(screenshots / "console-view-as-refused.png"), full_page=True)

    # when: the manager ends the view, back on alice's admin page; both ends are audited
    with page.expect_navigation():
        page.click("#view-as-banner button")
    assert urlsplit(page.url).path == f"/admin/affiliates/affiliate/{alice.pk}/change/"
    assert list(
        AuditEvent.objects.filter(field="view_as", object_id=str(alice.pk))
        .order_by("pk")
        .values_list("new", "actor__username")
    ) == [("viewing", "manager"), ("", "manager")]
    context.close()
