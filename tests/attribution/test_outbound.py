"""Outbound postbacks to a real local HTTP receiver, and the guard against calling inward."""

import hashlib
import hmac
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from attribution.models import OutboundDelivery, OutboundEndpoint
from attribution.outbound import deliver, safe_http
from attribution.processing import amend
from attribution.tasks import dispatch_outbound, send_outbound
from tests.attribution.test_crediting import T0, af_install, click

pytestmark = pytest.mark.django_db


class Receiver:
    """An affiliate's tracker: records what it is sent, answers what the test asks."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok thanks")

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOW_NETWORKS = ["127.0.0.1/32"]
    settings.OUTBOUND_BACKOFF_SECONDS = 0
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def eager():
    """Celery tasks run where they are sent, so fan-out and retries happen inside the test."""
    from portal.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def endpoint(alice, receiver):
    return OutboundEndpoint.objects.create(
        affiliate=alice,
        url_template=receiver.url + "/pb?cid={sub1}&our={click_id}&e={event}&p={payout}"
        "&cur={currency}&rev={revenue}&c={conversion_id}&s={status}&t={timestamp}",
        secret="s3cret",
        send_on_reversal=True,
    )


def _approved(client, alice, campaign, appsflyer, sub1="their id&x=1"):
    made = click(client, alice, campaign, at=T0, sub1=sub1)
    return af_install(client, appsflyer, at=T0 + timedelta(hours=1), click_id=made.click_id)


def test_an_approved_conversion_is_posted_with_macros_filled_and_encoded(
    client, alice, campaign, appsflyer, endpoint, receiver, django_capture_on_commit_callbacks
):
    from tests.payouts.helpers import plan

    plan(campaign, cpa={"install": "2.50"})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        conversion = _approved(client, alice, campaign, appsflyer)
    assert callbacks  # the send waits for the commit

    assert (
        deliver.outbound_send(
            endpoint_id=endpoint.pk, conversion_id=conversion.pk, event="approved", attempt=1
        )
        == "sent"
    )

    sent = receiver.requests[0]
    query = parse_qs(urlsplit(sent["path"]).query)
    assert query["cid"] == ["their id&x=1"]  # the affiliate's own id, encoded
    assert query["our"] == [conversion.click.click_id]
    assert (query["e"], query["p"], query["cur"], query["s"]) == (
        ["install"],
        ["2.50"],
        ["EUR"],
        ["approved"],
    )
    assert query["c"] == [str(conversion.pk)]
    assert "cid=their%20id%26x%3D1" in sent["path"]
    # the signature verifies with the endpoint's secret
    url = receiver.url + sent["path"]
    expected = "sha256=" + hmac.new(b"s3cret", url.encode(), hashlib.sha256).hexdigest()
    assert sent["headers"]["X-Signature"] == expected
    log = OutboundDelivery.objects.get()
    assert (log.status_code, log.succeeded, log.attempt, log.response_snippet) == (
        200,
        True,
        1,
        "ok thanks",
    )
    assert log.latency_ms is not None and log.url == url


def test_a_conversion_already_delivered_is_never_sent_again(
    client, alice, campaign, appsflyer, endpoint, receiver
):
    conversion = _approved(client, alice, campaign, appsflyer)
    for _ in range(3):
        send_outbound(endpoint.pk, conversion.pk, "approved", 1)
    assert len(receiver.requests) == 1
    assert OutboundDelivery.objects.filter(succeeded=True).count() == 1


def test_failures_are_retried_with_backoff_and_logged(
    client, alice, campaign, appsflyer, endpoint, receiver, settings
):
    settings.OUTBOUND_BACKOFF_SECONDS = 30
    conversion = _approved(client, alice, campaign, appsflyer)
    receiver.answers = [(503, {}), (500, {})]
    results = [
        deliver.outbound_send(
            endpoint_id=endpoint.pk, conversion_id=conversion.pk, event="approved", attempt=n
        )
        for n in (1, 2, 3)
    ]
    assert results == ["retry", "retry", "sent"]
    assert [deliver.backoff(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    log = list(
        OutboundDelivery.objects.order_by("attempt").values_list(
            "attempt", "status_code", "succeeded", "error"
        )
    )
    assert log == [(1, 503, False, "HTTP 503"), (2, 500, False, "HTTP 500"), (3, 200, True, "")]


def test_the_task_schedules_the_next_attempt_after_a_failure(
    client, alice, campaign, appsflyer, endpoint, receiver, eager
):
    conversion = _approved(client, alice, campaign, appsflyer)
    receiver.answers = [(500, {}), (502, {})]
    send_outbound(endpoint.pk, conversion.pk, "approved", 1)
    assert [d.status_code for d in OutboundDelivery.objects.order_by("attempt")] == [500, 502, 200]


def test_an_endpoint_failing_again_and_again_is_switched_off(
    client, alice, campaign, appsflyer, endpoint, receiver, settings
):
    settings.OUTBOUND_MAX_ATTEMPTS = 1
    settings.OUTBOUND_DISABLE_AFTER = 3
    receiver.answers = [(500, {})] * 3
    results = []
    for n in range(3):
        made = click(client, alice, campaign, at=T0 + timedelta(minutes=n), ip=f"198.51.100.{n}")
        conversion = af_install(
            client,
            appsflyer,
            at=T0 + timedelta(hours=1, minutes=n),
            click_id=made.click_id,
            afid=f"af-{n}",
            idfa=f"00000000-0000-4000-8000-00000000000{n + 1}",
        )
        results.append(
            deliver.outbound_send(
                endpoint_id=endpoint.pk, conversion_id=conversion.pk, event="approved", attempt=1
            )
        )
    endpoint.refresh_from_db()
    assert results == ["failed", "failed", "disabled"]
    assert not endpoint.is_active
    assert "3 failed deliveries in a row" in endpoint.disabled_reason
    page_client = client
    page_client.force_login(alice.user)
    assert b"switched off" in page_client.get("/dashboard/postbacks/").content


def test_a_reversal_is_sent_when_asked_for_after_a_delivered_approval(
    client, alice, campaign, appsflyer, endpoint, receiver, eager
):
    conversion = _approved(client, alice, campaign, appsflyer)
    dispatch_outbound(conversion.pk, "approved")
    amend.conversion_review(conversion=conversion, approve=False, actor=None)
    dispatch_outbound(conversion.pk, "reversed")
    statuses = [parse_qs(urlsplit(r["path"]).query)["s"][0] for r in receiver.requests]
    assert statuses == ["approved", "reversed"]


def test_post_endpoints_get_signed_json(client, alice, campaign, appsflyer, receiver):
    endpoint = OutboundEndpoint.objects.create(
        affiliate=alice, url_template=receiver.url + "/hook", method="POST", secret="k"
    )
    conversion = _approved(client, alice, campaign, appsflyer)
    send_outbound(endpoint.pk, conversion.pk, "approved", 1)
    sent = receiver.requests[0]
    assert sent["method"] == "POST" and b'"event": "install"' in sent["body"]
    expected = "sha256=" + hmac.new(b"k", sent["body"], hashlib.sha256).hexdigest()
    assert sent["headers"]["X-Signature"] == expected


def test_a_test_send_uses_sample_values(alice, endpoint, receiver):
    assert (
        deliver.outbound_send(endpoint_id=endpoint.pk, conversion_id=None, event="test", attempt=1)
        == "sent"
    )
    assert "our=TEST-CLICK-ID" in receiver.requests[0]["path"]


# --- the guard against server-side request forgery ----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://172.16.0.1/x",
        "http://192.168.1.1/x",
        "http://[::1]:9/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
        "http://localhost:9/x",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http://user:pw@example.com/x",
    ],
)
def test_inward_and_odd_urls_are_refused(url):
    with pytest.raises(safe_http.Refused):
        safe_http.request("GET", url, timeout=1)


def test_a_hostname_resolving_to_a_private_address_is_refused(monkeypatch):
    # A DNS answer we do not control, stood in for by the resolver the module calls.
    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]

    monkeypatch.setattr(safe_http.socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(safe_http.Refused, match="non-public address"):
        safe_http.request("GET", "http://tracker.attacker.example/pb", timeout=1)


@pytest.mark.parametrize(
    "location", ["http://10.0.0.1/admin", "http://[::1]/x", "http://169.254.169.254/"]
)
def test_a_redirect_into_a_private_range_is_refused(receiver, location):
    receiver.answers = [(302, {"Location": location})]
    allow = [__import__("ipaddress").ip_network("127.0.0.1/32")]
    with pytest.raises(safe_http.Refused, match="non-public"):
        safe_http.request("GET", receiver.url + "/start", timeout=2, allow=allow)
    assert len(receiver.requests) == 1  # the redirect was not followed


def test_a_refused_endpoint_is_logged_and_not_retried(alice, settings):
    settings.OUTBOUND_ALLOW_NETWORKS = []
    endpoint = OutboundEndpoint.objects.create(affiliate=alice, url_template="http://127.0.0.1:9/")
    assert (
        deliver.outbound_send(endpoint_id=endpoint.pk, conversion_id=None, event="test", attempt=1)
        == "failed"
    )
    assert OutboundDelivery.objects.get().error.startswith("refused:")


def test_the_affiliate_tests_and_resends_from_their_page(
    client,
    alice,
    charlie,
    campaign,
    appsflyer,
    endpoint,
    receiver,
    eager,
    django_capture_on_commit_callbacks,
):
    conversion = _approved(client, alice, campaign, appsflyer)
    send_outbound(endpoint.pk, conversion.pk, "approved", 1)
    delivery = OutboundDelivery.objects.get()
    client.force_login(alice.user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/dashboard/postbacks/{endpoint.pk}/test/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/dashboard/postbacks/log/{delivery.pk}/resend/")
    events = list(OutboundDelivery.objects.order_by("pk").values_list("event", "succeeded"))
    assert events == [("approved", True), ("test", True), ("resent", True)]
    page = client.get("/dashboard/postbacks/")
    assert b"resent" in page.content and b"TEST-CLICK-ID" in page.content
    client.force_login(charlie.user)
    assert client.post(f"/dashboard/postbacks/{endpoint.pk}/test/").status_code == 404
    assert client.post(f"/dashboard/postbacks/log/{delivery.pk}/resend/").status_code == 404
