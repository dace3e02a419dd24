"""Lenient readers for postback parameters, shared by every adapter.

The rules (from the senders' documentation and real traffic):

* A value that still looks like an unfilled macro (``{sub4}``, ``{CLID}``, ``(idfa)``, ``${...}``,
  ``%7Bsub%7D``, ``[sub]``), an empty string, ``null``/``undefined``/``none``, ``None`` or an empty
  list counts as absent.
* Lists (a QueryDict's values) yield their last present element, like ``QueryDict.__getitem__``;
  a mapping with ``getlist`` is read through it.
* Parameter names match exactly first, then case-insensitively.
* Values that money or time hang on are strict once present: a malformed time, amount, boolean
  or currency raises :class:`PostbackError`. Descriptive values are forgiving: a device id that is
  not a UUID, a country that is not two letters, an unknown platform or a bad IP become "".
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from .base import PostbackError, SourceSettings

__all__ = [
    "Fields",
    "SourceSettings",
    "content_key",
    "dedup_key",
    "first_filled",
    "infer_platform",
    "is_unfilled_macro",
    "iso",
    "normalise_uuid",
    "parse_bool",
    "parse_decimal",
    "parse_time",
    "scalar",
]

MAX_TEXT = 255

_MACRO = re.compile(
    r"""
      \$\{.*\}                    # FreeMarker (Branch) and shell style: ${...}
    | \{\{.*\}\}                  # {{...}}
    | \{[^{}"]*\}                 # {sub4}, {CLID}, {cl?Network}; no quotes, so JSON is no macro
    | \([^()"]*\)                 # AppsFlyer: (idfa), (install-unix-ts)
    | \[[\w.?~\- ]*\]             # [sub1]
    | (?:%24)?%7B.*%7D            # URL-encoded braces that were never filled: %7Bsub%7D
    | %28.*%29                    # URL-encoded parentheses
    """,
    re.VERBOSE | re.IGNORECASE | re.DOTALL,
)
_NULL_WORDS = frozenset({"null", "undefined", "none", "nil"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_TRUE = frozenset({"true", "1", "yes", "y", "t", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "off"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2100, 1, 1, tzinfo=UTC)
_MIN_UNIX = Decimal(int(_MIN_TIME.timestamp()))
_MAX_UNIX = Decimal(int(_MAX_TIME.timestamp()))
# Unix times at or above this are milliseconds: as seconds they would be past the year 5000.
_MS_THRESHOLD = Decimal(10) ** 11
_UNIX_NUMBER = re.compile(r"[+-]?\d{1,20}(?:\.\d{1,9})?")
_ZONE_WORD = re.compile(r"\s*(?:UTC|GMT)$", re.IGNORECASE)
_SPACED_OFFSET = re.compile(r"\s+([+-]\d{2}:?\d{2})$")

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,2})?")
_MAX_AMOUNT = Decimal(10) ** 15
_MIN_EXPONENT = -20

_COUNTRY_ALIASES = {"UK": "GB"}
_IOS_NAMES = frozenset({"ios", "iphone", "ipad", "ipados", "iphone os", "ios_app", "tvos"})


def _show(value: str, limit: int = 60) -> str:
    """The value as quoted back to the sender: short enough for a log line and a 400 body."""
    return value if len(value) <= limit else value[:limit] + "…"


def is_unfilled_macro(value: str) -> bool:
    """Whether ``value`` (already stripped) is a placeholder the sender never filled."""
    return bool(_MACRO.fullmatch(value)) or value.lower() in _NULL_WORDS


def scalar(label: str, value: Any) -> str | None:
    """Reduce one raw parameter value to a stripped string, or None when it is absent.

    Raises PostbackError for values that cannot stand for a single parameter: objects, nested lists,
    non-finite numbers, control characters, text that is not valid Unicode.
    """
    if value is None:
        return None
    if isinstance(value, list | tuple):
        for item in reversed(value):
            if isinstance(item, list | tuple):
                raise PostbackError(f"{label} is a nested list, expected a single value")
            found = scalar(label, item)
            if found is not None:
                return found
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # beyond int-to-str's digit limit
            raise PostbackError(f"{label} is too long a number") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PostbackError(f"{label} is not a finite number")
        # JSON has one number type: 1698811507.0 is the integer a sender meant.
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if not text or is_unfilled_macro(text):
            return None
        if _CONTROL.search(text):
            raise PostbackError(f"{label} contains control characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise PostbackError(f"{label} is not valid text") from None
        return text
    if isinstance(value, Mapping):
        raise PostbackError(f"{label} is an object, expected a single value")
    raise PostbackError(f"{label} is a {type(value).__name__}, expected a single value")


def parse_bool(label: str, value: str) -> bool:
    """true/false/1/0/yes/no in any case."""
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise PostbackError(f"{label} '{_show(value)}' is not a boolean (true or false)")


def parse_time(label: str, value: str) -> datetime | None:
    """A point in time as timezone-aware UTC.

    Accepts Unix seconds or milliseconds (told apart by size, with fractions), ``yyyy-mm-dd
    hh:mm:ss[.fff]`` (read as UTC) and ISO 8601 with or without an offset. A Unix time of 0 is what
    some senders put for "unknown", so it is absent. Times outside 2000-2099 are refused as junk.
    """
    text = unquote(value) if "%" in value else value
    if _UNIX_NUMBER.fullmatch(text):
        number = Decimal(text)
        if number == 0:
            return None
        if abs(number) >= _MS_THRESHOLD:
            number /= 1000
        if not _MIN_UNIX <= number < _MAX_UNIX:
            raise PostbackError(f"{label} '{_show(value)}' is out of range (2000-2099)")
        micros = int((number * 1_000_000).to_integral_value(ROUND_HALF_EVEN))
        return _EPOCH + timedelta(microseconds=micros)
    if len(text) > 64:
        raise PostbackError(f"{label} '{_show(value)}' is not a time")
    text = _SPACED_OFFSET.sub(r"\1", _ZONE_WORD.sub("", text))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PostbackError(f"{label} '{_show(value)}' is not a time") from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if not _MIN_TIME <= parsed < _MAX_TIME:
        raise PostbackError(f"{label} '{_show(value)}' is out of range (2000-2099)")
    return parsed


def parse_decimal(label: str, value: str) -> Decimal:
    """An exact amount. A single comma with no dot is a decimal separator ("4,99")."""
    text = value
    if "," in text and "." not in text and text.count(",") == 1:
        text = text.replace(",", ".")
    if len(text) > 50 or not _DECIMAL.fullmatch(text):
        raise PostbackError(f"{label} '{_show(value)}' is not a number")
    try:
        amount = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        raise PostbackError(f"{label} '{_show(value)}' is not a number") from None
    if abs(amount) >= _MAX_AMOUNT:
        raise PostbackError(f"{label} '{_show(value)}' is too large")
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite by the pattern above
    if exponent < _MIN_EXPONENT:
        raise PostbackError(f"{label} '{_show(value)}' has too many decimal places")
    if exponent > 0:
        amount = amount.quantize(Decimal(1))  # "1e2" -> Decimal("100"), plain notation
    return amount


def normalise_uuid(value: str, *, upper: bool) -> str:
    """A canonical UUID string, or "" when absent, all zeros (tracking limited) or not a UUID."""
    if not value:
        return ""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return ""
    if parsed.int == 0:
        return ""
    text = str(parsed)
    return text.upper() if upper else text


def normalise_platform(value: str) -> str:
    """ "ios" | "android" | "web" | "" from whatever the sender calls the OS."""
    lowered = value.lower()
    if "android" in lowered:
        return "android"
    if lowered in _IOS_NAMES or lowered.startswith("ios") or "iphone" in lowered:
        return "ios"
    if "web" in lowered or lowered in {"desktop", "browser"}:
        return "web"
    return ""


def infer_platform(
    platform: str, *, idfa: str = "", idfv: str = "", gaid: str = "", app_id: str = ""
) -> str:
    """The stated platform, else the one the device ids or an iOS store id (``id123…``) imply."""
    if platform:
        return platform
    if (idfa or idfv) and not gaid:
        return "ios"
    if gaid and not (idfa or idfv):
        return "android"
    if re.fullmatch(r"id\d+", app_id):
        return "ios"
    return ""


def iso(moment: datetime) -> str:
    """Canonical UTC text for a time, as used inside dedup keys: ``2023-11-03T00:49:04.897Z``."""
    moment = moment.astimezone(UTC)
    if moment.microsecond == 0:
        spec = "seconds"
    elif moment.microsecond % 1000 == 0:
        spec = "milliseconds"
    else:
        spec = "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def dedup_key(prefix: str, *parts: str | datetime | None) -> str:
    """Join key parts with ':', escaping ':' and '%' in text parts so they cannot run together."""
    out = [prefix]
    for part in parts:
        if isinstance(part, datetime):
            out.append(iso(part))
        elif part is None:
            out.append("")
        else:
            out.append(part.replace("%", "%25").replace(":", "%3A"))
    return ":".join(out)


def content_key(prefix: str, payload: Mapping[str, Any]) -> str:
    """A dedup key for a postback that carries no natural key: a hash of everything it says.

    A sender's retry repeats its request exactly, so it hashes the same; a postback that differs
    in any value (another event of the same device, a later time) does not. Key order and a
    QueryDict's lists do not matter.
    """
    getlist = getattr(payload, "getlist", None)
    items = {str(k): getlist(k) if callable(getlist) else payload[k] for k in payload}
    text = json.dumps(items, sort_keys=True, default=str, ensure_ascii=False)
    return f"{prefix}:content:{hashlib.sha256(text.encode()).hexdigest()[:40]}"


def first_filled(*pairs: tuple[str, str]) -> tuple[str, str] | None:
    """The first (name, value) pair whose value is not empty: a fallback chain of device ids."""
    return next((pair for pair in pairs if pair[1]), None)


def _load_json_object(text: str) -> Mapping[str, Any] | None:
    try:
        loaded = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return loaded if isinstance(loaded, Mapping) else None


class Fields:
    """Typed, lenient access to one postback's parameters (or one nested object of them)."""

    def __init__(self, payload: Mapping[str, Any], *, path: str = "") -> None:
        self._payload = payload
        self._path = path
        self._folded: dict[str, str] = {}
        for key in payload:
            if isinstance(key, str):
                self._folded.setdefault(key.lower(), key)

    @classmethod
    def of(cls, payload: object) -> Fields:
        """Wrap a whole postback; anything but a mapping is refused."""
        if not isinstance(payload, Mapping):
            raise PostbackError("the postback is not a set of named parameters")
        return cls(payload)

    @classmethod
    def empty(cls, path: str = "") -> Fields:
        """A nested object the sender left out (Branch drops empty objects)."""
        return cls({}, path=path)

    def label(self, name: str) -> str:
        """The name as the sender knows it, with the path of the enclosing object."""
        return f"{self._path}.{name}" if self._path else name

    def _raw(self, name: str) -> Any:
        key = name if name in self._payload else self._folded.get(name.lower())
        if key is None:
            return None
        getlist = getattr(self._payload, "getlist", None)
        if callable(getlist):
            return getlist(key)
        return self._payload[key]

    def first(self, *names: str) -> tuple[str, str] | None:
        """(label, value) of the first name present, or None."""
        for name in names:
            value = scalar(self.label(name), self._raw(name))
            if value is not None:
                return self.label(name), value
        return None

    def text(self, *names: str, max_length: int = MAX_TEXT) -> str:
        """The first present value as sent (stripped), or ""."""
        found = self.first(*names)
        if found is None:
            return ""
        label, value = found
        if len(value) > max_length:
            raise PostbackError(f"{label} is longer than {max_length} characters")
        return value

    def require(self, *names: str, max_length: int = MAX_TEXT) -> str:
        """Like :meth:`text`, but absence is an error named after the first (canonical) name."""
        value = self.text(*names, max_length=max_length)
        if not value:
            raise PostbackError(f"{self.label(names[0])} is missing")
        return value

    def name(self, *names: str) -> str:
        """An event or activity name, lower-cased."""
        return self.text(*names).lower()

    def time(self, *names: str) -> datetime | None:
        """See :func:`parse_time`."""
        found = self.first(*names)
        return None if found is None else parse_time(*found)

    def decimal(self, *names: str) -> Decimal | None:
        """See :func:`parse_decimal`."""
        found = self.first(*names)
        return None if found is None else parse_decimal(*found)

    def boolean(self, *names: str, default: bool = False) -> bool:
        """See :func:`parse_bool`."""
        found = self.first(*names)
        return default if found is None else parse_bool(*found)

    def gaid(self, *names: str) -> str:
        """Google advertising id, lower-case."""
        return normalise_uuid(self.text(*names), upper=False)

    def idfa(self, *names: str) -> str:
        """Apple IDFA (or IDFV), upper-case."""
        return normalise_uuid(self.text(*names), upper=True)

    def country(self, *names: str) -> str:
        """ISO 3166 alpha-2, upper-case, or ""."""
        value = _COUNTRY_ALIASES.get(code := self.text(*names).upper(), code)
        return value if re.fullmatch(r"[A-Z]{2}", value) else ""

    def currency(self, *names: str) -> str:
        """ISO 4217 code, upper-case, or ""; anything else is an error since money depends on it."""
        found = self.first(*names)
        if found is None:
            return ""
        label, value = found
        code = value.upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise PostbackError(f"{label} '{_show(value)}' is not a 3-letter currency code")
        return code

    def platform(self, *names: str) -> str:
        """See :func:`normalise_platform`."""
        return normalise_platform(self.text(*names))

    def touch_type(self, *names: str) -> str:
        """ "click" | "impression" | ""."""
        value = self.text(*names).lower()
        if value in {"click", "clicks", "ct"}:
            return "click"
        if value in {"impression", "impressions", "view", "view-through", "view_through", "vt"}:
            return "impression"
        return ""

    def ip(self, *names: str) -> str:
        """A canonical IP address, or "" (the first of a forwarded-for list)."""
        value = self.text(*names).split(",")[0].strip()
        try:
            return str(ipaddress.ip_address(value)) if value else ""
        except ValueError:
            return ""

    def digest(self, prefix: str) -> str:
        """See :func:`content_key`."""
        return content_key(prefix, self._payload)

    def amount(
        self, units: tuple[str, ...], cents: tuple[str, ...], settings: SourceSettings
    ) -> Decimal | None:
        """Revenue from the first present of ``units`` (whole currency units, 4.99) or ``cents``
        (minor units, 499), read as the sender documents them unless the source's setting says
        otherwise (a partner template can put any macro under any name)."""
        found = self.first(*units, *cents)
        if found is None:
            return None
        label, value = found
        amount = parse_decimal(label, value)
        in_cents = label.rsplit(".", 1)[-1].lower() in {c.lower() for c in cents}
        if settings.revenue_unit == "cents":
            in_cents = True
        elif settings.revenue_unit == "units":
            in_cents = False
        return amount / 100 if in_cents else amount

    def section(self, name: str) -> Fields:
        """A nested object (JSON, or a JSON string in a form field); absent is an empty object."""
        label = self.label(name)
        raw = self._raw(name)
        if isinstance(raw, list | tuple):
            raw = next((item for item in reversed(raw) if item is not None), None)
        if raw is None:
            return Fields.empty(label)
        if isinstance(raw, Mapping):
            return Fields(raw, path=label)
        if isinstance(raw, str):
            text = raw.strip()
            if not text or is_unfilled_macro(text):
                return Fields.empty(label)
            loaded = _load_json_object(text)
            if loaded is not None:
                return Fields(loaded, path=label)
            raise PostbackError(f"{label} is not a JSON object")
        raise PostbackError(f"{label} is not an object")

    def loose_section(self, name: str) -> Fields:
        """Like :meth:`section` for free-form values (AppsFlyer ``event_value``): junk is empty."""
        try:
            return self.section(name)
        except PostbackError:
            return Fields.empty(self.label(name))
