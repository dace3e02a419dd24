"""Outbound HTTP to addresses affiliates choose, without becoming a way into our own network.

Only http and https; the host is resolved once and every address must be public (no loopback,
private, link-local, carrier-grade NAT, multicast, reserved or metadata ranges, nor a range that
tunnels or translates to IPv4: 6to4, Teredo, NAT64, ISATAP, IPv4-mapped and -compatible); the
connection goes to the address that was checked (no second lookup for a rebinding DNS server to
answer differently); redirects are followed only to URLs that pass the same check. ``allow``
names networks that may be called although not public: the one way to relax the check, for
tests and private deployments (settings.OUTBOUND_ALLOW_NETWORKS).
"""

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

MAX_REDIRECTS = 3
SNIPPET = 500


class Refused(ValueError):
    """The URL may not be called; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Reply:
    status: int
    snippet: str
    latency_ms: int
    url: str


# Ranges that carry IPv4 inside IPv6 (or lead to a relay that does): an address in them reaches
# whatever IPv4 address it wraps, a private one included, through a tunnel or a translator.
TUNNELS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "2002::/16",  # 6to4
        "2001::/32",  # Teredo
        "64:ff9b::/96",  # NAT64, the well-known prefix
        "64:ff9b:1::/48",  # NAT64, local use
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "192.88.99.0/24",  # 6to4 relay anycast
    )
)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if any(ip in network for network in TUNNELS if network.version == ip.version):
        return False
    if isinstance(ip, ipaddress.IPv6Address) and (int(ip) >> 32) & 0xFDFFFFFF == 0x5EFE:
        return False  # ISATAP: an interface id of [02]00:5efe:<IPv4>, under any prefix
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _allowed(address: str, allow: Sequence[Network]) -> bool:
    ip = ipaddress.ip_address(address)
    return is_public(address) or any(ip in network for network in allow)


class DeadlineExceeded(TimeoutError):
    """The delivery took longer than its overall deadline."""


# getaddrinfo has no timeout of its own: it runs here, and is given up on at the deadline (its
# thread finishes when the resolver gives up).
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbound-dns")


def _getaddrinfo(host: str, port: int, timeout: float | None) -> list:
    if timeout is None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return future.result(timeout=max(timeout, 0.001))
    except FutureTimeout:
        raise DeadlineExceeded(f"{host} did not resolve in time") from None


def resolve(url: str, *, allow: Sequence[Network] = (), timeout: float | None = None) -> Target:
    """Check ``url`` and pick the address to connect to; Refused says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused(f"only http and https URLs are called, not {parts.scheme or 'none'!r}")
    host = parts.hostname
    if not host:
        raise Refused("the URL has no host")
    if parts.username or parts.password:
        raise Refused("credentials in the URL are not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("the URL's port is not a number from 1 to 65535") from None
    try:
        infos = _getaddrinfo(host, port, timeout)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"{host} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    blocked = [a for a in addresses if not _allowed(a, allow)]
    if blocked:
        raise Refused(f"{host} resolves to a non-public address ({blocked[0]})")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._address = target.address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # Certificate and SNI are checked against the host name, not the pinned address.
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


class _Watchdog:
    """Cuts a connection off at the deadline, whatever it is waiting for: a per-read timeout
    alone lets a receiver that trickles a byte at a time hold a worker for ever."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.connection = connection
        self.fired = False
        self.timer = threading.Timer(max(seconds, 0.001), self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = self.connection.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "_Watchdog":
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    deadline: float | None = None,
    allow: Sequence[Network] = (),
) -> Reply:
    """Send one request (following safe redirects) and read the start of its reply.

    ``timeout`` bounds each connect and read; ``deadline`` (seconds) the whole of it, DNS and
    redirects included. Raises Refused, DeadlineExceeded, OSError or http.client.HTTPException.
    """
    started = time.monotonic()
    ends = None if deadline is None else started + deadline

    def left() -> float | None:
        if ends is None:
            return None
        remaining = ends - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(f"no complete answer within {deadline:g} s")
        return remaining

    for _ in range(MAX_REDIRECTS + 1):
        target = resolve(url, allow=allow, timeout=left())
        connection_class = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        remaining = left()
        connection = connection_class(
            target, timeout if remaining is None else min(timeout, remaining)
        )
        watchdog = _Watchdog(connection, remaining if remaining is not None else 0)
        try:
            with watchdog if remaining is not None else nullcontext():
                connection.request(method, target.path, body=body, headers=headers or {})
                response = connection.getresponse()
                data = response.read(SNIPPET)
                location = response.getheader("Location")
                status = response.status
        except (OSError, http.client.HTTPException):
            if watchdog.fired:
                raise DeadlineExceeded(f"no complete answer within {deadline:g} s") from None
            raise
        finally:
            connection.close()
        if watchdog.fired:  # cut off mid-reply: what was read is no answer
            raise DeadlineExceeded(f"no complete answer within {deadline:g} s")
        if status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, body = "GET", None
            continue
        return Reply(
            status=status,
            snippet=data.decode("utf-8", "replace"),
            latency_ms=int((time.monotonic() - started) * 1000),
            url=url,
        )
    raise Refused(f"more than {MAX_REDIRECTS} redirects")
