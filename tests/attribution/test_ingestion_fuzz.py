"""Whatever a sender sends, the answer is never a 500."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.models import PostbackSource
from tests.factories import PostbackSourceFactory

pytestmark = pytest.mark.django_db

KINDS = ["appsflyer", "adjust", "branch", "singular", "kochava", "s2s"]
ALLOWED = {200, 400, 403, 404, 405, 413}
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
KEYS = st.sampled_from(
    [
        "clickid",
        "click_id",
        "appsflyer_id",
        "adid",
        "id",
        "name",
        "event",
        "event_name",
        "txid",
        "amount",
        "revenue_float",
        "event_revenue",
        "currency",
        "created_at",
        "install_unix_ts",
        "event_time",
        "timestamp",
        "activity_kind",
        "idfa",
        "gps_adid",
        "platform",
        "country_code",
        "is_retargeting",
        "blocked_reason",
        "status",
        "player_id",
        "evtname",
        "utc",
        "device_id",
        "event_id",
        "kochava_device_id",
        "user_data",
    ]
) | st.text(max_size=12)
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["{idfa}", "(idfa)", "${x}", "NaN", "1e999", "-1", "true", "0", ""]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@pytest.fixture
def sources(db) -> dict[str, PostbackSource]:
    return {kind: PostbackSourceFactory(kind=kind) for kind in KINDS}


@FUZZ
@given(kind=st.sampled_from(KINDS), params=st.dictionaries(KEYS, VALUES, max_size=8))
def test_query_strings_never_give_a_500(client, sources, kind, params):
    response = client.get(f"/postbacks/{kind}/{sources[kind].token}/", params)
    assert response.status_code in ALLOWED


@FUZZ
@given(kind=st.sampled_from(KINDS), raw=st.binary(max_size=200))
def test_raw_query_bytes_never_give_a_500(client, sources, kind, raw):
    query = raw.decode("latin-1")
    response = client.get(f"/postbacks/{kind}/{sources[kind].token}/", QUERY_STRING=query)
    assert response.status_code in ALLOWED


@FUZZ
@given(kind=st.sampled_from(KINDS), form=st.dictionaries(KEYS, VALUES, max_size=8))
def test_form_bodies_never_give_a_500(client, sources, kind, form):
    response = client.post(f"/postbacks/{kind}/{sources[kind].token}/", form)
    assert response.status_code in ALLOWED


@FUZZ
@given(kind=st.sampled_from(KINDS), data=st.dictionaries(KEYS, JSON_VALUES, max_size=8))
def test_json_bodies_never_give_a_500(client, sources, kind, data):
    response = client.post(
        f"/postbacks/{kind}/{sources[kind].token}/",
        json.dumps(data),
        content_type="application/json",
    )
    assert response.status_code in ALLOWED


@FUZZ
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "",
        ]
    ),
    kind=st.sampled_from(KINDS),
)
def test_raw_bodies_never_give_a_500(client, sources, body, content_type, kind):
    response = client.generic(
        "POST", f"/postbacks/{kind}/{sources[kind].token}/", body, content_type=content_type
    )
    assert response.status_code in ALLOWED


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/.well-known/skadnetwork/report-attribution/",
            "/.well-known/appattribution/report-attribution/",
        ]
    ),
    data=st.dictionaries(
        st.sampled_from(
            [
                "version",
                "ad-network-id",
                "campaign-id",
                "source-identifier",
                "app-id",
                "transaction-id",
                "redownload",
                "fidelity-type",
                "did-win",
                "conversion-value",
                "postback-sequence-index",
                "attribution-signature",
                "jws-string",
            ]
        ),
        JSON_VALUES,
        max_size=10,
    ),
)
def test_apple_bodies_never_give_a_500(client, path, data):
    response = client.post(path, json.dumps(data), content_type="application/json")
    assert response.status_code in ALLOWED
