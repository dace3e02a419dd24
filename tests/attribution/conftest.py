"""Fixtures shared by the attribution tests: an iOS app, its campaign and its sources."""

import pytest

from tests.factories import AppFactory, CampaignFactory, PostbackSourceFactory


@pytest.fixture
def app():
    return AppFactory(platform="ios", app_store_id="1234567890", bundle_id="com.lucky.ios")


@pytest.fixture
def campaign(app):
    return CampaignFactory(
        ios_app=app, ios_url="https://app.appsflyer.com/id1234567890", click_lookback_days=7
    )


@pytest.fixture
def appsflyer(app):
    return PostbackSourceFactory(
        kind="appsflyer", app=app, event_mapping={"af_first_deposit": "ftd"}
    )


@pytest.fixture
def branch(app):
    return PostbackSourceFactory(kind="branch", app=app)


@pytest.fixture
def s2s(app):
    return PostbackSourceFactory(
        kind="s2s", brand=app.brand, event_mapping={"reg": "registration", "ftd": "ftd"}
    )
