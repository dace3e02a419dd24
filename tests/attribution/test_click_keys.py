"""A click's link, affiliate and campaign ids carry no database constraint (each click would pay
three foreign-key checks), and the portal still never leaves a click pointing at nothing."""

import pytest
from django.db import connection
from django.db.models import ProtectedError

from attribution.models import Click
from tests.factories import TrackingLinkFactory


@pytest.fixture
def clicked(client, alice):
    link = TrackingLinkFactory(affiliate=alice)
    assert client.get(f"/c/{link.code}").status_code == 302
    return link


@pytest.mark.django_db
def test_nothing_a_click_points_at_can_be_deleted(clicked):
    click = Click.objects.get()
    for target in (click.link, click.campaign, click.affiliate):
        with pytest.raises(ProtectedError) as refused:
            target.delete()
        assert click in refused.value.protected_objects, target
    assert Click.objects.filter(link=clicked).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_storing_a_click_checks_no_foreign_key():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [Click._meta.db_table],
        )
        assert cursor.fetchall() == []
