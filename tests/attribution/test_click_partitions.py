"""The click table by month: attribution across month boundaries, retention, the migration."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from attribution import tasks
from attribution.clicks import partitions
from attribution.models import Click, FillState
from attribution.rollups import keep
from tests.attribution.test_crediting import IDFA, af_install, click

OTHER_IDFA = "11111111-2222-3333-4444-555555555555"


def partition_of(made: Click) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM attribution_click WHERE id = %s", [made.pk]
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db
def test_clicks_just_before_a_month_boundary_are_credited_after_it(
    client, alice, charlie, campaign, appsflyer
):
    # given January and February partitions, and clicks in the last minutes of January
    assert partitions.partitions_ensure(now=datetime(2026, 1, 10, tzinfo=UTC), ahead=1)
    by_id = click(client, alice, campaign, at=datetime(2026, 1, 31, 23, 50, tzinfo=UTC))
    by_device = click(
        client, charlie, campaign, at=datetime(2026, 1, 31, 23, 55, tzinfo=UTC), idfa=IDFA
    )
    a_week_before = click(
        client, alice, campaign, at=datetime(2026, 1, 27, 9, 0, tzinfo=UTC), idfa=OTHER_IDFA
    )
    assert {partition_of(c) for c in (by_id, by_device, a_week_before)} == {
        "attribution_click_p2026_01"
    }

    # when installs come in February, by click id and by device id (no click id)
    at = datetime(2026, 2, 1, 0, 20, tzinfo=UTC)
    first = af_install(client, appsflyer, at=at, click_id=by_id.click_id, idfa="", afid="af-1")
    second = af_install(client, appsflyer, at=at, idfa=IDFA, afid="af-2")
    third = af_install(client, appsflyer, at=at + timedelta(days=2), idfa=OTHER_IDFA, afid="af-3")

    # then each is credited to its January click, inside the campaign's 7-day lookback
    assert (first.click, first.method, first.reason) == (by_id, "click_id", "ok")
    assert (second.click, second.method, second.affiliate) == (by_device, "device_id", charlie)
    assert (third.click, third.method, third.affiliate) == (a_week_before, "device_id", alice)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_click_waiting_in_the_default_partition_moves_into_its_month_when_made(
    client, alice, campaign
):
    # given a click of a month that has no partition yet (beat stopped for months)
    made = click(client, alice, campaign, at=datetime(2030, 5, 3, tzinfo=UTC))
    assert partition_of(made) == "attribution_click_default"

    # when beat makes that month's partition
    partitions.partitions_ensure(now=datetime(2030, 5, 1, tzinfo=UTC), ahead=1)

    # then the click is in it, once
    assert partition_of(made) == "attribution_click_p2030_05"
    assert Click.objects.filter(click_id=made.click_id).count() == 1


def months_of_clicks(client, alice, campaign) -> dict[date, Click]:
    made = {}
    for month in (1, 2, 3, 6):
        made[date(2026, month, 1)] = click(
            client, alice, campaign, at=datetime(2026, month, 10, 12, tzinfo=UTC)
        )
    partitions.partitions_ensure(now=datetime(2026, 1, 1, tzinfo=UTC), ahead=5)
    return made


@pytest.mark.postgres
@pytest.mark.django_db
def test_retention_drops_only_the_months_older_than_the_setting(client, alice, campaign, appsflyer):
    # given clicks in January, February, March and June, a conversion of a February click, and
    # rollups that have counted every click
    made = months_of_clicks(client, alice, campaign)
    february = made[date(2026, 2, 1)]
    conversion = af_install(
        client, appsflyer, at=datetime(2026, 2, 11, tzinfo=UTC), click_id=february.click_id
    )
    assert keep.clicks_fill(settle=timedelta(0)) == 4

    # when retention keeps four months, in June
    dropped = partitions.retention_apply(now=datetime(2026, 6, 20, tzinfo=UTC), months=4)

    # then January and February are gone; March to June stay, with their clicks
    assert dropped == ["attribution_click_p2026_01", "attribution_click_p2026_02"]
    # (the months from now on that the migration made stay too)
    assert sorted(m for m in partitions.month_partitions() if m.year == 2026 and m.month < 7) == [
        date(2026, m, 1) for m in (3, 4, 5, 6)
    ]
    assert set(Click.objects.values_list("pk", flat=True)) == {
        made[date(2026, 3, 1)].pk,
        made[date(2026, 6, 1)].pk,
        february.pk,
    }
    # and the click a conversion points at is kept whole, in the default partition
    conversion.refresh_from_db()
    assert conversion.click == february
    assert conversion.click.created_at == february.created_at
    assert partition_of(february) == "attribution_click_default"


@pytest.mark.postgres
@pytest.mark.django_db
def test_retention_keeps_a_month_the_rollups_have_not_counted(client, alice, campaign):
    made = months_of_clicks(client, alice, campaign)
    # the rollups have counted up to January's click only
    FillState.objects.update_or_create(
        name="clicks", defaults={"last_id": made[date(2026, 1, 1)].pk}
    )

    dropped = partitions.retention_apply(now=datetime(2026, 6, 20, tzinfo=UTC), months=4)

    assert dropped == ["attribution_click_p2026_01"]
    assert Click.objects.filter(pk=made[date(2026, 2, 1)].pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_retention_off_drops_nothing(client, alice, campaign):
    months_of_clicks(client, alice, campaign)
    keep.clicks_fill(settle=timedelta(0))

    assert partitions.retention_apply(now=datetime(2027, 6, 1, tzinfo=UTC), months=0) == []
    assert Click.objects.count() == 4


def test_retention_below_the_longest_lookback_is_refused_at_start():
    env = {"CLICK_RETENTION_MONTHS": "3", "SECRET_KEY": "x" * 50}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE',"
            " 'portal.settings'); django.setup()",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "CLICK_RETENTION_MONTHS must be 0 (keep all) or at least 4" in result.stderr


BEFORE, AFTER = ("attribution", "0010_skipped_clicks"), ("attribution", "0011_click_partitions")


@pytest.mark.django_db(transaction=True)
def test_the_migration_converts_an_existing_click_table(client, alice, campaign, appsflyer):
    # given the click table as it was, populated over three months, and a conversion of a click
    call_command("migrate", *BEFORE, verbosity=0)
    try:
        made = [
            click(client, alice, campaign, at=datetime(2026, month, 15, tzinfo=UTC), idfa=IDFA)
            for month in (8, 9, 10)
        ]
        conversion = af_install(
            client, appsflyer, at=datetime(2026, 10, 16, tzinfo=UTC), click_id=made[-1].click_id
        )
        before = list(Click.objects.order_by("pk").values_list("pk", "click_id", "created_at"))

        # when it is migrated
        call_command("migrate", *AFTER, verbosity=0)
    finally:
        call_command("migrate", verbosity=0)  # whatever happened, the latest schema again

    # then every click is there with its id, and the conversion still has its click
    assert list(Click.objects.order_by("pk").values_list("pk", "click_id", "created_at")) == before
    conversion.refresh_from_db()
    assert conversion.click_id == made[-1].pk
    executor = MigrationExecutor(connection)
    assert AFTER in executor.loader.applied_migrations
    if connection.vendor == "postgresql":
        # partitioned by month, each click in its own month
        assert partitions.partitioned()
        assert [partition_of(c) for c in made] == [
            "attribution_click_p2026_08",
            "attribution_click_p2026_09",
            "attribution_click_p2026_10",
        ]
    else:
        assert not partitions.partitioned()  # SQLite keeps one table
    # and a new click gets a new id after the old ones
    response = client.get(f"/c/{made[0].link.code}")
    assert response.status_code == 302
    assert Click.objects.latest("pk").pk > before[-1][0]


@pytest.mark.django_db
def test_the_beat_task_makes_the_coming_months_and_drops_nothing_by_default(settings):
    # given the table as migrated, and the partitions ahead dropped (beat stopped for months)
    settings.CLICK_PARTITIONS_AHEAD = 2
    today = datetime.now(UTC).date()
    if partitions.partitioned():
        with connection.cursor() as cursor:
            for month in (1, 2):
                name = partitions.partition_name(partitions.month_start(today, month))
                cursor.execute(f"DROP TABLE IF EXISTS {name}")

    # when beat runs the task
    result = tasks.click_partitions()

    # then the missing months are made again (PostgreSQL) and nothing is dropped
    assert result["dropped"] == []
    if partitions.partitioned():
        assert len(result["made"]) == 2
        assert {partitions.month_start(today, n) for n in range(3)} <= set(
            partitions.month_partitions()
        )
    else:
        assert result["made"] == []
