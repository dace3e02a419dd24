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
