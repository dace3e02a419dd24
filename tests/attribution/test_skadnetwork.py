"""Apple SKAdNetwork / AdAttributionKit postback verification, driven by the shared test vectors."""

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.parsing import skadnetwork
from attribution.parsing.skadnetwork import (
    SkanError,
    SkanPostback,
    Verdict,
    parse_aak,
    parse_skan,
    skan_message,
)

SEP = "\u2063"
VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "skan-test-vectors.json").read_text(
        encoding="utf-8"
    )
)
SKAN_VECTORS = [v for v in VECTORS if "jws-string" not in v["postback"]]
AAK_VECTORS = [v for v in VECTORS if "jws-string" in v["postback"]]
VALID_SKAN_VECTORS = [v for v in SKAN_VECTORS if v["expect_valid_apple_signature"]]
DEV_AAK = next(v for v in AAK_VECTORS if "development" in v["expect"])

# Fields Apple signs, by version (4.0 signs source-app-id or source-domain, whichever is present).
_V2 = ["version", "ad-network-id", "campaign-id", "app-id", "transaction-id", "redownload"]
SIGNED_FIELDS = {
    "2.0": _V2,
    "2.1": _V2,
    "2.2": [*_V2, "fidelity-type"],
    "3.0": [*_V2, "fidelity-type", "did-win"],
    "4.0": [
        *("version", "ad-network-id", "source-identifier", "app-id", "transaction-id"),
        *("redownload", "source-domain", "fidelity-type", "did-win", "postback-sequence-index"),
    ],
}
SKAN_KEYS = sorted(
    {key for v in SKAN_VECTORS for key in v["postback"]}
    | {"source-domain", "coarse-conversion-value", "postback-sequence-index"}
)


def _vector_id(vector: dict[str, Any]) -> str:
    return f"{VECTORS.index(vector)}-v{vector['version']}"


def _signed_fields(vector: dict[str, Any]) -> list[str]:
    fields = [*SIGNED_FIELDS[vector["version"]], "source-app-id"]
    return [field for field in fields if field in vector["postback"]]


def _changed(value: Any) -> Any:
    """A different value of the same shape, so the postback stays well-formed."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value.isdigit():
        return value[:-1] + str((int(value[-1]) + 1) % 10)
    return value[:-1] + ("y" if value[-1] == "x" else "x")


def _tampered(vector: dict[str, Any], field: str) -> dict[str, Any]:
    payload = copy.deepcopy(vector["postback"])
    if field != "version":
        payload[field] = _changed(payload[field])
    elif payload["version"] == "4.0":
        # Relabel a v4 postback as v3, giving it the campaign-id a v3 layout needs.
        payload["version"] = "3.0"
        payload["campaign-id"] = int(payload["source-identifier"][-2:])
    else:
        payload["version"] = {"2.0": "2.1", "2.1": "2.0", "2.2": "2.1", "3.0": "2.2"}[
            payload["version"]
        ]
    return payload


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_json(obj: Any) -> str:
    return _b64url(json.dumps(obj).encode())


def _jws_parts(vector: dict[str, Any]) -> list[str]:
    return vector["postback"]["jws-string"].split(".")


def _with_jws(vector: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    payload = copy.deepcopy(vector["postback"])
    payload["jws-string"] = ".".join(parts)
    return payload


def _aak_expected(vector: dict[str, Any]) -> Verdict:
    if "development key" in vector["expect"]:
        return Verdict.DEVELOPMENT
    if "does not verify" in vector["expect"]:
        return Verdict.INVALID
    return Verdict.VALID


# --- the shared vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("vector", SKAN_VECTORS, ids=_vector_id)
def test_every_skan_vector_gets_its_expected_verdict(vector: dict[str, Any]) -> None:
    result = parse_skan(vector["postback"])

    if vector["expect_valid_apple_signature"]:
        assert (result.verdict, result.reason) == (Verdict.VALID, "")
    else:
        assert result.verdict is Verdict.INVALID
        assert "does not verify" in result.reason


@pytest.mark.parametrize("vector", SKAN_VECTORS, ids=_vector_id)
def test_skan_message_is_exactly_what_apple_signed(vector: dict[str, Any]) -> None:
    assert skan_message(vector["postback"]) == vector["signed_message"]


@pytest.mark.parametrize("vector", AAK_VECTORS, ids=_vector_id)
def test_every_aak_vector_gets_its_expected_verdict(vector: dict[str, Any]) -> None:
    assert parse_aak(vector["postback"]).verdict is _aak_expected(vector)


def test_it_verifies_p192_signatures_for_version_2_0() -> None:
    vector = next(v for v in VALID_SKAN_VECTORS if v["version"] == "2.0")

    assert parse_skan(vector["postback"]).verdict is Verdict.VALID


def test_the_invalid_reason_names_the_key_for_the_version() -> None:
    invalid = [v for v in SKAN_VECTORS if not v["expect_valid_apple_signature"]]
    v20 = next(v for v in invalid if v["version"] == "2.0")
    v40 = next(v for v in invalid if v["version"] == "4.0")

    assert (
        parse_skan(v20["postback"]).reason == "signature does not verify against Apple's P-192 key"
    )
    assert (
        parse_skan(v40["postback"]).reason == "signature does not verify against Apple's P-256 key"
    )


# --- tampering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vector", "field"),
    [
        pytest.param(v, field, id=f"{_vector_id(v)}-{field}")
        for v in VALID_SKAN_VECTORS
        for field in _signed_fields(v)
    ],
)
def test_changing_any_signed_field_makes_a_valid_postback_invalid(
    vector: dict[str, Any], field: str
) -> None:
    result = parse_skan(_tampered(vector, field))

    assert result.verdict is Verdict.INVALID
    assert "does not verify" in result.reason


@pytest.mark.parametrize("vector", VALID_SKAN_VECTORS, ids=_vector_id)
def test_forwarder_keys_do_not_break_a_valid_postback(vector: dict[str, Any]) -> None:
    payload = copy.deepcopy(vector["postback"]) | {
        "timestamp": "12342352346",
        "adjust-campaign": "spring_sale",
        "partner-campaign-id": "J4gijuk04yCAm8RR",
        "ip-address": "17.58.56.232",
    }

    assert parse_skan(payload).verdict is Verdict.VALID
    assert skan_message(payload) == vector["signed_message"]


def test_a_changed_signature_is_invalid() -> None:
    payload = copy.deepcopy(VALID_SKAN_VECTORS[0]["postback"])
    signature = bytearray(base64.b64decode(payload["attribution-signature"]))
    signature[-1] ^= 0x01
    payload["attribution-signature"] = base64.b64encode(bytes(signature)).decode()

    assert parse_skan(payload).verdict is Verdict.INVALID


def test_an_undecodable_signature_is_invalid_not_an_error() -> None:
    payload = VALID_SKAN_VECTORS[0]["postback"] | {"attribution-signature": "not base64!!"}

    result = parse_skan(payload)

    assert (result.verdict, result.reason) == (
        Verdict.INVALID,
        "attribution-signature is not valid base64",
    )


@pytest.mark.parametrize("blank", [None, ""])
def test_a_missing_signature_is_invalid(blank: str | None) -> None:
    payload = VALID_SKAN_VECTORS[0]["postback"] | {"attribution-signature": blank}

    result = parse_skan(payload)

    assert (result.verdict, result.reason) == (
        Verdict.INVALID,
        "postback carries no attribution-signature",
    )


# --- lenient input ---------------------------------------------------------------------------


def test_it_accepts_numbers_and_booleans_that_arrive_as_strings() -> None:
    vector = next(v for v in VALID_SKAN_VECTORS if v["version"] == "3.0")
    payload = vector["postback"] | {
        "campaign-id": "42",
        "app-id": " 525463029 ",
        "redownload": "TRUE",
        "source-app-id": "1234567891",
        "fidelity-type": "1",
        "did-win": 1,
        "conversion-value": "20",
    }

    result = parse_skan(payload)

    assert result.verdict is Verdict.VALID
    assert (result.campaign_id, result.did_win, result.conversion_value) == (42, True, 20)


@pytest.mark.parametrize("version", ["4.0", "4", 4, 4.0, " 4.0 "])
def test_it_accepts_the_version_in_any_spelling(version: Any) -> None:
    payload = VALID_SKAN_VECTORS[0]["postback"] | {"version": version}

    assert parse_skan(payload).verdict is Verdict.VALID


def test_it_accepts_a_v4_source_identifier_sent_as_a_number() -> None:
    payload = VALID_SKAN_VECTORS[0]["postback"] | {"source-identifier": 5239}

    assert parse_skan(payload).verdict is Verdict.VALID


def test_it_lower_cases_the_coarse_conversion_value() -> None:
    vector = next(v for v in SKAN_VECTORS if v["postback"].get("coarse-conversion-value") == "LOW")

    assert parse_skan(vector["postback"]).coarse_conversion_value == "low"


def test_it_signs_a_zero_source_app_id_rather_than_dropping_it() -> None:
    vector = next(v for v in SKAN_VECTORS if v["postback"].get("source-app-id") == 0)

    assert f"{SEP}0{SEP}" in skan_message(vector["postback"])
    assert parse_skan(vector["postback"]).source_app_id == "0"


@pytest.mark.parametrize("version", [None, "1.0", ""])
def test_a_v1_message_has_no_version_and_four_values(version: str | None) -> None:
    payload = {
        "ad-network-id": "com.example",
        "campaign-id": 42,
        "app-id": 525463029,
        "transaction-id": "6aafb7a5-0170-41b5-bbe4-fe71dedf1e28",
        "redownload": True,
        "source-app-id": 1234567891,
    }
    if version is not None:
        payload["version"] = version

    assert skan_message(payload) == SEP.join(
        ["com.example", "42", "525463029", "6aafb7a5-0170-41b5-bbe4-fe71dedf1e28"]
    )
    assert parse_skan(payload).version == "1.0"


def test_a_v4_postback_signs_source_app_id_in_preference_to_source_domain() -> None:
    payload = VALID_SKAN_VECTORS[0]["postback"] | {"source-app-id": 1234567891}

    assert f"{SEP}1234567891{SEP}" in skan_message(payload)
    assert "example.com" not in skan_message(payload)


# --- what gets extracted ---------------------------------------------------------------------


def test_it_accepts_apples_v4_example() -> None:
    result = parse_skan(VALID_SKAN_VECTORS[0]["postback"])

    assert result == SkanPostback(
        protocol="skadnetwork",
        version="4.0",
        verdict=Verdict.VALID,
        reason="",
        dedup_key="6aafb7a5-0170-41b5-bbe4-fe71dedf1e30",
        ad_network_id="com.example",
        campaign_id=None,
        source_identifier="5239",
        app_id="525463029",
        source_app_id="",
        source_domain="example.com",
        redownload=False,
        fidelity_type=1,
        did_win=True,
        postback_sequence_index=0,
        conversion_value=63,
        coarse_conversion_value="",
        conversion_type="download",
        interaction_type="click",
        country="",
    )


def test_it_accepts_apples_winning_v3_example() -> None:
    vector = next(
        v for v in VALID_SKAN_VECTORS if v["version"] == "3.0" and v["postback"]["did-win"]
    )

    result = parse_skan(vector["postback"])

    assert result.verdict is Verdict.VALID
    assert (result.campaign_id, result.source_identifier) == (42, "")
    assert (result.source_app_id, result.redownload, result.did_win) == ("1234567891", True, True)
    assert (result.conversion_type, result.conversion_value) == ("redownload", 20)
    assert result.postback_sequence_index == 0


def test_versions_before_3_have_no_did_win_and_before_2_2_no_fidelity() -> None:
    vector = next(v for v in VALID_SKAN_VECTORS if v["version"] == "2.1")

    result = parse_skan(vector["postback"])

    assert (result.did_win, result.fidelity_type, result.interaction_type) == (None, None, "")


def test_a_view_through_postback_has_interaction_type_view() -> None:
    vector = next(v for v in SKAN_VECTORS if v["postback"].get("fidelity-type") == 0)

    assert parse_skan(vector["postback"]).interaction_type == "view"


# --- malformed SKAN input --------------------------------------------------------------------


def _v3(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(next(v for v in VALID_SKAN_VECTORS if v["version"] == "3.0"))
    payload = payload["postback"]
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param([], "must be a JSON object, got list", id="a list"),
        pytest.param("version=4.0", "must be a JSON object, got str", id="a string"),
        pytest.param(None, "must be a JSON object, got NoneType", id="None"),
        pytest.param(_v3(transaction_id=None), "missing 'transaction-id'", id="no transaction-id"),
        pytest.param(_v3(version="5.0"), "unsupported SKAdNetwork version '5.0'", id="version 5"),
        pytest.param(_v3(version=True), "'version' must be a string", id="version true"),
        pytest.param(_v3(campaign_id="forty-two"), "'campaign-id' must be", id="word campaign"),
        pytest.param(_v3(campaign_id=4.5), "'campaign-id' must be", id="fractional campaign"),
        pytest.param(_v3(campaign_id=-1), "'campaign-id' must be", id="negative campaign"),
        pytest.param(_v3(campaign_id=True), "'campaign-id' must be", id="boolean campaign"),
        pytest.param(_v3(campaign_id=10**5000), "'campaign-id' must be", id="huge campaign"),
        pytest.param(_v3(app_id="9" * 40), "'app-id' must be", id="huge app-id"),
        pytest.param(_v3(campaign_id=None), "missing 'campaign-id'", id="no campaign-id"),
        pytest.param(_v3(redownload="maybe"), "'redownload' must be true or false", id="redl"),
        pytest.param(_v3(ad_network_id=7), "'ad-network-id' must be a string", id="numeric net"),
        pytest.param(_v3(conversion_value=64), "'conversion-value' must be 0..63", id="cv 64"),
        pytest.param(_v3(coarse_conversion_value="huge"), "low, medium or high", id="coarse"),
        pytest.param(_v3(attribution_signature=123), "base64 string", id="numeric signature"),
        pytest.param(
            VALID_SKAN_VECTORS[0]["postback"] | {"source-identifier": None},
            "SKAdNetwork 4.0 postback is missing 'source-identifier'",
            id="v4 without source-identifier",
        ),
    ],
)
def test_malformed_skan_input_raises_skan_error(payload: Any, message: str) -> None:
    with pytest.raises(SkanError, match=re.escape(message)):
        parse_skan(payload)


def test_skan_message_rejects_malformed_input_too() -> None:
    with pytest.raises(SkanError, match="missing 'transaction-id'"):
        skan_message(_v3(transaction_id=None))


# --- AdAttributionKit ------------------------------------------------------------------------


def test_it_reads_the_development_aak_example() -> None:
    result = parse_aak(DEV_AAK["postback"])

    assert (result.protocol, result.version, result.verdict) == (
        "adattributionkit",
        "aak",
        Verdict.DEVELOPMENT,
    )
    assert "development key apple-development-identifier/1" in result.reason
    assert result.dedup_key == "85546eb7-fd39-44bc-8990-c98a4ac36a49"
    assert (result.ad_network_id, result.source_identifier) == (
        "development.adattributionkit",
        "1234",
    )
    assert (result.app_id, result.source_app_id, result.campaign_id) == ("10738027756", "0", None)
    assert (result.conversion_type, result.redownload) == ("re-engagement", None)
    assert (result.did_win, result.postback_sequence_index) == (True, 0)
    assert (result.conversion_value, result.coarse_conversion_value) == (24, "")
    assert (result.interaction_type, result.country) == ("click", "US")


def test_a_production_kid_that_does_not_verify_is_invalid() -> None:
    vector = next(v for v in AAK_VECTORS if v["jws_header"]["kid"] == "apple-cas-identifier/0")

    result = parse_aak(vector["postback"])

    assert (result.verdict, result.reason) == (
        Verdict.INVALID,
        "signature does not verify against Apple's production key",
    )


def test_a_tampered_aak_payload_is_invalid() -> None:
    header, _, signature = _jws_parts(DEV_AAK)
    claims = DEV_AAK["jws_payload"] | {"source-identifier": "9999"}

    result = parse_aak(_with_jws(DEV_AAK, [header, _b64url_json(claims), signature]))

    assert result.verdict is Verdict.INVALID
    assert result.source_identifier == "9999"


def test_a_tampered_aak_signature_is_invalid() -> None:
    header, claims, signature = _jws_parts(DEV_AAK)
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[0] ^= 0x80

    assert parse_aak(_with_jws(DEV_AAK, [header, claims, _b64url(bytes(raw))])).verdict is (
        Verdict.INVALID
    )


def test_relabelling_a_development_jws_as_production_is_invalid() -> None:
    _, claims, signature = _jws_parts(DEV_AAK)
    header = _b64url_json({"kid": "apple-cas-identifier/0", "alg": "ES256"})

    assert parse_aak(_with_jws(DEV_AAK, [header, claims, signature])).verdict is Verdict.INVALID


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"kid": "someone-elses-key/0", "alg": "ES256"}, "is not one of Apple's keys"),
        ({"alg": "ES256"}, "is not one of Apple's keys"),
        ({"kid": "apple-development-identifier/1", "alg": "HS256"}, "only uses ES256"),
        ({"kid": "apple-development-identifier/1", "alg": "none"}, "only uses ES256"),
        ({"kid": "apple-development-identifier/1"}, "only uses ES256"),
    ],
)
def test_an_unknown_kid_or_non_es256_alg_is_invalid(header: dict[str, str], reason: str) -> None:
    _, claims, signature = _jws_parts(DEV_AAK)

    result = parse_aak(_with_jws(DEV_AAK, [_b64url_json(header), claims, signature]))

    assert result.verdict is Verdict.INVALID
    assert reason in result.reason


@pytest.mark.parametrize("signature", ["", "AAAA", "!!!!"])
def test_a_short_or_undecodable_aak_signature_is_invalid(signature: str) -> None:
    header, claims, _ = _jws_parts(DEV_AAK)

    assert parse_aak(_with_jws(DEV_AAK, [header, claims, signature])).verdict is Verdict.INVALID


def test_unsigned_aak_fields_can_change_without_touching_the_verdict() -> None:
    payload = DEV_AAK["postback"] | {
        "conversion-value": 5,
        "coarse-conversion-value": "High",
        "ad-interaction-type": "VIEW",
        "country-code": "de",
    }

    result = parse_aak(payload)

    assert result.verdict is Verdict.DEVELOPMENT
    assert (result.conversion_value, result.coarse_conversion_value) == (5, "high")
    assert (result.interaction_type, result.country) == ("view", "DE")


def test_a_jws_verifying_under_the_production_kid_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    # No genuine production-signed example is public, so stand in our own key for Apple's.
    private_key = ec.generate_private_key(ec.SECP256R1())
    monkeypatch.setitem(skadnetwork._AAK_KEYS, "apple-cas-identifier/0", private_key.public_key())
    header = _b64url_json({"kid": "apple-cas-identifier/0", "alg": "ES256"})
    claims = _b64url_json(DEV_AAK["jws_payload"] | {"conversion-type": "download"})
    r, s = decode_dss_signature(
        private_key.sign(f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    )
    signature = _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    result = parse_aak(_with_jws(DEV_AAK, [header, claims, signature]))

    assert (result.verdict, result.reason) == (Verdict.VALID, "")
    assert (result.conversion_type, result.redownload) == ("download", False)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param([DEV_AAK["postback"]], "must be a JSON object", id="a list"),
        pytest.param({}, "missing 'jws-string'", id="no jws-string"),
        pytest.param({"jws-string": 42}, "'jws-string' must be a string", id="numeric jws"),
        pytest.param({"jws-string": "abc.def"}, "not a compact JWS", id="two segments"),
        pytest.param({"jws-string": "!!.e30.sig"}, "header is not base64url", id="bad header"),
        pytest.param({"jws-string": "bm9wZQ.e30.sig"}, "header is not JSON", id="text header"),
        pytest.param({"jws-string": "W10.e30.sig"}, "header must be a JSON object", id="list"),
        pytest.param(
            _with_jws(DEV_AAK, [_jws_parts(DEV_AAK)[0], _b64url_json({}), "sig"]),
            "missing 'postback-identifier'",
            id="no postback-identifier",
        ),
    ],
)
def test_malformed_aak_input_raises_skan_error(payload: Any, message: str) -> None:
    with pytest.raises(SkanError, match=re.escape(message)):
        parse_aak(payload)


# --- nothing but SkanPostback or SkanError, whatever arrives ---------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["1", "0", "true", "FALSE", "4.0", "3.0", "1.0", "42", "-3", " 7 ", "LOW"])
    | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
AAK_KEYS = [
    "jws-string",
    "conversion-value",
    "coarse-conversion-value",
    "ad-interaction-type",
    "country-code",
]
CLAIM_KEYS = [*DEV_AAK["jws_payload"], "source-domain"]
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _parses_or_rejects(parse: Any, payload: Any) -> None:
    try:
        result = parse(payload)
    except SkanError:
        return
    assert isinstance(result, SkanPostback)
    assert isinstance(result.verdict, Verdict)


@FUZZ
@given(
    payload=JSON_VALUES
    | st.dictionaries(st.sampled_from(SKAN_KEYS + AAK_KEYS) | st.text(max_size=8), JSON_VALUES)
)
def test_arbitrary_json_gives_a_postback_or_a_skan_error(payload: Any) -> None:
    _parses_or_rejects(parse_skan, payload)
    _parses_or_rejects(parse_aak, payload)


@FUZZ
@given(
    vector=st.sampled_from(SKAN_VECTORS),
    changes=st.dictionaries(st.sampled_from(SKAN_KEYS), JSON_VALUES, max_size=4),
)
def test_a_skan_vector_with_arbitrary_values_gives_a_postback_or_a_skan_error(
    vector: dict[str, Any], changes: dict[str, Any]
) -> None:
    _parses_or_rejects(parse_skan, vector["postback"] | changes)


@FUZZ
@given(
    header=st.dictionaries(st.sampled_from(["kid", "alg", "typ"]), JSON_VALUES)
    | st.fixed_dictionaries(
        {
            "kid": st.sampled_from([*sorted(skadnetwork._AAK_KEYS), "x"]),
            "alg": st.sampled_from(["ES256", "RS256"]),
        }
    ),
    claims=st.dictionaries(st.sampled_from(CLAIM_KEYS), JSON_VALUES),
    signature=st.binary(max_size=70).map(_b64url) | st.text(max_size=90),
    outer=st.dictionaries(st.sampled_from(AAK_KEYS[1:]), JSON_VALUES),
)
def test_an_aak_body_with_arbitrary_parts_gives_a_postback_or_a_skan_error(
    header: dict[str, Any], claims: dict[str, Any], signature: str, outer: dict[str, Any]
) -> None:
    claims = DEV_AAK["jws_payload"] | claims
    jws = f"{_b64url_json(header)}.{_b64url_json(claims)}.{signature}"

    _parses_or_rejects(parse_aak, outer | {"jws-string": jws})
