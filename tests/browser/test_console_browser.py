"""The manager's console in a real browser: signing in with password and one-time code, then
working the review queue at 1366 px. Screenshots go to var/screenshots/console-*.png."""

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import timezone
from django_otp.oath import totp
from playwright.sync_api import Browser, BrowserContext, Page, expect

from affiliates.demo import DEMO_PASSWORD, DEMO_TOTP_KEY
from affiliates.models import Affiliate, AuditEvent, TrackingLink
from attribution.models import Conversion
from payouts.models import PayoutRun
from portal.celery import app

from .test_dashboard_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

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


@pytest.fixture
def eager_tasks():
    """Tasks published from the live server's requests run there (no worker in these tests)."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


def test_a_manager_creates_and_approves_a_payout_run_and_sees_its_totals(
    demo, live_server, browser, screenshots, eager_tasks
):
    today = timezone.now().date()
    start = today - timedelta(days=40)
    context = manager_context(browser, live_server.url)
    page = context.new_page()
    manager_log_in(page)

    # when: a reversed period is typed, the form says so (no 500)
    page.goto("/admin/payouts/payoutrun/add/")
    page.fill("#id_period_start", str(today))
    page.fill("#id_period_end", str(start))
    with page.expect_navigation():
        page.click('input[name="_save"]')
    expect(page.locator(".errornote, .errorlist").first).to_be_visible()
    expect(page.locator("#content")).to_contain_text("before it starts")

    # when: the right period; the demo's RevShare months are open, so it asks to confirm
    page.fill("#id_period_start", str(start))
    page.fill("#id_period_end", str(today))
    with page.expect_navigation():
        page.click('input[name="_save"]')
    expect(page.locator("#content")).to_contain_text("RevShare is not closed")
    page.screenshot(path=str(screenshots / "console-payout-run-confirm.png"), full_page=True)
    page.check("#id_confirm_open_months")
    with page.expect_navigation():
        page.click('input[name="_save"]')
    run = PayoutRun.objects.get()
    assert run.status == "draft", run.status

    # then: the run's page lists its payouts and totals per currency
    page.goto(f"/admin/payouts/payoutrun/{run.pk}/change/")
    expect(page.locator("#run-summary")).to_be_visible()
    expected = {}
    for payout in run.payouts.all():
        expected[payout.currency] = expected.get(payout.currency, Decimal(0)) + payout.amount
    assert expected, "the demo run made no payouts"
    for currency, total in expected.items():
        cell = page.locator(
            f'table[data-table="totals"] tr[data-currency="{currency}"] td[data-total]'
        )
        expect(cell).to_have_text(f"{total:,.2f}")
    expect(page.locator('table[data-table="payouts"] tbody tr')).to_have_count(run.payouts.count())
    page.screenshot(path=str(screenshots / "console-payout-run.png"), full_page=True)

    # when: the manager approves it
    with page.expect_navigation():
        page.click("#approve-run")
    expect(page.locator("ul.messagelist")).to_contain_text("approved")
    run.refresh_from_db()
    assert run.status == "approved"
    assert set(run.payouts.values_list("status", flat=True)) == {"approved"}
    context.close()


def test_an_announcement_reaches_an_affiliates_bell_and_inbox(
    demo, live_server, browser, screenshots, eager_tasks
):
    mail.outbox.clear()
    context = manager_context(browser, live_server.url)
    page = context.new_page()
    manager_log_in(page)

    # when: the manager posts an announcement to every active affiliate
    page.goto("/admin/affiliates/announcement/add/")
    page.fill("#id_title", "Double CPA all December")
    page.fill("#id_body", "Every FTD pays twice this month.")
    page.select_option("#id_segment", "all")
    with page.expect_navigation():
        page.click('input[name="_save"]')
    expect(page.locator("ul.messagelist")).to_contain_text("Sent to")
    context.close()

    # then: alice's bell counts it and her inbox shows it; the email went out too
    alice = browser.new_context(base_url=live_server.url, viewport=LAPTOP)
    alice.set_default_timeout(15_000)
    mine = alice.new_page()
    log_in(mine, "alice")
    expect(mine.locator("#bell [data-unread]")).to_have_text("1")
    with mine.expect_navigation():
        mine.click("#bell")
    expect(mine.locator("#inbox")).to_contain_text("Double CPA all December")
    expect(mine.locator("#inbox")).to_contain_text("Every FTD pays twice this month.")
    mine.screenshot(path=str(screenshots / "console-announcement-inbox.png"), full_page=True)
    assert any(
        m.to == ["alice@demo.example"] and m.subject == "Double CPA all December"
        for m in mail.outbox
    )
    alice.close()


def test_the_overview_shows_money_alerts_and_a_chart(
    demo, live_server, browser, screenshots, chart_js_served
):
    context = manager_context(browser, live_server.url)
    page = context.new_page()
    manager_log_in(page)
    page.goto("/admin/overview/?period=last30&time_zone=Europe/Berlin")
    for metric in ("commission", "margin", "revenue", "ftds"):
        expect(page.locator(f'tr[data-metric="{metric}"] td[data-total]')).to_be_visible()
    expect(page.locator("#alerts")).to_contain_text("review queue")
    expect(page.locator("#content")).to_contain_text("Europe/Berlin")
    if chart_js_served:
        page.wait_for_function("() => Chart.getChart('overview-chart') !== undefined")
        painted = page.evaluate(
            """() => { const c = document.getElementById('overview-chart');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
        )
        assert painted > 0
    page.screenshot(path=str(screenshots / "console-overview.png"), full_page=True)
    context.close()
