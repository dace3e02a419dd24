"""Many new rows of one model with PostgreSQL's COPY: the batch worker's bulk writes.

``QuerySet.bulk_create`` prepares every value of every row through its field, which cost the
attribution worker more CPU than deciding the rows (bench/attribution.py). COPY takes psycopg's
own adaptation of plain Python values instead. The ids come from the table's sequence first,
so the caller knows them (and can point other rows at them) before anything is written.

Only for rows that cannot conflict with stored ones (COPY has no ON CONFLICT): a unique
violation fails the statement, and with it the caller's transaction.
"""

from collections.abc import Sequence

from django.db import connection, models
from django.utils import timezone
from psycopg.types.json import Jsonb


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """``count`` new ids from ``model``'s id sequence, in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _value(field: models.Field, obj: models.Model, now) -> object:
    if isinstance(field, models.DateTimeField) and (field.auto_now or field.auto_now_add):
        setattr(obj, field.attname, now)
        return now
    value = getattr(obj, field.attname)
    if value is None and field.is_relation and field.is_cached(obj):
        # Related to an object saved after the assignment (as bulk_create would see it).
        related = field.get_cached_value(obj)
        value = related.pk if related is not None else None
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return Jsonb(value)
    if isinstance(field, models.DecimalField):
        # Rounded as Django rounds it, not as PostgreSQL would.
        return connection.ops.adapt_decimalfield_value(
            value, field.max_digits, field.decimal_places
        )
    return value


def copy_insert(objs: Sequence[models.Model]) -> None:
    """Insert unsaved ``objs`` (one model) with COPY; sets their ids and auto timestamps."""
    if not objs:
        return
    model = type(objs[0])
    missing = [obj for obj in objs if obj.pk is None]
    for obj, pk in zip(missing, reserve_ids(model, len(missing)), strict=True):
        obj.pk = pk
    fields = list(model._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    now = timezone.now()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objs:
            copy.write_row([_value(f, obj, now) for f in fields])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def insert_many(objs: Sequence[models.Model]) -> None:
    """New rows in bulk: COPY on PostgreSQL, ``bulk_create`` elsewhere (the embedded SQLite)."""
    if not objs:
        return
    if connection.vendor == "postgresql":
        copy_insert(objs)
    else:
        type(objs[0]).objects.bulk_create(objs)
