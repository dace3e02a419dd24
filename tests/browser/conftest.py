"""Browser tests: Debian's Chromium driven by Playwright's sync API against ``live_server``.

Never ``playwright install``: the browser is the system's /usr/bin/chromium. Without it the
tests skip on a laptop and fail in CI (``CI`` set), where a missing browser is a broken image.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client, override_settings

from affiliates.demo import DemoProgram, seed_demo

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
CHART_JS_URL = "/static/vendor/chartjs/chart.umd.min.js"
CHART_JS_FILE = ROOT / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"
SCREENSHOTS = ROOT / "var" / "screenshots"


@pytest.fixture(scope="session")
def static_root(tmp_path_factory) -> Iterator[Path]:
    """``collectstatic`` into a fresh STATIC_ROOT (the suite runs with DEBUG off, like production,
    where WhiteNoise serves only what was collected). A temporary folder, so that a run never
    rewrites var/staticfiles under another process's feet."""
    root = tmp_path_factory.mktemp("staticfiles")
    with override_settings(STATIC_ROOT=str(root)):
        call_command("collectstatic", "--noinput", verbosity=0)
        yield root


@pytest.fixture(scope="session")
def chart_js_served(static_root) -> bool:
    """Whether Chart.js is there to draw (npm's chart.js under node_modules, which `make`
    installs); checks that WhiteNoise serves the collected file whenever it is."""
    present = CHART_JS_FILE.is_file()
    assert (static_root / "vendor" / "chartjs" / "chart.umd.min.js").is_file() == present
    # A test client's handler loads the middleware afresh: WhiteNoise scans this STATIC_ROOT.
    response = Client().get(CHART_JS_URL)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    response.close()
    if present:
        assert response.status_code == 200, f"WhiteNoise does not serve {CHART_JS_URL}"
        assert body == CHART_JS_FILE.read_bytes()
    else:
        assert response.status_code == 404
    return present


@pytest.fixture
def demo(settings) -> DemoProgram:
    """The demo program (alice, bob, charlie... password "demo-portal-2026"), small enough to be
    quick: postbacks go through the real ingestion and attribution code, in this thread (the
    seed hands no task to a worker)."""
    # Hashing the demo users' passwords with PBKDF2 would be most of the runtime.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return seed_demo(clicks=400, days=20)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, or a skip (a laptop without it) or a failure (CI)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: the CI image must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); set CI to make it fail")
    return CHROMIUM


@pytest.fixture
def browser(chromium, monkeypatch):
    """Chromium for one test.

    Playwright's sync API marks an asyncio loop as running in this thread while it lives. Django
    then takes the thread for async: its ORM calls need DJANGO_ALLOW_ASYNC_UNSAFE, and they get
    database connections of their own (asgiref keeps a running loop's connections apart from the
    thread's), which must be closed before the driver stops: afterwards nothing can reach them,
    and PostgreSQL refuses to drop the test database while they are open."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()
            connections.close_all()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
