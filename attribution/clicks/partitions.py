"""The click table by month (PostgreSQL): partitions made ahead, old ones dropped after retention.

``attribution_click`` is partitioned by range of ``created_at``, one partition a calendar month
(UTC) named ``attribution_click_pYYYY_MM``, plus ``attribution_click_default`` for any row no
month partition takes: clicks that arrive before their month's partition exists (beat makes them
``CLICK_PARTITIONS_AHEAD`` months ahead, so only if beat stopped for months), imported history
older than the first partition, and the few clicks that retention keeps (below).

What partitioning costs: PostgreSQL's unique keys on a partitioned table must hold the partition
key, so the primary key is (id, created_at) and click ids are unique with their time
(``click_unique_id_time``); ids still come from one sequence and our click ids are ULIDs. A
foreign key can only point at such a key, so ``Conversion.click`` is a plain column
(``db_constraint=False``): a click is never deleted but by retention, which keeps every click a
conversion points at (below), and Django still refuses to delete a click a conversion holds
(``on_delete=PROTECT``).

SQLite (the embedded default) keeps one table: these functions do nothing there.
"""

import logging
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from attribution.models import Click, Conversion, FillState

logger = logging.getLogger(__name__)

TABLE = Click._meta.db_table
DEFAULT = f"{TABLE}_default"


def month_start(day: date, months: int = 0) -> date:
    """The first day of the month ``months`` after (or before) the month of ``day``."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_p{month.year:04d}_{month.month:02d}"


def _bound(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def partitioned() -> bool:
    """Whether the click table is partitioned here (PostgreSQL, after migration 0011)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [TABLE]
        )
        return cursor.fetchone() is not None


def month_partitions() -> dict[date, str]:
    """The month partitions there are now, by their first day."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    prefix = f"{TABLE}_p"
    months = {}
    for name in names:
        if name.startswith(prefix):
            year, month = name.removeprefix(prefix).split("_")
            months[date(int(year), int(month), 1)] = name
    return months


def partition_create(month: date) -> str:
    """Make the partition of ``month``; clicks of that month waiting in the default partition
    move into it, in one transaction, so that nothing is ever in two places or none."""
    quote = connection.ops.quote_name
    name, lo, hi = partition_name(month), _bound(month), _bound(month_start(month, 1))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {quote(DEFAULT)} "  # noqa: S608
            "WHERE created_at >= %s AND created_at < %s)",
            [lo, hi],
        )
        if not cursor.fetchone()[0]:
            cursor.execute(
                f"CREATE TABLE {quote(name)} PARTITION OF {quote(TABLE)} "
                f"FOR VALUES FROM (%s) TO (%s)",
                [lo, hi],
            )
            return name
        # The default partition holds rows of this month: PostgreSQL would refuse the new
        # partition, so build it apart, move the rows, then attach it.
        cursor.execute(f"CREATE TABLE {quote(name)} (LIKE {quote(TABLE)} INCLUDING DEFAULTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {quote(DEFAULT)} "  # noqa: S608
            "WHERE created_at >= %s AND created_at < %s RETURNING *) "
            f"INSERT INTO {quote(name)} SELECT * FROM moved",
            [lo, hi],
        )
        logger.info(
            "click partition %s made with %s rows from the default one", name, cursor.rowcount
        )
        cursor.execute(
            f"ALTER TABLE {quote(TABLE)} ATTACH PARTITION {quote(name)} "
            "FOR VALUES FROM (%s) TO (%s)",
            [lo, hi],
        )
    return name


def partitions_ensure(*, now: datetime | None = None, ahead: int | None = None) -> list[str]:
    """Make the partitions of this month and the next ``CLICK_PARTITIONS_AHEAD`` that are
    missing (beat, daily); returns the names made."""
    if not partitioned():
        return []
    today = (now or timezone.now()).astimezone(UTC).date()
    ahead = settings.CLICK_PARTITIONS_AHEAD if ahead is None else ahead
    have = month_partitions()
    made = []
    for n in range(ahead + 1):
        month = month_start(today, n)
        if month not in have:
            made.append(partition_create(month))
    return made


def retention_apply(*, now: datetime | None = None, months: int | None = None) -> list[str]:
    """Drop the month partitions older than ``CLICK_RETENTION_MONTHS`` (0: keep everything)
    whose clicks the rollups have all counted; returns the names dropped.

    A month is kept while any of its clicks is past the rollups' watermark (their counters would
    lose it). The clicks a conversion points at are kept: they move to the default partition
    before the month is dropped, in the same transaction, so every conversion still has its
    click (the sub ids its reports and postbacks show).
    """
    months = settings.CLICK_RETENTION_MONTHS if months is None else months
    if months <= 0 or not partitioned():
        return []
    today = (now or timezone.now()).astimezone(UTC).date()
    keep_from = month_start(today, -(months - 1))  # this month and the months - 1 before it
    filled = FillState.objects.filter(name="clicks").values_list("last_id", flat=True).first()
    quote = connection.ops.quote_name
    conversions = quote(Conversion._meta.db_table)
    dropped = []
    for month, name in sorted(month_partitions().items()):
        if month >= keep_from:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {quote(name)} WHERE id > %s)",  # noqa: S608
                [filled or 0],
            )
            if cursor.fetchone()[0]:
                logger.warning("click partition %s kept: the rollups have not counted it", name)
                continue
            cursor.execute(f"ALTER TABLE {quote(TABLE)} DETACH PARTITION {quote(name)}")
            cursor.execute(
                f"INSERT INTO {quote(TABLE)} SELECT * FROM {quote(name)} "  # noqa: S608
                f"WHERE id IN (SELECT click_id FROM {conversions} WHERE click_id IS NOT NULL)"
            )
            kept = cursor.rowcount
            cursor.execute(f"DROP TABLE {quote(name)}")
        logger.info("click partition %s dropped (%s clicks of conversions kept)", name, kept)
        dropped.append(name)
    return dropped
