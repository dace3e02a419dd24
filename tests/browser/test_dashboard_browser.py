"""The affiliate dashboard in a real browser: log in through the form, the summary's mobile and
web columns equal the stats API's figures for the same period, the period form, the CSV export,
the daily chart, screenshots (desktop and phone, no sideways scrolling on the phone), and one
affiliate never sees another's figures."""

import csv
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from rest_framework.authtoken.models import Token

from affiliates.demo import DEMO_PASSWORD
from affiliates.models import Affiliate
from attribution.rollups.reports import COUNTS, METRICS

from .conftest import CHART_JS_URL

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

# The summary's columns that are compared with the API: per platform, mobile (iOS + Android +
# SKAN) and the total. "monthly" (RevShare, tier top-ups) is compared too whenever the period has
# one.
COMPARED = ("ios", "android", "skan", "web", "mobile", "total")
COLUMN_HEADERS = {"ios": "iOS", "android": "Android", "skan": "SKAN (aggregated)", "web": "Web"}
COUNT_TEXT = re.compile(r"-?\d{1,3}(,\d{3})*")
MONEY_TEXT = re.compile(r"-?\d{1,3}(,\d{3})*\.\d{2}")
API_MONEY = re.compile(r"-?\d+\.\d{2}")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

Figures = dict[str, dict[str, Decimal]]

SUMMARY_CELLS = """() => {
  const out = {};
  const rows = document.querySelectorAll('table[data-table="summary"] tbody tr[data-metric]');
  for (const row of rows) {
    for (const cell of row.querySelectorAll('td[data-column]')) {
      (out[cell.dataset.column] = out[cell.dataset.column] || {})[row.dataset.metric] =
        cell.textContent.trim();
    }
  }
  return out;
}"""

DAILY_CELLS = """() => Array.from(document.querySelectorAll('table[data-table="daily"] tbody tr'))
  .map(row => [row.querySelector('[data-day]').dataset.day,
               ...Array.from(row.querySelectorAll('td.num'), cell => cell.textContent.trim())])"""

# Elements that stick out of the phone's viewport without a scrolling box to hold them.
OVERFLOW = """() => {
  const width = window.innerWidth, offenders = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.getBoundingClientRect().right <= width + 1) continue;
    let box = el.parentElement, held = false;
    for (; box && box !== document.body; box = box.parentElement) {
      if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(box).overflowX)) {
        held = true;
        break;
      }
    }
    if (!held) offenders.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (typeof el.className === 'string' && el.className.trim()
        ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
      ' right=' + Math.round(el.getBoundingClientRect().right));
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width,
          offenders: offenders.slice(0, 20)};
}"""

# Pixels the chart painted (not transparent): 0 means an empty canvas.
PAINTED = """() => {
  const canvas = document.getElementById('daily-chart');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
  return painted;
}"""


# --- reading the page and the API ---------------------------------------------------------------


def page_number(text: str, metric: str) -> Decimal:
    """A figure as the page shows it: thousands separators, money with two decimals."""
    shape = COUNT_TEXT if metric in COUNTS else MONEY_TEXT
    assert shape.fullmatch(text), f"{metric}: {text!r} is not formatted as a {shape.pattern}"
    return Decimal(text.replace(",", ""))


def page_summary(page: Page) -> Figures:
    cells = page.evaluate(SUMMARY_CELLS)
    return {
        column: {metric: page_number(text, metric) for metric, text in values.items()}
        for column, values in cells.items()
    }


def api_metrics(values: dict) -> dict[str, Decimal]:
    """One column of the API: counts are JSON integers, money strings with two decimals."""
    assert set(values) == set(METRICS), sorted(values)
    for metric in METRICS:
        value = values[metric]
        if metric in COUNTS:
            assert type(value) is int, f"{metric}: {value!r} is not an integer"
        else:
            assert isinstance(value, str), f"{metric}: {value!r} is not a string"
            assert API_MONEY.fullmatch(value), f"{metric}: {value!r}"
    return {metric: Decimal(str(values[metric])) for metric in METRICS}


def api_summary(stats: dict) -> Figures:
    figures = {column: api_metrics(values) for column, values in stats["columns"].items()}
    figures["mobile"] = api_metrics(stats["mobile"])
    figures["total"] = api_metrics(stats["totals"])
    return figures


def stats(page: Page, period: str) -> dict:
    """/api/v1/stats/ in the browser's context: the session cookie of whoever is logged in."""
    response = page.request.get(f"/api/v1/stats/?period={period}")
    assert response.status == 200, f"{response.status} {response.text()[:500]}"
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def shown_metrics(api: Figures) -> list[str]:
    """The page's rows: every metric, the in-app purchase revenue only where there is any."""
    return [m for m in METRICS if m != "revenue" or api["total"]["revenue"]]


def assert_same_figures(shown: Figures, api: Figures, *, what: str) -> None:
    metrics = shown_metrics(api)
    for column in COMPARED:
        assert column in shown, f"{what}: the page has no {column!r} column"
        assert set(shown[column]) == set(metrics), f"{what}: {column}: {sorted(shown[column])}"
        differences = {
            metric: (str(shown[column][metric]), str(api[column][metric]))
            for metric in metrics
            if shown[column][metric] != api[column][metric]
        }
        assert not differences, f"{what}: {column} (page, API): {differences}"
    # Monthly commission (RevShare, tier top-ups) appears on both or neither.
    assert ("monthly" in shown) == ("monthly" in api), what
    if "monthly" in api:
        assert {m: shown["monthly"][m] for m in metrics} == {
            m: api["monthly"][m] for m in metrics
        }, what


def heading_dates(period: dict) -> str:
    """The dates of the page's heading ("M j, Y", a range when the period has several days)."""
    start, end = date.fromisoformat(period["start"]), date.fromisoformat(period["end"])

    def day(d: date) -> str:
        return f"{MONTHS[d.month - 1]} {d.day}, {d.year}"

    return day(start) if start == end else f"{day(start)} \N{EN DASH} {day(end)}"


def heading(page: Page) -> str:
    return " ".join(page.locator("main h1").inner_text().split())


# --- acting as a user ---------------------------------------------------------------------------


def new_context(browser: Browser, base_url: str, **options) -> BrowserContext:
    context = browser.new_context(base_url=base_url, accept_downloads=True, **options)
    context.set_default_timeout(15_000)
    return context


def log_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    """The real login form: the dashboard sends an anonymous visitor there and back."""
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/dashboard/$"))
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    with page.expect_navigation():
        page.click('main form button[type="submit"]')
    assert urlsplit(page.url).path == "/dashboard/", page.url
    expect(page.locator('table[data-table="summary"]')).to_be_visible()


def show_period(page: Page, label: str, preset: str) -> None:
    """Pick a period in the filter form and submit it, as a user would."""
    page.select_option('#filters select[name="period"]', label=label)
    with page.expect_navigation():
        page.click('#filters button[type="submit"]')
    url = urlsplit(page.url)
    assert url.path == "/dashboard/"
    assert parse_qs(url.query)["period"] == [preset], page.url
    expect(page.locator('#filters select[name="period"]')).to_have_value(preset)


def check_summary_against_api(page: Page, preset: str, affiliate: Affiliate) -> dict:
    """The page's heading and summary (and KPIs, and the daily table) are the API's."""
    answer = stats(page, preset)
    assert answer["period"]["preset"] == preset
    assert answer["currency"] == affiliate.currency
    assert answer["time_zone"] == affiliate.time_zone
    assert heading(page) == (
        f"{heading_dates(answer['period'])} · {affiliate.time_zone} · {affiliate.currency}"
    )
    api = api_summary(answer)
    assert_same_figures(page_summary(page), api, what=f"{affiliate.name}, {preset}")
    for metric in ("clicks", "installs", "registrations", "ftds", "commission", "sub_commission"):
        kpi = page.locator(f'.kpi[data-metric="{metric}"] .value').inner_text().strip()
        assert page_number(kpi, metric) == api["total"][metric], metric
    days = page.evaluate(DAILY_CELLS)
    monthly = any(
        Decimal(d["monthly"]["commission"]) or Decimal(d["monthly"]["sub_commission"])
        for d in answer["daily"]
    )
    columns = [
        *(("mobile", m) for m in ("clicks", "installs", "registrations", "ftds", "commission")),
        *(("web", m) for m in ("clicks", "registrations", "ftds", "commission")),
    ]
    expected = [
        [
            d["day"],
            *(Decimal(str(d[part][m])) for part, m in columns),
            sum(Decimal(d[part]["sub_commission"]) for part in ("mobile", "web", "monthly")),
            *([Decimal(d["monthly"]["commission"])] if monthly else []),
        ]
        for d in answer["daily"]
    ]
    metrics = [m for _, m in columns] + ["sub_commission"] + (["commission"] if monthly else [])
    assert [
        [day, *(page_number(n, m) for n, m in zip(rest, metrics, strict=True))]
        for day, *rest in days
    ] == expected
    return answer


def check_chart(page: Page, days: int, chart_js: bool) -> None:
    """With Chart.js the daily chart is drawn, one bar group a day; without it there is no
    chart and no error, and the tables carry the figures."""
    if not chart_js:
        assert page.evaluate("typeof Chart") == "undefined"
        return
    page.wait_for_function(
        "() => typeof Chart !== 'undefined' && Chart.getChart('daily-chart') !== undefined"
    )
    labels = page.evaluate("Chart.getChart('daily-chart').data.labels.length")
    assert labels == days
    datasets = page.evaluate("Chart.getChart('daily-chart').data.datasets.map(d => d.label)")
    assert datasets == ["mobile installs", "mobile ftds", "web registrations", "web ftds"]
    assert page.evaluate(PAINTED) > 0, "the chart's canvas is blank"


def watch_errors(page: Page) -> list[str]:
    """Script errors and failed loads the page reports (the missing favicon aside)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"console: {msg.text} ({msg.location.get('url')})")
            if msg.type == "error" and not str(msg.location.get("url", "")).endswith("/favicon.ico")
            else None
        ),
    )
    return errors


def export_summary(page: Page, directory: Path) -> tuple[str, list[list[str]]]:
    with page.expect_download() as info:
        page.click('#summary a.export[href$="export=summary"]')
    download = info.value
    path = directory / download.suggested_filename
    download.save_as(path)
    with path.open(newline="", encoding="utf-8") as f:
        return download.suggested_filename, list(csv.reader(f))


# --- the tests ----------------------------------------------------------------------------------


def test_alice_sees_the_apis_figures_changes_the_period_exports_and_fits_a_phone(
    demo, live_server, browser, chart_js_served, screenshots, tmp_path
):
    alice = Affiliate.objects.get(user__username="alice")
    context = new_context(browser, live_server.url, viewport=DESKTOP)
    page = context.new_page()
    errors = watch_errors(page)

    log_in(page, "alice")
    # Mobile (per platform, then together) beside web, and the total.
    headers = page.locator('table[data-table="summary"] thead th')
    for column, label in COLUMN_HEADERS.items():
        expect(
            page.locator(f'table[data-table="summary"] th[data-column="{column}"]')
        ).to_have_text(label)
    expect(headers.filter(has_text=re.compile(r"^Mobile$"))).to_have_count(1)
    expect(headers.filter(has_text=re.compile(r"^Total$"))).to_have_count(1)
    for metric in METRICS:
        if metric == "revenue":
            continue  # only where there is any in-app purchase revenue
        row = page.locator(f'table[data-table="summary"] tr[data-metric="{metric}"]')
        for column in COMPARED:
            expect(row.locator(f'td[data-column="{column}"]')).to_be_visible()
    # Without a period the dashboard shows the last 7 days.
    check_summary_against_api(page, "last7", alice)

    show_period(page, "Last 30 days", "last30")
    last30 = check_summary_against_api(page, "last30", alice)
    assert last30["totals"]["clicks"] > 0 and last30["totals"]["installs"] > 0, last30["totals"]
    assert last30["totals"]["ftds"] > 0, "the demo should have given alice first deposits"
    # Chart.js is served whenever npm installed it (node_modules/chart.js), and draws.
    assert page.request.get(CHART_JS_URL).status == (200 if chart_js_served else 404)
    check_chart(page, 30, chart_js_served)

    # The summary's CSV: the same period, its Total row is the page's total column.
    name, rows = export_summary(page, tmp_path)
    assert name == f"summary_{last30['period']['start']}_{last30['period']['end']}.csv"
    header, *body = rows
    assert header == ["", *METRICS]
    by_label = {row[0]: row[1:] for row in body}
    shown = page_summary(page)  # (no in-app purchase revenue row when there is none: 0 in CSV)
    total = {m: shown["total"].get(m, Decimal(0)) for m in METRICS}
    assert by_label["Total"] == [
        str(int(total[m])) if m in COUNTS else f"{total[m]:.2f}" for m in METRICS
    ]
    for column, label in COLUMN_HEADERS.items():
        assert [Decimal(v) for v in by_label[label]] == [
            shown[column].get(m, Decimal(0)) for m in METRICS
        ]

    page.screenshot(path=str(screenshots / "dashboard-desktop.png"), full_page=True)

    # The same page on a phone: the tables scroll inside their cards, the page does not.
    phone = new_context(
        browser,
        live_server.url,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        storage_state=context.storage_state(),
    )
    small = phone.new_page()
    small.goto(page.url)
    expect(small.locator('table[data-table="summary"]')).to_be_visible()
    assert_same_figures(page_summary(small), api_summary(last30), what="phone, last30")
    if chart_js_served:
        small.wait_for_function("() => Chart.getChart('daily-chart') !== undefined")
    small.screenshot(path=str(screenshots / "dashboard-phone.png"), full_page=True)
    layout = small.evaluate(OVERFLOW)
    assert layout["innerWidth"] == PHONE["width"], layout
    assert layout["scrollWidth"] <= PHONE["width"] + 1, layout
    phone.close()

    # Another period through the form: the URL, the heading and the figures follow.
    show_period(page, "Yesterday", "yesterday")
    yesterday = check_summary_against_api(page, "yesterday", alice)
    assert yesterday["period"]["start"] == yesterday["period"]["end"]
    assert heading(page).startswith(heading_dates(yesterday["period"]) + " ·")
    assert yesterday["totals"]["clicks"] < last30["totals"]["clicks"]
    name, rows = export_summary(page, tmp_path)
    assert name == f"summary_{yesterday['period']['start']}_{yesterday['period']['end']}.csv"
    assert rows[-1][0] == "Total"
    shown = page_summary(page)["total"]
    assert [Decimal(v) for v in rows[-1][1:]] == [shown.get(m, Decimal(0)) for m in METRICS]

    assert not errors, errors
    context.close()


def test_charlie_sees_his_own_figures_never_alices(demo, live_server, browser):
    alice = Affiliate.objects.get(user__username="alice")
    charlie = Affiliate.objects.get(user__username="charlie")
    token = Token.objects.create(user=alice.user)
    context = new_context(browser, live_server.url, viewport=DESKTOP)
    # Charlie's browser cannot load Chart.js (as without node_modules/chart.js): no chart, no
    # script error, the same figures.
    context.route("**/static/vendor/chartjs/**", lambda route: route.abort())
    page = context.new_page()
    errors = watch_errors(page)

    log_in(page, "charlie")
    show_period(page, "Last 30 days", "last30")
    mine = check_summary_against_api(page, "last30", charlie)
    check_chart(page, 30, chart_js=False)
    assert [e for e in errors if "chartjs" not in e] == []
    content = page.content()
    assert alice.name not in content
    assert "Europe/Berlin" not in content

    # Alice's figures for the same days, through her API token (no cookie in this context).
    anonymous = browser.new_context(base_url=live_server.url)
    response = anonymous.request.get(
        "/api/v1/stats/?period=last30", headers={"Authorization": f"Token {token.key}"}
    )
    assert response.status == 200, response.text()[:500]
    hers = response.json()
    anonymous.close()
    assert hers["currency"] == "EUR" and mine["currency"] == "USD"
    assert hers["totals"] != mine["totals"]
    assert hers["totals"]["clicks"] > 0
    shown = page_summary(page)["total"]
    assert shown["clicks"] != hers["totals"]["clicks"]

    # Asking for alice's figures by id gets charlie nothing.
    peek = page.request.get(f"/api/v1/stats/?period=last30&affiliate={alice.pk}")
    assert peek.status == 404, peek.text()[:500]
    context.close()


def test_the_filter_form_says_what_the_page_shows(settings, alice, live_server, browser):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    alice.user.set_password(DEMO_PASSWORD)
    alice.user.save(update_fields=["password"])
    context = new_context(browser, live_server.url, viewport=DESKTOP)
    page = context.new_page()
    log_in(page, "alice")
    week = stats(page, "last7")["period"]
    assert heading(page).startswith(heading_dates(week) + " ·")
    labels = [
        text.split("\n")[0].strip() for text in page.locator("#filters label").all_inner_texts()
    ]
    try:
        assert page.input_value('#filters select[name="period"]') == "last7"
        assert not [label for label in labels if "invalid" in label], labels
    finally:
        context.close()
