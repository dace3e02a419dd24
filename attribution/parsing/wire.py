"""A raw postback request as the door and the worker both read it: payload, dedup key, signature.

Pure functions, no database: the door parses to answer 400, the worker parses the same stored bytes
to normalise them."""

import hashlib
import hmac
import json
import re
from email.parser import BytesParser
from email.policy import HTTP as email_policy
from typing import Any
from urllib.parse import parse_qsl

_KEY_MAX = 255


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# One-line values (a sub id, a user agent) keep no control character at all, tabs and newlines
# included.
_LINE_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class Malformed(ValueError):
    """The request cannot be read as a postback; the message says why."""


def signature_matches(secret: str, message: bytes, header: str) -> bool:
    """``X-Signature: sha256=<hex>`` over ``message`` with ``secret``, compared in constant time."""
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    given = header.strip()
    given = given.removeprefix("sha256=")
    # Bytes, not str: compare_digest refuses non-ASCII text, which a sender may well send.
    return hmac.compare_digest(expected.encode(), given.lower().encode("utf-8", "replace"))


def clean_text(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL; other control characters are noise.
    return _CONTROL_RE.sub("", value)


def clean_line(value: str, limit: int) -> str:
    """A one-line value without control characters, cut to its column's ``limit``."""
    return _LINE_CONTROL_RE.sub("", value)[:limit]


def bounded_key(key: str) -> str:
    """A dedup key that fits its column: long ones keep a readable head and a hash of the whole."""
    key = clean_text(key)
    if len(key) <= _KEY_MAX:
        return key
    return key[:190] + "#" + hashlib.sha256(key.encode()).hexdigest()


def payload_of(*, method: str, query: str, body: str, content_type: str) -> dict[str, Any]:
    """Query parameters merged with the form or JSON body (the body wins on conflict)."""
    payload: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if method != "POST" or not body.strip():
        return payload
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "multipart/form-data":
        payload.update(_multipart_fields(body, content_type))
        return payload
    if mime == "application/x-www-form-urlencoded" or (
        mime != "application/json" and not body.lstrip().startswith(("{", "["))
    ):
        payload.update(parse_qsl(body, keep_blank_values=True))
        return payload
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Malformed("body must be a JSON object")
    payload.update(data)
    return payload


def _multipart_fields(body: str, content_type: str) -> dict[str, str]:
    message = BytesParser(policy=email_policy).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body.encode()
    )
    if not message.is_multipart():
        raise Malformed("multipart body without its boundary")
    fields = {}
    for part in message.iter_parts():
        if part.is_multipart():
            raise Malformed("multipart body with a nested multipart part")
        name = part.get_param("name", header="content-disposition")
        if name and not part.get_filename():
            fields[str(name)] = str(part.get_payload(decode=True).decode("utf-8", "replace"))
    return fields
