"""Verify Apple SKAdNetwork and AdAttributionKit install postbacks.

Framework-free on purpose: the ingestion view answers 400 on :class:`SkanError` and stores
everything else, and the worker re-runs the same checks. A signature that does not verify is a
verdict (``Verdict.INVALID`` with a reason), not an exception, because Apple's retries cannot fix
it and the raw postback is still worth keeping.

SKAdNetwork signs a U+2063-joined list of field *values* (the layout depends on ``version``) with
ECDSA/SHA-256, DER-encoded and base64'd: Apple's P-192 key for 1.0 and 2.0, its P-256 key for 2.1
and later. AdAttributionKit sends a compact ES256 JWS whose header ``kid`` names the key. Forwarders
(MMPs, ad networks) add their own unsigned keys; those never enter the signed message.
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key

__all__ = [
    "SkanError",
    "SkanPostback",
    "Verdict",
    "parse_aak",
    "parse_skan",
    "skan_message",
]

SEPARATOR = "\u2063"  # INVISIBLE SEPARATOR, Apple's field delimiter in the signed message

SKAN_VERSIONS = ("1.0", "2.0", "2.1", "2.2", "3.0", "4.0")
_RANK = {version: rank for rank, version in enumerate(SKAN_VERSIONS)}

AAK_PRODUCTION_KID = "apple-cas-identifier/0"

_APPLE_P192_SPKI = (
    "MEkwEwYHKoZIzj0CAQYIKoZIzj0DAQEDMgAEMyHD625uvsmGq4C43cQ9BnfN2xslVT5V1nOmAMP6qaRRUll3PB1JYmgS"
    "m+62sosG"
)
_APPLE_P256_SPKI = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWdp8GPcGqmhgzEFj9Z2nSpQVddayaPe4FMzqM9wib1+aHaaIzoHoLN9zW4K8"
    "y4SPykE3YVK3sVqW6Af0lfx3gg=="
)
_APPLE_DEV0_SPKI = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELeEDzpJEP+/qRSE5hJVC1p1J0ssUnQGMzBBbvnACBok8OVGGLgxL0myrKiy6"
    "lvRtSlLRsWit87i+vftD8AEqeQ=="
)
_APPLE_DEV1_SPKI = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YzdO7eM97s/IJ25kdW5CZ3A14USE5IJ5Ha/vhWaxI6UBI1ZxCEvjrKxVluV"
    "Ge6qWwF1BDFq+QHqKfH5u+wxHQ=="
)


def _load_key(spki_b64: str, curve: type[ec.EllipticCurve]) -> ec.EllipticCurvePublicKey:
    key = load_der_public_key(base64.b64decode(spki_b64))
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, curve):
        raise RuntimeError(f"Apple key is not a {curve.name} EC key")  # a typo in this file
    return key


# The P-192 key needs an OpenSSL with SECP192R1; cryptography 50.0.2's bundled OpenSSL has it, and
# the 2.0 test vector fails loudly if a future build drops it.
_P192_KEY = _load_key(_APPLE_P192_SPKI, ec.SECP192R1)
_P256_KEY = _load_key(_APPLE_P256_SPKI, ec.SECP256R1)
_AAK_KEYS: dict[str, ec.EllipticCurvePublicKey] = {
    AAK_PRODUCTION_KID: _P256_KEY,
    "apple-development-identifier/0": _load_key(_APPLE_DEV0_SPKI, ec.SECP256R1),
    "apple-development-identifier/1": _load_key(_APPLE_DEV1_SPKI, ec.SECP256R1),
}

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_COARSE_VALUES = frozenset({"low", "medium", "high"})
_TRUE_TEXT = frozenset({"true", "1"})
_FALSE_TEXT = frozenset({"false", "0"})
_MAX_INTEGER = 2**63 - 1  # what a BIGINT column holds; far above any real App Store id
_INTERACTION_BY_FIDELITY: dict[int | None, str] = {0: "view", 1: "click"}


class Verdict(enum.StrEnum):
    """Outcome of checking Apple's signature."""

    VALID = "valid"
    INVALID = "invalid"
    DEVELOPMENT = "development"  # genuine, but signed with a developer-mode key: never count it


class SkanError(ValueError):
    """The postback is malformed (not an object, missing or mistyped fields): answer 400."""


@dataclass(frozen=True)
class SkanPostback:
    """What a SKAdNetwork or AdAttributionKit postback says, and whether Apple signed it."""

    protocol: str  # "skadnetwork" or "adattributionkit"
    version: str  # "1.0".."4.0" or "aak"
    verdict: Verdict
    reason: str  # "" when valid
    dedup_key: str  # transaction-id / postback-identifier, lower-cased
    ad_network_id: str
    campaign_id: int | None
    source_identifier: str
    app_id: str
    source_app_id: str
    source_domain: str
    redownload: bool | None
    fidelity_type: int | None
    did_win: bool | None
    postback_sequence_index: int
    conversion_value: int | None
    coarse_conversion_value: str
    conversion_type: str
    interaction_type: str
    country: str


# --- lenient field readers -------------------------------------------------------------------
# Forwarders re-serialise Apple's JSON, so numbers turn up as strings and booleans as "1"/"TRUE".
# A null or empty value counts as absent; anything else that cannot be read is a SkanError.


def _show(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit
        return f"a huge {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _present(data: dict[str, Any], key: str) -> Any:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _missing(key: str, context: str) -> SkanError:
    return SkanError(f"{context} is missing {key!r}")


def _text(data: dict[str, Any], key: str, context: str, *, required: bool = False) -> str | None:
    value = _present(data, key)
    if value is None:
        if required:
            raise _missing(key, context)
        return None
    if not isinstance(value, str):
        raise SkanError(f"{key!r} must be a string, got {_show(value)}")
    return value.strip()


def _integer(data: dict[str, Any], key: str, context: str, *, required: bool = False) -> int | None:
    value = _present(data, key)
    if value is None:
        if required:
            raise _missing(key, context)
        return None
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 19:
            number = int(text)
    if number is None or not 0 <= number <= _MAX_INTEGER:
        raise SkanError(f"{key!r} must be a non-negative integer, got {_show(value)}")
    return number


def _digits(data: dict[str, Any], key: str, context: str, *, required: bool = False) -> str | None:
    """A string of decimal digits that may have been turned into a number on the way."""
    value = _present(data, key)
    if value is None:
        if required:
            raise _missing(key, context)
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_INTEGER:
        return str(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return value.strip()
    raise SkanError(f"{key!r} must be a string of digits, got {_show(value)}")


def _flag(data: dict[str, Any], key: str, context: str, *, required: bool = False) -> bool | None:
    value = _present(data, key)
    if value is None:
        if required:
            raise _missing(key, context)
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_TEXT:
            return True
        if text in _FALSE_TEXT:
            return False
    raise SkanError(f"{key!r} must be true or false, got {_show(value)}")


def _conversion_value(data: dict[str, Any]) -> int | None:
    value = _integer(data, "conversion-value", "postback")
    if value is not None and value > 63:
        raise SkanError(f"'conversion-value' must be 0..63, got {value}")
    return value


def _coarse_value(data: dict[str, Any]) -> str:
    value = (_text(data, "coarse-conversion-value", "postback") or "").lower()
    if value and value not in _COARSE_VALUES:
        raise SkanError(f"'coarse-conversion-value' must be low, medium or high, got {value!r}")
    return value


def _require_object(payload: object, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise SkanError(f"{what} must be a JSON object, got {type(payload).__name__}")
    return payload


def _b64decode(text: str) -> bytes | None:
    """Decode standard or URL-safe base64, padding optional; None when it is not base64."""
    cleaned = "".join(text.split()).rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except ValueError:
        return None


def _verifies(key: ec.EllipticCurvePublicKey, der_signature: bytes, message: bytes) -> bool:
    try:
        key.verify(der_signature, message, _ECDSA_SHA256)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- SKAdNetwork -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _SkanFields:
    """The signed SKAdNetwork fields, normalised; None means absent (or not in this version)."""

    version: str
    ad_network_id: str
    campaign_id: int | None
    source_identifier: str | None
    app_id: int
    transaction_id: str
    redownload: bool | None
    source_app_id: int | None
    source_domain: str | None
    fidelity_type: int | None
    did_win: bool | None
    postback_sequence_index: int | None


def _skan_version(payload: dict[str, Any]) -> str:
    raw = _present(payload, "version")
    if raw is None:
        return "1.0"
    if isinstance(raw, str):
        text = raw.strip()
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        text = str(raw)
    else:
        raise SkanError(f"'version' must be a string such as \"4.0\", got {_show(raw)}")
    for candidate in (text, text + ".0"):
        if candidate in _RANK:
            return candidate
    raise SkanError(f"unsupported SKAdNetwork version {_show(raw)}")


def _read_skan(payload: object) -> _SkanFields:
    data = _require_object(payload, "SKAdNetwork postback")
    version = _skan_version(data)
    rank = _RANK[version]
    ctx = f"SKAdNetwork {version} postback"
    v4 = version == "4.0"
    return _SkanFields(
        version=version,
        ad_network_id=_text(data, "ad-network-id", ctx, required=True) or "",
        campaign_id=None if v4 else _integer(data, "campaign-id", ctx, required=True),
        source_identifier=_digits(data, "source-identifier", ctx, required=True) if v4 else None,
        app_id=_integer(data, "app-id", ctx, required=True) or 0,
        transaction_id=_text(data, "transaction-id", ctx, required=True) or "",
        redownload=_flag(data, "redownload", ctx, required=True) if rank >= 1 else None,
        source_app_id=_integer(data, "source-app-id", ctx) if rank >= 1 else None,
        source_domain=_text(data, "source-domain", ctx) if v4 else None,
        fidelity_type=_integer(data, "fidelity-type", ctx, required=True) if rank >= 3 else None,
        did_win=_flag(data, "did-win", ctx, required=True) if rank >= 4 else None,
        postback_sequence_index=(
            _integer(data, "postback-sequence-index", ctx, required=True) if v4 else None
        ),
    )


def _render(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _message(fields: _SkanFields) -> str:
    parts: list[str | int | bool | None]
    if fields.version == "1.0":
        parts = [fields.ad_network_id, fields.campaign_id, fields.app_id, fields.transaction_id]
    elif fields.version == "4.0":
        source = fields.source_app_id if fields.source_app_id is not None else fields.source_domain
        parts = [
            fields.version,
            fields.ad_network_id,
            fields.source_identifier,
            fields.app_id,
            fields.transaction_id,
            fields.redownload,
            source,
            fields.fidelity_type,
            fields.did_win,
            fields.postback_sequence_index,
        ]
    else:
        parts = [
            fields.version,
            fields.ad_network_id,
            fields.campaign_id,
            fields.app_id,
            fields.transaction_id,
            fields.redownload,
            fields.source_app_id,
            fields.fidelity_type,  # None before 2.2
            fields.did_win,  # None before 3.0
        ]
    # Every required field is non-None by now, so only absent optional ones drop out here.
    return SEPARATOR.join(_render(part) for part in parts if part is not None)


def skan_message(payload: dict[str, Any]) -> str:
    """Return the exact string Apple signed for a SKAdNetwork postback.

    Only Apple's fields for the postback's ``version`` take part; forwarder keys are ignored.
    Raises :class:`SkanError` if the payload is malformed.
    """
    return _message(_read_skan(payload))


def _skan_verdict(data: dict[str, Any], fields: _SkanFields) -> tuple[Verdict, str]:
    p192 = fields.version in ("1.0", "2.0")
    key, key_name = (_P192_KEY, "P-192") if p192 else (_P256_KEY, "P-256")
    raw = _present(data, "attribution-signature")
    if raw is None:
        return Verdict.INVALID, "postback carries no attribution-signature"
    if not isinstance(raw, str):
        raise SkanError(f"'attribution-signature' must be a base64 string, got {_show(raw)}")
    signature = _b64decode(raw)
    if signature is None:
        return Verdict.INVALID, "attribution-signature is not valid base64"
    # surrogatepass: a lone surrogate from a hostile body cannot match, but must not crash.
    message = _message(fields).encode("utf-8", "surrogatepass")
    if not _verifies(key, signature, message):
        return Verdict.INVALID, f"signature does not verify against Apple's {key_name} key"
    return Verdict.VALID, ""


def parse_skan(payload: dict[str, Any]) -> SkanPostback:
    """Verify a SKAdNetwork postback (1.0-4.0) and extract its fields.

    A bad or missing signature yields ``Verdict.INVALID`` with a reason. Raises
    :class:`SkanError` when the body is not a JSON object, lacks a field Apple always signs (such
    as ``transaction-id``), has an unknown ``version`` or a value of the wrong type.
    """
    fields = _read_skan(payload)
    data: dict[str, Any] = payload
    verdict, reason = _skan_verdict(data, fields)
    return SkanPostback(
        protocol="skadnetwork",
        version=fields.version,
        verdict=verdict,
        reason=reason,
        dedup_key=fields.transaction_id.lower(),
        ad_network_id=fields.ad_network_id,
        campaign_id=fields.campaign_id,
        source_identifier=fields.source_identifier or "",
        app_id=str(fields.app_id),
        source_app_id="" if fields.source_app_id is None else str(fields.source_app_id),
        source_domain=fields.source_domain or "",
        redownload=fields.redownload,
        fidelity_type=fields.fidelity_type,
        did_win=fields.did_win,
        postback_sequence_index=fields.postback_sequence_index or 0,
        conversion_value=_conversion_value(data),
        coarse_conversion_value=_coarse_value(data),
        conversion_type="redownload" if fields.redownload else "download",
        interaction_type=_INTERACTION_BY_FIDELITY.get(fields.fidelity_type, ""),
        country="",
    )


# --- AdAttributionKit ------------------------------------------------------------------------


def _jws_json(segment: str, what: str) -> dict[str, Any]:
    raw = _b64decode(segment)
    if raw is None:
        raise SkanError(f"JWS {what} is not base64url")
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise SkanError(f"JWS {what} is not JSON") from exc
    return _require_object(decoded, f"JWS {what}")


def _aak_verdict(
    header: dict[str, Any], signing_input: str, signature_b64: str
) -> tuple[Verdict, str]:
    alg = header.get("alg")
    if alg != "ES256":
        return Verdict.INVALID, f"JWS alg is {_show(alg)}, AdAttributionKit only uses ES256"
    kid = header.get("kid")
    key = _AAK_KEYS.get(kid) if isinstance(kid, str) else None
    if key is None:
        return Verdict.INVALID, f"JWS kid {_show(kid)} is not one of Apple's keys"
    signature = _b64decode(signature_b64)
    if signature is None:
        return Verdict.INVALID, "JWS signature is not valid base64url"
    if len(signature) != 64:
        return Verdict.INVALID, f"JWS signature is {len(signature)} bytes, ES256 needs 64 (R||S)"
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    production = kid == AAK_PRODUCTION_KID
    key_name = "production key" if production else f"development key {kid}"
    if not _verifies(key, der, signing_input.encode("ascii")):
        return Verdict.INVALID, f"signature does not verify against Apple's {key_name}"
    if not production:
        return Verdict.DEVELOPMENT, f"signed with Apple's {key_name}; not a production install"
    return Verdict.VALID, ""


def parse_aak(payload: dict[str, Any]) -> SkanPostback:
    """Verify an AdAttributionKit postback and extract its fields.

    Only ``jws-string`` is signed; ``conversion-value``, ``coarse-conversion-value``,
    ``ad-interaction-type`` and ``country-code`` are read from the outer body as sent. A JWS
    signed with a development key yields ``Verdict.DEVELOPMENT``; a bad signature, unknown
    ``kid`` or an ``alg`` other than ES256 yields ``Verdict.INVALID``. Raises :class:`SkanError`
    when the body or the JWS structure is malformed or ``postback-identifier`` is missing.
    """
    data = _require_object(payload, "AdAttributionKit postback")
    jws = _text(data, "jws-string", "AdAttributionKit postback", required=True) or ""
    segments = jws.split(".")
    if len(segments) != 3 or not segments[0].isascii() or not segments[1].isascii():
        raise SkanError("'jws-string' is not a compact JWS (header.payload.signature)")
    header = _jws_json(segments[0], "header")
    claims = _jws_json(segments[1], "payload")
    verdict, reason = _aak_verdict(header, f"{segments[0]}.{segments[1]}", segments[2])

    ctx = "AdAttributionKit JWS payload"
    conversion_type = (_text(claims, "conversion-type", ctx) or "").lower()
    source_app_id = _integer(claims, "publisher-item-identifier", ctx)
    return SkanPostback(
        protocol="adattributionkit",
        version="aak",
        verdict=verdict,
        reason=reason,
        dedup_key=(_text(claims, "postback-identifier", ctx, required=True) or "").lower(),
        ad_network_id=_text(claims, "ad-network-identifier", ctx, required=True) or "",
        campaign_id=None,
        source_identifier=_digits(claims, "source-identifier", ctx) or "",
        app_id=str(_integer(claims, "advertised-item-identifier", ctx, required=True)),
        source_app_id="" if source_app_id is None else str(source_app_id),
        source_domain=_text(claims, "source-domain", ctx) or "",
        redownload={"download": False, "redownload": True}.get(conversion_type),
        fidelity_type=None,
        did_win=_flag(claims, "did-win", ctx),
        postback_sequence_index=_integer(claims, "postback-sequence-index", ctx) or 0,
        conversion_value=_conversion_value(data),
        coarse_conversion_value=_coarse_value(data),
        conversion_type=conversion_type,
        interaction_type=(_text(data, "ad-interaction-type", "postback") or "").lower(),
        country=(_text(data, "country-code", "postback") or "").upper(),
    )
