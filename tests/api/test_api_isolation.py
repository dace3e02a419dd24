"""Isolation: through every endpoint, id and filter, an affiliate reaches its own data only."""

import json
from types import SimpleNamespace

import pytest

from affiliates.models import Affiliate, TrackingLink
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PERIOD = "period=custom&start=2026-11-01&end=2026-11-07"


# (name, method, url, body); {alice}, {campaign}, {link}, {conversion}, {payout} filled in.
AFFILIATE_ENDPOINTS = [
    ("links", "get", "/api/v1/links/", None),
    ("links of alice", "get", "/api/v1/links/?affiliate={alice}", None),
    ("links on alice's campaign", "get", "/api/v1/links/?campaign={campaign}", None),
    ("alice's link", "get", "/api/v1/links/{link}/", None),
    ("change alice's link", "patch", "/api/v1/links/{link}/", {"name": "mine now"}),
    (
        "link for alice",
        "post",
        "/api/v1/links/",
        {"campaign": "{campaign}", "affiliate": "{alice}"},
    ),
    ("conversions", "get", "/api/v1/conversions/", None),
    ("conversions of alice", "get", "/api/v1/conversions/?affiliate={alice}", None),
    ("conversions on alice's campaign", "get", "/api/v1/conversions/?campaign={campaign}", None),
    ("alice's conversion", "get", "/api/v1/conversions/{conversion}/", None),
    ("clicks", "get", "/api/v1/clicks/", None),
    ("clicks of alice", "get", "/api/v1/clicks/?affiliate={alice}", None),
    ("clicks on alice's campaign", "get", "/api/v1/clicks/?campaign={campaign}", None),
    ("payouts", "get", "/api/v1/payouts/", None),
    ("payouts of alice", "get", "/api/v1/payouts/?affiliate={alice}", None),
    ("alice's payout", "get", "/api/v1/payouts/{payout}/", None),
    ("stats", "get", f"/api/v1/stats/?{PERIOD}", None),
    ("stats of alice", "get", f"/api/v1/stats/?affiliate={{alice}}&{PERIOD}", None),
    ("stats on alice's campaign", "get", f"/api/v1/stats/?campaign={{campaign}}&{PERIOD}", None),
    ("by campaign", "get", f"/api/v1/stats/breakdown/?by=campaign&{PERIOD}", None),
    ("by country", "get", f"/api/v1/stats/breakdown/?by=country&{PERIOD}", None),
    ("by platform", "get", f"/api/v1/stats/breakdown/?by=platform&{PERIOD}", None),
    ("by sub1", "get", f"/api/v1/stats/breakdown/?by=sub1&{PERIOD}", None),
    (
        "alice's breakdown",
        "get",
        f"/api/v1/stats/breakdown/?by=sub1&affiliate={{alice}}&{PERIOD}",
        None,
    ),
    ("players", "get", "/api/v1/reports/players/", None),
    ("players of alice", "get", "/api/v1/reports/players/?affiliate={alice}", None),
    ("players on alice's campaign", "get", "/api/v1/reports/players/?campaign={campaign}", None),
    ("players as CSV", "get", "/api/v1/reports/players/?format=csv", None),
    ("cohorts", "get", "/api/v1/reports/cohorts/?through=2026-12", None),
    ("cohorts of alice", "get", "/api/v1/reports/cohorts/?affiliate={alice}&through=2026-12", None),
    (
        "cumulative NGR per player",
        "get",
        "/api/v1/reports/cohorts/?by=ftd_month&metric=ngr_per_player&through=2026-12",
        None,
    ),
    ("cohorts as CSV", "get", "/api/v1/reports/cohorts/?format=csv&through=2026-12", None),
    ("cohorts by a model", "get", "/api/v1/reports/cohorts/?model=linear&through=2026-12", None),
    ("stats by a model", "get", f"/api/v1/stats/?model=data_driven&{PERIOD}", None),
    ("offers", "get", "/api/v1/offers/", None),
    ("offers of alice", "get", "/api/v1/offers/?affiliate={alice}", None),
]
MANAGER_ENDPOINTS = [
    ("affiliates", "get", "/api/v1/affiliates/", None),
    ("alice", "get", "/api/v1/affiliates/{alice}/", None),
    ("suspend alice", "patch", "/api/v1/affiliates/{alice}/", {"status": "suspended"}),
    (
        "new affiliate",
        "post",
        "/api/v1/affiliates/",
        {"username": "eve", "password": "a long enough secret 42", "name": "Eve"},
    ),
    ("campaigns", "get", "/api/v1/campaigns/", None),
    ("campaign", "get", "/api/v1/campaigns/{campaign}/", None),
    ("pause campaign", "patch", "/api/v1/campaigns/{campaign}/", {"status": "paused"}),
    ("new campaign", "post", "/api/v1/campaigns/", {"name": "X", "brand": 1}),
    ("plans", "get", "/api/v1/plans/", None),
    ("new plan", "post", "/api/v1/plans/", {"name": "Mine"}),
    ("player activity", "post", "/api/v1/player-activity/", {"player_id": "X"}),
    ("model comparison", "get", "/api/v1/reports/models/", None),
]
EVERY_ENDPOINT = AFFILIATE_ENDPOINTS + MANAGER_ENDPOINTS


def fill(template: str, world: SimpleNamespace) -> str:
    return template.format(
        alice=world.alice.pk,
        campaign=world.campaign.pk,
        link=world.link.pk,
        conversion=world.conversion.pk,
        payout=world.payout.pk,
    )


def send(client, world, method: str, url: str, body: dict | None):
    if body is not None:
        body = {
            k: int(fill(v, world)) if isinstance(v, str) and "{" in v else v
            for k, v in body.items()
        }
    return getattr(client, method)(fill(url, world), body, format="json")


def objects(value):
    """Every JSON object in an answer, however deeply nested."""
    if isinstance(value, dict):
        yield value
        for inner in value.values():
            yield from objects(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from objects(inner)


def assert_nothing_of_alice(response, world: SimpleNamespace) -> None:
    assert response.status_code in (200, 400, 403, 404), response.content
    text = response.content.decode()
    for secret in world.secrets:
        assert secret not in text
    if response.status_code != 200 or response["Content-Type"].startswith("text/csv"):
        return
    for obj in objects(json.loads(text)):
        assert obj.get("affiliate") != world.alice.pk, obj
    data = response.json()
    if "totals" in data:
        # Bob and charlie have no clicks or conversions of their own.
        assert data["totals"]["clicks"] == data["totals"]["installs"] == 0
        assert data.get("rows", []) == []


@pytest.mark.parametrize("viewer", ["charlie", "bob"])
@pytest.mark.parametrize(
    ("name", "method", "url", "body"), AFFILIATE_ENDPOINTS, ids=[e[0] for e in AFFILIATE_ENDPOINTS]
)
def test_another_affiliate_never_sees_or_changes_alices_data(
    request, api, world, viewer, name, method, url, body
):
    # given another affiliate (a stranger, or alice's own sub-affiliate) with a valid token
    client = api(request.getfixturevalue(viewer).user)

    # when it asks for alice's rows, by list, guessed id or filter
    response = send(client, world, method, url, body)

    # then it gets its own rows, an empty list, a 400 or a 404: never hers
    assert_nothing_of_alice(response, world)
    world.link.refresh_from_db()
    assert world.link.name == ""
    assert TrackingLink.objects.filter(affiliate=world.alice).count() == 1


@pytest.mark.parametrize(
    ("name", "method", "url", "body"), AFFILIATE_ENDPOINTS, ids=[e[0] for e in AFFILIATE_ENDPOINTS]
)
def test_alice_reaches_her_own_data_on_the_same_endpoints(api, world, name, method, url, body):
    """The matrix above is not vacuous: the same requests do reach alice's rows for her."""
    response = send(api(world.alice.user), world, method, url, body)

    assert response.status_code in (200, 201), response.content
    if response["Content-Type"].startswith("text/csv"):
        assert any(secret in response.content.decode() for secret in world.secrets)
        return
    data = response.json()
    if "totals" in data:
        assert data["totals"]["clicks"] == 1
    elif method == "get":
        assert any(secret in response.content.decode() for secret in world.secrets) or any(
            obj.get("id") in (world.conversion.pk, world.payout.pk) for obj in objects(data)
        )


@pytest.mark.parametrize(
    ("name", "method", "url", "body"), MANAGER_ENDPOINTS, ids=[e[0] for e in MANAGER_ENDPOINTS]
)
def test_affiliates_are_refused_on_manager_endpoints(api, world, name, method, url, body):
    response = send(api(world.alice.user), world, method, url, body)

    assert response.status_code == 403
    world.alice.refresh_from_db()
    assert world.alice.status == Affiliate.Status.ACTIVE
    assert not Affiliate.objects.filter(name="Eve").exists()


@pytest.mark.parametrize(
    ("name", "method", "url", "body"), EVERY_ENDPOINT, ids=[e[0] for e in EVERY_ENDPOINT]
)
def test_without_credentials_every_endpoint_answers_401(api, world, name, method, url, body):
    response = send(api(), world, method, url, body)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("status", ["pending", "suspended", "rejected"])
@pytest.mark.parametrize(
    ("name", "method", "url", "body"), EVERY_ENDPOINT, ids=[e[0] for e in EVERY_ENDPOINT]
)
def test_an_affiliate_that_is_not_active_is_refused_everywhere(
    api, world, dave, status, name, method, url, body
):
    Affiliate.objects.filter(pk=dave.pk).update(status=status)

    response = send(api(dave.user), world, method, url, body)

    assert response.status_code == 403
    assert_nothing_of_alice(response, world)


def test_a_user_without_an_affiliate_is_refused(api, world):
    plain = UserFactory(username="plain")

    for _, method, url, body in EVERY_ENDPOINT:
        assert send(api(plain), world, method, url, body).status_code == 403, url


def test_a_suspended_alice_loses_access_with_the_token_she_already_has(api, world):
    client = api(world.alice.user)
    assert client.get("/api/v1/links/").status_code == 200

    Affiliate.objects.filter(pk=world.alice.pk).update(status=Affiliate.Status.SUSPENDED)

    assert client.get("/api/v1/links/").status_code == 403


def test_the_manager_sees_alices_data_and_her_stats(api, world, manager):
    client = api(manager)

    assert client.get(f"/api/v1/links/{world.link.pk}/").json()["affiliate"] == world.alice.pk
    assert client.get(f"/api/v1/conversions/{world.conversion.pk}/").status_code == 200
    stats = client.get(f"/api/v1/stats/?affiliate={world.alice.pk}&{PERIOD}").json()
    assert stats["totals"]["clicks"] == 1
    assert stats["totals"]["installs"] == 1
    clicks = client.get("/api/v1/clicks/").json()["results"]
    assert clicks[0]["click_id"] == world.click.click_id
    assert clicks[0]["ip"] == "198.51.100.7"


def test_affiliates_do_not_see_the_visitors_address_or_browser(api, world):
    clicks = api(world.alice.user).get("/api/v1/clicks/").json()["results"]

    assert clicks[0]["click_id"] == world.click.click_id
    assert "ip" not in clicks[0]
    assert "user_agent" not in clicks[0]
