"""Deadlines at the edges, live: gunicorn, PostgreSQL behind a TCP proxy that can go silent (a
network partition: no reply, no reset), Redis. A silent database gives 503 within seconds, and
/healthz says so; senders that trickle their bodies are cut off and the others served."""

import contextlib
import http.client
import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from django.db import connection

from attribution.models import Postback
from tests.factories import PostbackSourceFactory
from tests.processes import process_env, web_server
from tests.processes import test_database_url as database_url  # not a test

pytestmark = [pytest.mark.live, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class SilentableProxy:
    """Forwards TCP to ``target``; ``silence()`` stops every byte both ways (and holds new
    connections), as a partition does, without closing anything."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.silent = threading.Event()
        self.stopped = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        while self.silent.is_set() and not self.stopped.is_set():
            time.sleep(0.05)  # a new connection during the partition goes nowhere
        try:
            server = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        ends = {client: server, server: client}
        try:
            while not self.stopped.is_set():
                if self.silent.is_set():
                    time.sleep(0.05)
                    continue
                readable, _, _ = select.select(list(ends), [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    ends[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


def _get(url: str, timeout: float = 30) -> tuple[int, dict, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    took = time.monotonic() - started
    try:
        return status, json.loads(body), took
    except ValueError:
        return status, {}, took


@pytest.mark.parametrize("group_commit", ["true", "false"])
def test_a_silent_database_gives_503_within_seconds_and_healthz_says_so(tmp_path, group_commit):
    # given gunicorn whose database connections go through a proxy that can fall silent
    source = PostbackSourceFactory(kind="s2s")
    db = urlsplit(database_url())
    proxy = SilentableProxy((db.hostname or "127.0.0.1", db.port or 5432))
    url = database_url().replace(f":{db.port or 5432}/", f":{proxy.port}/")
    if f":{proxy.port}/" not in url:  # no port in the URL: add the proxy's
        url = url.replace(f"@{db.hostname}/", f"@{db.hostname}:{proxy.port}/")
    env = process_env(DATABASE_URL=url, DB_QUERY_DEADLINE_SECONDS="3", DB_CONNECT_TIMEOUT="2")
    try:
        with web_server(tmp_path, env=env) as base:
            postback = f"{base}/postbacks/s2s/{source.token}/?event=reg&txid="
            assert _get(f"{base}/healthz")[0] == 200
            assert _get(postback + "before")[0] == 200

            # when the database stops answering (no reply, no reset)
            proxy.silent.set()

            # then requests are answered 503 within the deadline, not after the partition
            status, body, took = _get(f"{base}/healthz")
            assert (status, body["database"][:11]) == (503, "unavailable"), body
            assert body["broker"] == "ok"
            assert took < 6, took
            status, body, took = _get(postback + "during")
            assert status == 503, body
            assert took < 6, took
            assert _get(f"{base}/livez")[0] == 200  # the process itself is alive

            # and once the database answers again, so does the portal
            proxy.silent.clear()
            deadline = time.monotonic() + 20
            while _get(f"{base}/healthz")[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert _get(f"{base}/healthz")[0] == 200
            assert _get(postback + "after")[0] == 200
    finally:
        proxy.close()
    connection.close()
    assert sorted(Postback.objects.values_list("dedup_key", flat=True)) == [
        "s2s:after",
        "s2s:before",
    ]


def _trickle(base: str, path: str) -> socket.socket:
    """A sender that declares a body and sends it a byte a second."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    sock = socket.create_connection((host, port))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{".encode()
    )
    return sock


def test_senders_that_trickle_their_bodies_are_cut_off_and_the_rest_served(tmp_path):
    # given gunicorn with two threads and a 2 s body deadline
    source = PostbackSourceFactory(kind="s2s")
    env = process_env(REQUEST_BODY_TIMEOUT_SECONDS="2")
    with web_server(tmp_path, env=env, threads=2) as base:
        # when more slow senders than threads trickle their bodies
        path = f"/postbacks/s2s/{source.token}/"
        slow = [_trickle(base, path) for _ in range(4)]
        stop = threading.Event()

        def keep_trickling() -> None:
            while not stop.is_set():
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.sendall(b" ")
                time.sleep(1)

        threading.Thread(target=keep_trickling, daemon=True).start()
        time.sleep(0.5)

        # then a normal postback is still served within seconds
        status, body, took = _get(f"{base}{path}?event=reg&txid=fast")
        stop.set()
        assert status == 200, body
        assert took < 8, took

        # and each slow sender got a 408
        answers = []
        for sock in slow:
            sock.settimeout(10)
            try:
                answers.append(sock.recv(200).split(b" ", 2)[1])
            except (OSError, IndexError):
                answers.append(b"")
            sock.close()
        assert answers == [b"408"] * 4


def test_a_chunked_postback_through_gunicorn_is_stored_whole(tmp_path):
    # Chunked bodies used to be stored empty and answered 400.
    source = PostbackSourceFactory(kind="s2s")
    with web_server(tmp_path) as base:
        parts = urlsplit(base)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        body = [b'{"event": "reg", ', b'"txid": "chunked-live", ', b'"click_id": "abc"}']
        conn.request(
            "POST",
            f"/postbacks/s2s/{source.token}/",
            body=iter(body),
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        answer = json.loads(response.read())
        conn.close()
    assert (response.status, answer["status"]) == (200, "accepted"), answer
    connection.close()
    assert Postback.objects.get().body == b"".join(body).decode()
