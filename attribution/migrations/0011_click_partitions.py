"""The click table by month on PostgreSQL (declarative partitioning); SQLite keeps one table.

A unique key of a partitioned table must hold the partition key, and a foreign key can only point
at such a key: the click id is unique with its time, the primary key becomes (id, created_at) on
PostgreSQL, and Conversion.click loses its database constraint (attribution/clicks/partitions.py
says how clicks stay whole). An existing table is rebuilt, rows, ids and indexes kept: a month
partition for each month from its oldest click to CLICK_PARTITIONS_AHEAD months from now, and a
default one. The table is locked while its rows are copied (minutes for tens of millions).
"""

from datetime import UTC, date, datetime

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TABLE = "attribution_click"
OLD = "attribution_click_unpartitioned"


def _month(day: date, months: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _bound(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def _rebuild(cursor, *, partitioned: bool) -> None:
    """Make ``TABLE`` anew, partitioned by month or not, with its rows, ids, indexes and keys."""
    cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    # What to make again on the new table, read before the old one is renamed: indexes that
    # back no constraint (as Django made them), and the constraints but the primary key.
    cursor.execute(
        "SELECT indexdef FROM pg_indexes i WHERE schemaname = current_schema() AND tablename = %s "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname "
        "AND c.conrelid = to_regclass(%s))",
        [TABLE, TABLE],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype IN ('u', 'f', 'c') ORDER BY conname",
        [TABLE],
    )
    constraints = cursor.fetchall()
    # The old table's index and constraint names are free again once it is dropped, after the
    # copy; the new one gets them then.
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY)"
        + (" PARTITION BY RANGE (created_at)" if partitioned else "")
    )
    if partitioned:
        cursor.execute(f"SELECT min(created_at) FROM {OLD}")
        oldest = cursor.fetchone()[0]
        today = datetime.now(UTC).date()
        month = _month(oldest.astimezone(UTC).date() if oldest else today)
        last = _month(today, getattr(settings, "CLICK_PARTITIONS_AHEAD", 3))
        while month <= last:
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{month.year:04d}_{month.month:02d} PARTITION OF {TABLE} "
                "FOR VALUES FROM (%s) TO (%s)",
                [_bound(month), _bound(_month(month, 1))],
            )
            month = _month(month, 1)
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")  # noqa: S608
    cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {OLD}")
    next_id = cursor.fetchone()[0]
    cursor.execute(f"DROP TABLE {OLD}")
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id RESTART WITH {int(next_id)}")
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    sequence = cursor.fetchone()[0]
    if sequence != f"{TABLE}_id_seq" and not sequence.endswith(f".{TABLE}_id_seq"):
        cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {TABLE}_id_seq")
    key = "id, created_at" if partitioned else "id"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({key})")
    for name, definition in constraints:
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")
    for indexdef in indexes:
        cursor.execute(indexdef)


def partition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            _rebuild(cursor, partitioned=True)


def unpartition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [
        ("affiliates", "0006_legacylink"),
        ("attribution", "0010_skipped_clicks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="conversion",
            name="click",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="attribution.click",
            ),
        ),
        migrations.RemoveConstraint(model_name="click", name="click_unique_id"),
        migrations.AddConstraint(
            model_name="click",
            constraint=models.UniqueConstraint(
                fields=("click_id", "created_at"), name="click_unique_id_time"
            ),
        ),
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
