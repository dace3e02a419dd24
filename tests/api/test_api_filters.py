"""List filters narrow an affiliate's own rows; bad filter values are a 400, never a 500."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import CampaignFactory, ConversionFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)


@pytest.fixture
def conversions(alice, campaign):
    other = CampaignFactory()
    return {
        "install": ConversionFactory(
            affiliate=alice, campaign=campaign, type="install", channel="mobile",
            platform="ios", occurred_at=T0,
        ),
        "ftd": ConversionFactory(
            affiliate=alice, campaign=other, type="ftd", channel="web", platform="web",
            occurred_at=T0 + timedelta(days=1), status="pending",
        ),
        "rejected": ConversionFactory(
            affiliate=alice, campaign=campaign, type="registration", channel="web",
            platform="web", occurred_at=T0 + timedelta(days=2), status="rejected",
            reason="duplicate_claim",
        ),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["rejected", "ftd", "install"]),
        ("status=pending", ["ftd"]),
        ("type=install", ["install"]),
        ("channel=web", ["rejected", "ftd"]),
        ("platform=ios", ["install"]),
        ("occurred_after=2026-11-03T00:00:00Z", ["rejected", "ftd"]),
        ("occurred_before=2026-11-03T00:00:00%2B01:00", ["install"]),
    ],
)
def test_conversion_filters_narrow_the_list(api, alice, conversions, query, expected):
    results = api(alice.user).get(f"/api/v1/conversions/?{query}").json()["results"]

    assert [r["id"] for r in results] == [conversions[name].pk for name in expected]


def test_the_campaign_filter_and_the_fields_of_a_conversion(api, alice, campaign, conversions):
    results = api(alice.user).get(f"/api/v1/conversions/?campaign={campaign.pk}").json()["results"]

    assert [r["id"] for r in results] == [conversions["rejected"].pk, conversions["install"].pk]
    assert results[0] == {
        "id": conversions["rejected"].pk,
        "affiliate": alice.pk,
        "type": "registration",
        "channel": "web",
        "platform": "web",
        "campaign": {"id": campaign.pk, "name": campaign.name},
        "occurred_at": "2026-11-04T12:00:00Z",
        "status": "rejected",
        # an affiliate gets the plain reason, never the rule's code (managers get duplicate_claim)
        "reason": "duplicate",
        "reason_text": "rejected: already credited",
        "revenue": None,
        "currency": "EUR",
        "country": "",
        "method": "click_id",
    }


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/conversions/?occurred_after=0001-01-01T00:00:00%2B05:00",
        "/api/v1/conversions/?occurred_before=yesterday",
        "/api/v1/conversions/?campaign=1.5",
        "/api/v1/conversions/?campaign=99999999999999999999999",
        "/api/v1/conversions/?status=lost",
        "/api/v1/clicks/?created_after=9999-12-31T23:59:59-05:00",
        "/api/v1/clicks/?country=DEU",
        "/api/v1/links/?affiliate=alice",
    ],
)
def test_a_bad_filter_value_is_a_400(api, alice, query):
    response = api(alice.user).get(query)

    assert response.status_code == 400


def test_a_page_past_the_end_is_a_404(api, alice, conversions):
    assert api(alice.user).get("/api/v1/conversions/?page=9").status_code == 404
