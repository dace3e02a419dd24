"""Apple's fixed paths: every reference vector gets its verdict over HTTP, and is stored once."""

import copy
import json
from pathlib import Path

import pytest

from attribution.models import Postback, PostbackEvent
from attribution.processing import single
from tests.factories import AppFactory

pytestmark = pytest.mark.django_db

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "skan-test-vectors.json").read_text()
)
SKAN_PATH = "/.well-known/skadnetwork/report-attribution/"
AAK_PATH = "/.well-known/appattribution/report-attribution/"


def expected_verdict(vector: dict) -> str:
    if "expect_valid_apple_signature" in vector:
        return "valid" if vector["expect_valid_apple_signature"] else "invalid"
    return "development" if "development" in vector["expect"] else "invalid"


def post(client, vector: dict, payload: dict | None = None):
    path = AAK_PATH if "jws-string" in vector["postback"] else SKAN_PATH
    return client.post(
        path, json.dumps(payload or vector["postback"]), content_type="application/json"
    )


@pytest.mark.parametrize(
    "vector", VECTORS, ids=[f"{n}-{v['version']}" for n, v in enumerate(VECTORS)]
)
def test_every_reference_vector_gets_its_verdict(client, vector):
    response = post(client, vector)

    assert response.status_code == 200
    body = response.json()
    verdict = expected_verdict(vector)
    assert body["signature"] == verdict
    row = Postback.objects.get(pk=body["id"])
    assert row.signature == verdict
    if verdict == "invalid":
        assert body["status"] == "rejected"
        assert row.status == Postback.Status.REJECTED
        assert row.reason
    else:
        assert body["status"] == "accepted"
        assert row.status == Postback.Status.RECEIVED


def test_a_retried_apple_postback_is_a_duplicate(client):
    vector = VECTORS[0]
    first, second = post(client, vector), post(client, vector)
    assert second.json() == {**first.json(), "status": "duplicate"}
    assert Postback.objects.count() == 1


def test_changing_a_signed_field_makes_a_valid_postback_invalid(client):
    tampered = copy.deepcopy(VECTORS[0]["postback"])
    tampered["source-identifier"] = "5240"
    response = post(client, VECTORS[0], tampered)
    assert response.json()["signature"] == "invalid"


def test_forwarder_keys_do_not_break_verification(client):
    forwarded = {
        **VECTORS[2]["postback"],
        "timestamp": 1710439480,
        "adjust-campaign": "x",
        "partner-campaign-id": "123",
    }
    assert post(client, VECTORS[2], forwarded).json()["signature"] == "valid"


def test_a_valid_winning_postback_becomes_an_install_for_the_app(client):
    app = AppFactory(platform="ios", app_store_id="525463029")
    response = post(client, VECTORS[0])  # v4, did-win true
    single.postback_process(postback_id=response.json()["id"])
    event = PostbackEvent.objects.get()
    assert (event.kind, event.app, event.platform) == ("install", app, "ios")
    assert event.skan["source_identifier"] == "5239"
    assert event.skan["conversion_value"] == 63
    assert event.click_id == "" and event.idfa == ""  # never user-level


def test_a_non_winning_or_development_postback_is_never_an_install(client):
    non_winning = post(client, VECTORS[3])  # v3, did-win false
    development = post(client, next(v for v in VECTORS if "development" in v.get("expect", "")))
    for response in (non_winning, development):
        single.postback_process(postback_id=response.json()["id"])
    kinds = set(PostbackEvent.objects.values_list("kind", flat=True))
    assert kinds == {"rejected"}


@pytest.mark.parametrize(
    "body", ["not json", "[]", json.dumps({"version": "4.0"}), json.dumps({"jws-string": 5})]
)
def test_malformed_apple_postbacks_are_400_with_a_reason(client, body):
    for path in (SKAN_PATH, AAK_PATH):
        response = client.post(path, body, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]
    assert Postback.objects.count() == 0


def test_apple_paths_take_only_post(client):
    assert client.get(SKAN_PATH).status_code == 405
