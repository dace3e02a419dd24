import os

import pytest

from tests.factories import (
    AffiliateFactory,
    AppFactory,
    CampaignFactory,
    PostbackSourceFactory,
    UserFactory,
)


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    """Files a test uploads (creatives) land in its own directory, not in var/ or the checkout."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def alice(db):
    """An active affiliate."""
    return AffiliateFactory(user=UserFactory(username="alice"), name="Alice Media")


@pytest.fixture
def bob(alice):
    """Alice's sub-affiliate."""
    return AffiliateFactory(user=UserFactory(username="bob"), name="Bob Apps", parent=alice)


@pytest.fixture
def charlie(db):
    """Another affiliate, who must never see alice's data."""
    return AffiliateFactory(user=UserFactory(username="charlie"), name="Charlie Traffic")


@pytest.fixture
def manager(db):
    return UserFactory(username="manager", is_staff=True, is_superuser=True)


def staff_login(client, user) -> None:
    """Log a manager in as the admin's two-factor login would: password and a TOTP device."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="test", defaults={"confirmed": True}
    )
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


@pytest.fixture
def manager_client(client, manager):
    staff_login(client, manager)
    return client


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


def pytest_report_header(config) -> list[str]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    broker = (
        "kombu filesystem (embedded)" if settings.EMBEDDED_BROKER else settings.CELERY_BROKER_URL
    )
    return [
        f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or db['NAME']}",
        f"celery broker: {broker}",
    ]


def pytest_runtest_setup(item) -> None:
    """``@pytest.mark.postgres`` tests skip on SQLite, except in CI, where they fail instead."""
    if item.get_closest_marker("postgres") is None:
        return
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if engine not in ("django.db.backends.postgresql", "portal.lib.postgresql"):
        message = f"needs PostgreSQL (DATABASE_URL); the database is {engine.rsplit('.', 1)[-1]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
