"""Ingestion over real sockets: concurrent repeats, and a broker outage that loses nothing."""

import json
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection

from attribution.models import Postback, PostbackEvent
from attribution.processing import work
from attribution.tasks import sweep_postbacks
from tests.factories import PostbackSourceFactory
from tests.processes import celery_worker, process_env, purge_queue, wait_until, web_server

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def fetch(url: str, body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if body:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def production_env(*, group_commit: bool = True, **overrides: str) -> dict[str, str]:
    """The web server as deployed: hand-off in batches by a thread, group commit on PostgreSQL."""
    grouped = group_commit and connection.vendor == "postgresql"
    return process_env(
        POSTBACK_HANDOFF="background",
        POSTBACK_GROUP_COMMIT="true" if grouped else "false",
        **overrides,
    )


@pytest.mark.parametrize(
    "group_commit", [pytest.param(True, marks=pytest.mark.postgres), False], ids=["group", "alone"]
)
def test_twenty_senders_repeating_the_same_fifty_postbacks_store_exactly_fifty(
    tmp_path, group_commit
):
    # given 50 distinct postbacks from the operator's backend, and gunicorn's gthread worker
    source = PostbackSourceFactory(kind="s2s")
    with web_server(tmp_path, env=production_env(group_commit=group_commit), threads=8) as base:
        urls = [
            f"{base}/postbacks/s2s/{source.token}/?click_id=c{n}&event=ftd&txid=tx-{n}"
            f"&amount=10.00&currency=EUR"
            for n in range(50)
        ]

        # when 20 threads post all 50 at the same moment
        def sender(offset: int) -> list[tuple[int, str]]:
            order = urls[offset:] + urls[:offset]  # each thread starts elsewhere: collisions
            return [(status, body.get("status")) for status, body in map(fetch, order)]

        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = [a for batch in pool.map(sender, range(0, 60, 3)) for a in batch]

    # then exactly 50 are stored, and every other answer is a 200 duplicate
    assert Counter(answers) == {(200, "accepted"): 50, (200, "duplicate"): 950}
    assert Postback.objects.count() == 50
    assert set(Postback.objects.values_list("dedup_key", flat=True)) == {
        f"s2s:tx-{n}" for n in range(50)
    }


@pytest.mark.worker
def test_postbacks_answered_by_the_server_reach_a_real_worker_in_batches(tmp_path):
    # given the web server as deployed and a worker
    purge_queue()
    source = PostbackSourceFactory(kind="s2s")
    with web_server(tmp_path, env=production_env(), threads=8) as base, celery_worker(tmp_path):
        # when 10 senders post 60 postbacks at once
        urls = [f"{base}/postbacks/s2s/{source.token}/?event=dep&txid=t{n}" for n in range(60)]
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(fetch, urls))

        # then each was stored, and the worker processed every one with no sweep
        assert {(status, body["status"]) for status, body in answers} == {(200, "accepted")}
        assert wait_until(
            lambda: Postback.objects.filter(status=Postback.Status.PROCESSED).count() == 60
        )
    assert PostbackEvent.objects.count() == 60


@pytest.mark.worker
def test_with_the_broker_down_postbacks_are_kept_and_the_sweep_processes_them(tmp_path, settings):
    # given a web server whose broker is unreachable
    source = PostbackSourceFactory(kind="s2s")
    dead_broker = production_env(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    with web_server(tmp_path, env=dead_broker) as base:
        # when postbacks arrive
        answers = [
            fetch(f"{base}/postbacks/s2s/{source.token}/?click_id=c{n}&event=dep&txid=t{n}")
            for n in range(20)
        ]
    # then each was answered 200 and stored, waiting for a worker
    assert {status for status, _ in answers} == {200}
    assert Postback.objects.filter(status=Postback.Status.RECEIVED).count() == 20

    # when the broker is back, the sweep re-queues them for a real worker
    purge_queue()
    settings.POSTBACK_SWEEP_GRACE_SECONDS = 0
    with celery_worker(tmp_path):
        assert sweep_postbacks() == 20
        assert wait_until(
            lambda: Postback.objects.filter(status=Postback.Status.PROCESSED).count() == 20
        )
    assert PostbackEvent.objects.count() == 20
    assert work.postbacks_waiting(older_than=timedelta(0), limit=99) == []
