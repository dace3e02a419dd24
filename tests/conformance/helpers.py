"""Conformance helpers: deliver a sender's postback over HTTP, and act as the MMP would.

The MMP side is written from each sender's documentation, never from our code: how it decodes
a link (once, as a URL query), how it fills its macros, and what it leaves out when it has no
value. Our code under test is only ever reached over HTTP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

from attribution.models import Conversion, Postback, PostbackEvent, PostbackSource
from attribution.processing import single

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def endpoint(source: PostbackSource) -> str:
    return f"/postbacks/{source.kind}/{source.token}/"


def get(client, source: PostbackSource, query: str):
    """The sender's GET, its query string exactly as the sender writes it."""
    return client.get(endpoint(source) + "?" + query)


def post_json(client, source: PostbackSource, body: str | Mapping):
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(endpoint(source), text, content_type="application/json")


def processed(response) -> PostbackEvent:
    """Run the worker's step on the row the response names; the normalised event it made."""
    assert response.status_code == 200, response.content
    postback_id = response.json()["id"]
    assert single.postback_process(postback_id=postback_id) == "processed"
    assert Postback.objects.get(pk=postback_id).status == Postback.Status.PROCESSED
    return PostbackEvent.objects.get(postback_id=postback_id)


def conversion_of(event: PostbackEvent) -> Conversion:
    return Conversion.objects.select_related("affiliate").get(event=event)


# --- what an MMP does with our redirect ------------------------------------------------------


def decoded_query(url: str) -> dict[str, str]:
    """A link's query as a server decodes it: split on & and =, percent-decode once.

    ``+`` stays ``+``: Adjust's encoding rules list it among the characters to encode, so a
    literal plus is not a space to it.
    """
    out = {}
    for piece in urlsplit(url).query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            out[unquote(name)] = unquote(value)
    return out


_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)\}")


def fill_adjust(callback: str, values: Mapping[str, str]) -> str:
    """Adjust at callback time: each ``{placeholder}`` filled (URL-encoded); a parameter whose
    placeholder has no data is dropped (help.adjust.com: "If placeholder data is not available,
    it will be dropped from the callback")."""
    base, _, query = callback.partition("?")
    kept = []
    for piece in query.split("&"):
        name, _, value = piece.partition("=")
        names = _PLACEHOLDER.findall(value)
        if any(n not in values for n in names):
            continue
        kept.append(
            f"{name}=" + _PLACEHOLDER.sub(lambda m: quote(values[m.group(1)], safe=""), value)
        )
    return f"{base}?{'&'.join(kept)}"


def fill_macros(template: str, values: Mapping[str, str], pattern: str) -> str:
    """A partner postback template filled the way AppsFlyer, Singular or Kochava fill theirs:
    every macro replaced by its URL-encoded value, "" when the MMP has none."""
    return re.sub(pattern, lambda m: quote(values.get(m.group(1), ""), safe=""), template)


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"
