"""Outbound postbacks cannot stall anything: an overall deadline per delivery, every failure
counted towards retry and switch-off, caps on URLs and on waiting deliveries, a test button that
cannot flood, and (live) a queue and workers of their own.

Receivers are real local servers that misbehave the ways affiliates' servers do: one trickles its
answer a byte at a time, one answers something that is not HTTP.
"""

import socket
import threading
import time
import urllib.request
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from attribution.models import Click, Conversion, OutboundDelivery, OutboundEndpoint, Postback
from attribution.outbound import deliver, safe_http, schedule
from tests.attribution.test_crediting import T0, click
from tests.factories import ConversionFactory
from tests.payouts.helpers import plan
from tests.processes import celery_worker, process_env, purge_queue, wait_until, web_server

pytestmark = pytest.mark.django_db


class BadReceiver:
    """A TCP server that reads the request, then misbehaves as ``mode`` says:
    "trickle" (a byte of an endless reply every 0.2 s), "garbage" (not HTTP), "silent"."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.hits = 0
        self.paths: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = conn.recv(65536)
                self.hits += 1
                self.paths.append(request.split(b" ", 2)[1].decode("latin-1"))
                if self.mode == "garbage":
                    conn.sendall(b"\x00\xffthis is not HTTP at all\r\n\r\n")
                elif self.mode == "trickle":
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not self.stopped.is_set():
                        conn.sendall(b"X")
                        time.sleep(0.2)
                else:
                    self.stopped.wait(60)
            except OSError:
                return

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def receivers(settings):
    settings.OUTBOUND_ALLOW_NETWORKS = ["127.0.0.1/32"]
    made = {mode: BadReceiver(mode) for mode in ("trickle", "garbage", "silent")}
    yield made
    for receiver in made.values():
        receiver.close()


@pytest.fixture
def no_publish(monkeypatch):
    """Publishing is the broker's business: here the published tasks are only counted."""
    published = []
    monkeypatch.setattr(deliver.queue, "publish", lambda name, *args, **kw: published.append(args))
    return published


def _endpoint(alice, url: str, **extra) -> OutboundEndpoint:
    return OutboundEndpoint.objects.create(affiliate=alice, url_template=url + "/pb", **extra)


# --- the deadline and failure counting ----------------------------------------------------------


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_deadline(receivers, alice, settings):
    # given a per-read timeout the trickle never trips, and a 1.5 s deadline
    settings.OUTBOUND_TIMEOUT_SECONDS = 5
    settings.OUTBOUND_DEADLINE_SECONDS = 1.5
    endpoint = _endpoint(alice, receivers["trickle"].url)

    started = time.monotonic()
    result = deliver.outbound_send(
        endpoint_id=endpoint.pk, conversion_id=ConversionFactory(affiliate=alice).pk,
        event="approved", attempt=1,
    )  # fmt: skip
    took = time.monotonic() - started

    assert result == "retry"
    assert took < 3
    delivery = OutboundDelivery.objects.get()
    assert delivery.error.startswith("deadline:")
    assert (delivery.finished, delivery.succeeded) == (True, False)


def test_the_deadline_covers_a_receiver_that_never_answers(receivers, alice, settings):
    settings.OUTBOUND_TIMEOUT_SECONDS = 30
    settings.OUTBOUND_DEADLINE_SECONDS = 1

    started = time.monotonic()
    with pytest.raises(safe_http.DeadlineExceeded):
        safe_http.request(
            "GET",
            receivers["silent"].url + "/",
            timeout=30,
            deadline=1,
            allow=[safe_http.ipaddress.ip_network("127.0.0.1/32")],
        )
    assert time.monotonic() - started < 2.5


def test_a_reply_that_is_not_http_is_a_counted_failure_and_switches_off(receivers, alice, settings):
    # given an endpoint one failure away from being switched off
    settings.OUTBOUND_MAX_ATTEMPTS = 1
    settings.OUTBOUND_DISABLE_AFTER = 2
    endpoint = _endpoint(alice, receivers["garbage"].url, consecutive_failures=1)

    # when a delivery meets the garbage reply
    result = deliver.outbound_send(
        endpoint_id=endpoint.pk, conversion_id=ConversionFactory(affiliate=alice).pk,
        event="approved", attempt=1,
    )  # fmt: skip

    # then it is a failure like any other: logged, counted, and the endpoint switched off
    assert result == "disabled"
    delivery = OutboundDelivery.objects.get()
    assert delivery.error and not delivery.succeeded
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.consecutive_failures) == (False, 2)
    assert "switched off after 2 failed deliveries" in endpoint.disabled_reason


def test_a_reply_that_is_not_http_is_retried(receivers, alice, settings):
    settings.OUTBOUND_MAX_ATTEMPTS = 5
    endpoint = _endpoint(alice, receivers["garbage"].url)

    result = deliver.outbound_send(
        endpoint_id=endpoint.pk, conversion_id=ConversionFactory(affiliate=alice).pk,
        event="approved", attempt=1,
    )  # fmt: skip

    assert result == "retry"


@pytest.mark.parametrize("path", ["/post back?x=a b", "/pöstback?ü=1"])
def test_a_url_with_spaces_or_non_ascii_is_called_encoded_not_crashed_on(receivers, alice, path):
    # given an endpoint stored before the form refused such URLs
    endpoint = OutboundEndpoint.objects.create(
        affiliate=alice, url_template=receivers["garbage"].url + path
    )

    deliver.outbound_send(
        endpoint_id=endpoint.pk, conversion_id=ConversionFactory(affiliate=alice).pk,
        event="approved", attempt=1,
    )  # fmt: skip

    sent = receivers["garbage"].paths[0]
    assert " " not in sent and sent.isascii()
    assert OutboundDelivery.objects.get().url.isascii()


def test_the_postback_form_refuses_spaces_and_more_than_the_cap(client, alice, settings):
    settings.OUTBOUND_MAX_ENDPOINTS = 2
    client.force_login(alice.user)
    page = reverse("affiliate-postbacks")

    spaced = client.post(page, {"url_template": "https://t.example/p?a=b c", "method": "GET"})
    first = client.post(page, {"url_template": "https://t.example/1", "method": "GET"})
    second = client.post(page, {"url_template": "https://t.example/2", "method": "GET"})
    third = client.post(page, {"url_template": "https://t.example/3", "method": "GET"})

    assert b"no spaces" in spaced.content
    assert (first.status_code, second.status_code) == (302, 302)
    assert third.status_code == 200
    assert b"up to 2 postback URLs" in third.content
    assert alice.outbound_endpoints.count() == 2


def test_only_the_first_urls_up_to_the_cap_are_called(alice, settings, no_publish):
    settings.OUTBOUND_MAX_ENDPOINTS = 3
    OutboundEndpoint.objects.bulk_create(  # made before the cap
        [OutboundEndpoint(affiliate=alice, url_template=f"https://t.example/{n}") for n in range(8)]
    )
    conversion = ConversionFactory(affiliate=alice)

    assert deliver.dispatch(conversion_id=conversion.pk, event="approved") == 3
    assert len(no_publish) == 3


# --- the queue cap and the test button ----------------------------------------------------------


def test_no_more_than_the_cap_wait_for_one_url(alice, settings, no_publish, receivers):
    settings.OUTBOUND_MAX_QUEUED = 2
    endpoint = _endpoint(alice, receivers["garbage"].url)
    conversions = [ConversionFactory(affiliate=alice) for _ in range(3)]

    sent = [deliver.dispatch(conversion_id=c.pk, event="approved") for c in conversions]

    # the third is not queued: it is logged as a failure and counted
    assert sent == [1, 1, 0]
    endpoint.refresh_from_db()
    assert (endpoint.queued, endpoint.consecutive_failures) == (2, 1)
    refused = OutboundDelivery.objects.get(conversion=conversions[2])
    assert "already wait for this URL" in refused.error

    # once a worker starts one, there is room again
    deliver.outbound_send(
        endpoint_id=endpoint.pk, conversion_id=conversions[0].pk, event="approved", attempt=1
    )
    endpoint.refresh_from_db()
    assert endpoint.queued == 1
    assert deliver.enqueue(
        endpoint_id=endpoint.pk, conversion_id=conversions[2].pk, event="approved", attempt=2
    )


def test_a_count_left_by_lost_tasks_does_not_block_a_url_for_ever(alice, settings, no_publish):
    settings.OUTBOUND_MAX_QUEUED = 2
    stale = timezone.now() - timedelta(seconds=settings.OUTBOUND_QUEUED_STALE_SECONDS + 1)
    endpoint = _endpoint(alice, "https://t.example", queued=2)
    OutboundEndpoint.objects.filter(pk=endpoint.pk).update(queued_at=stale)

    assert deliver.enqueue(endpoint_id=endpoint.pk, conversion_id=None, event="test", attempt=1)
    endpoint.refresh_from_db()
    assert endpoint.queued == 1


def test_the_test_button_cannot_flood(client, alice, no_publish, receivers):
    endpoint = _endpoint(alice, receivers["garbage"].url)
    client.force_login(alice.user)
    press = reverse("affiliate-postback-test", args=[endpoint.pk])

    answers = [client.post(press, follow=True) for _ in range(5)]

    assert len(no_publish) == 1
    assert b"on its way" in answers[0].content
    assert all(b"under way for this URL" in a.content for a in answers[1:])

    # and after the test ran, the next is refused until the interval has passed
    deliver.outbound_send(endpoint_id=endpoint.pk, conversion_id=None, event="test", attempt=1)
    assert schedule.outbound_test(endpoint=endpoint).startswith("A test")
    OutboundDelivery.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert schedule.outbound_test(endpoint=endpoint) == ""
    assert len(no_publish) == 2


# --- live: attribution never waits on an affiliate's receiver -----------------------------------


@pytest.mark.worker
@pytest.mark.live
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_slow_and_broken_receivers_do_not_delay_attribution(
    client, tmp_path, alice, campaign, s2s, receivers
):
    # given alice's postback URLs on a trickling and a broken receiver, the attribution and the
    # outbound workers on their own queues, and gunicorn taking postbacks
    purge_queue()
    plan(campaign, cpa={"registration": "1.00"})
    for mode in ("trickle", "silent", "garbage"):
        _endpoint(alice, receivers[mode].url)
    made = click(client, alice, campaign, at=T0)
    Click.objects.filter(pk=made.pk).update(platform="web")
    env = process_env(
        OUTBOUND_ALLOW_NETWORKS="127.0.0.1/32",
        OUTBOUND_DEADLINE_SECONDS="6",
        OUTBOUND_TIMEOUT_SECONDS="30",
        OUTBOUND_MAX_QUEUED="5",
        POSTBACK_GROUP_COMMIT="false",
    )
    with (
        celery_worker(tmp_path, concurrency=1, env=env, queues="celery"),
        celery_worker(tmp_path, concurrency=2, env=env, queues="outbound"),
        web_server(tmp_path, env=env) as base,
    ):
        # when registrations arrive, each sending alice three postbacks that hang
        def send(n: int) -> int:
            query = urlencode({"event": "reg", "txid": f"r{n}", "click_id": made.click_id})
            with urllib.request.urlopen(f"{base}/postbacks/s2s/{s2s.token}/?{query}") as r:
                return r.status

        assert send(0) == 200
        # the outbound workers are now busy with hanging deliveries
        assert wait_until(
            lambda: receivers["trickle"].hits + receivers["silent"].hits >= 2, timeout=20
        )
        started = time.monotonic()
        assert [send(n) for n in range(1, 21)] == [200] * 20

        # then every registration is attributed while the deliveries still hang
        assert wait_until(
            lambda: Postback.objects.filter(status=Postback.Status.PROCESSED).count() == 21,
            timeout=20,
        )
        attributed_in = time.monotonic() - started
        hanging = OutboundDelivery.objects.filter(finished=False).count()
        assert attributed_in < 6, attributed_in
        assert hanging >= 1
        assert Conversion.objects.filter(affiliate=alice, status="approved").count() == 21

        # and a hanging delivery ends at its deadline, as a counted failure
        assert wait_until(
            lambda: OutboundDelivery.objects.filter(error__startswith="deadline:").exists(),
            timeout=30,
        )
    assert not OutboundDelivery.objects.filter(succeeded=True).exists()
    purge_queue()
