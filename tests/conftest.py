import pytest

from tests.factories import AffiliateFactory, UserFactory


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
