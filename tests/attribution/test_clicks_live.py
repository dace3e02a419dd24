"""The click redirect over real sockets, as deployed: gunicorn (gunicorn.conf.py), PostgreSQL,
group commit. Every 302 that was sent is a stored click, even when the server is killed."""

import http.client
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest

from affiliates.models import Campaign
from attribution.models import Click
from tests.factories import TrackingLinkFactory
from tests.processes import gunicorn, process_env

pytestmark = [pytest.mark.live, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
PREVIEWER = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"


def production_env(**overrides: str) -> dict[str, str]:
    return process_env(CLICK_GROUP_COMMIT="true", CLICK_WRITE="sync", **overrides)


def click(base: str, path: str, *, method: str = "GET", user_agent: str = BROWSER):
    """(status, click id in the Location or "") of one request, redirects not followed."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(method, path, headers={"User-Agent": user_agent})
        response = conn.getresponse()
        response.read()
        location = response.getheader("Location", "")
    finally:
        conn.close()
    return response.status, parse_qs(urlsplit(location).query).get("cid", [""])[0]


def test_concurrent_clicks_each_store_their_click_id_exactly_once(tmp_path, alice):
    # given the web server as deployed and a link
    link = TrackingLinkFactory(affiliate=alice)
    path = f"/c/{link.code}"
    with gunicorn(tmp_path, env=production_env(), workers=2, threads=8) as (base, _):
        # when 16 visitors click 40 times each, while a previewer and HEAD requests come too
        def visitor(n: int) -> list[tuple[int, str]]:
            return [click(base, f"{path}?sub1=v{n}") for _ in range(40)]

        def noise(n: int) -> list[tuple[int, str]]:
            return [click(base, path, user_agent=PREVIEWER) for _ in range(10)] + [
                click(base, path, method="HEAD") for _ in range(10)
            ]

        with ThreadPoolExecutor(max_workers=18) as pool:
            visits = [pool.submit(visitor, n) for n in range(16)]
            others = [pool.submit(noise, n) for n in range(2)]
            answers = [a for f in visits for a in f.result()]
            skipped = [a for f in others for a in f.result()]

    # then every visit was a 302 with its own click id, each stored once, and nothing else was
    assert {status for status, _ in answers + skipped} == {302}
    ids = [click_id for _, click_id in answers]
    assert len(set(ids)) == len(ids) == 640
    stored = list(Click.objects.values_list("click_id", flat=True))
    assert sorted(stored) == sorted(ids)
    assert {cid for _, cid in skipped} == {""}


def test_killing_the_server_mid_load_loses_no_click_whose_302_was_sent(tmp_path, alice):
    # given the web server as deployed, under load from 12 visitors
    link = TrackingLinkFactory(affiliate=alice)
    acknowledged: list[str] = []
    failed = threading.Event()
    with gunicorn(tmp_path, env=production_env(), workers=2, threads=8) as (base, server):

        def visitor() -> None:
            for _ in range(2000):  # bounded; the kill ends it far sooner
                try:
                    status, click_id = click(base, f"/c/{link.code}")
                except (OSError, http.client.HTTPException):
                    failed.set()
                    return
                if status == 302:
                    acknowledged.append(click_id)

        threads = [threading.Thread(target=visitor) for _ in range(12)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)

        # when the whole server (arbiter and workers) is killed outright, mid-load
        os.killpg(server.pid, signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=60)

    # then every click whose 302 was sent is stored
    assert failed.is_set()
    assert len(acknowledged) >= 300
    stored = set(Click.objects.values_list("click_id", flat=True))
    assert set(acknowledged) <= stored
    # (a click stored whose 302 the visitor never got may exist: stored, not acknowledged)


def test_a_paused_campaign_stops_sending_traffic_within_the_window(tmp_path, alice):
    # given a server keeping links for one second, busy with a link on both of its workers
    link = TrackingLinkFactory(affiliate=alice)
    path = f"/c/{link.code}"
    window = 1.0
    env = production_env(CLICK_LINK_CACHE_SECONDS=str(window))
    with gunicorn(tmp_path, env=env, workers=2, threads=4) as (base, _):
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(lambda _: click(base, path)[0], range(40))) == {302}

        # when a manager pauses the campaign (in another process: this one)
        campaign = Campaign.objects.get(pk=link.campaign_id)
        campaign.status = Campaign.Status.PAUSED
        campaign.save(update_fields=["status"])
        paused_at = time.monotonic()

        # then within the window every request is a 404 and records nothing
        answers = []
        while time.monotonic() - paused_at < window + 1.5:
            started = time.monotonic() - paused_at
            answers.append((started, click(base, path)[0]))
    late = [status for started, status in answers if started > window + 0.2]
    assert late and set(late) == {404}
    redirected_after_pause = sum(1 for _, status in answers if status == 302)
    assert Click.objects.count() == 40 + redirected_after_pause
