"""Channel and platform by the player's origin, for conversions made before the rule; and the
rollups rebuilt with their new counters.

The operator's backend (``s2s``) used to stamp every registration and deposit web (its
``platform`` parameter's default), even for a player whose click and install were on iOS. Each
such conversion now takes the platform of what it is credited through: its click (credited by
click or device id), or the install or registration its player or device chains to.

Then every day that has rollups (or commission) is rebuilt from the raw rows and the ledger:
commission is now a rollup counter (0010), and sub id rows gained channel, platform and country.
On a large program this reads every click once (``rebuild_rollups`` does the same, day by day).
"""

from datetime import timedelta

from django.db import migrations

from attribution.rollups import keep

CHAINED = ("install", "registration")


def _origin_platform(apps, conversion) -> str:
    identity_model = apps.get_model("attribution", "Identity")
    origin = (
        identity_model.objects.filter(
            key=conversion.player_key,
            occurred_at__lte=conversion.occurred_at,
            conversion__is_winner=True,
            conversion__affiliate__isnull=False,
        )
        .exclude(conversion__status="rejected")
        .exclude(conversion_id=conversion.pk)
        .select_related("conversion")
        .order_by("occurred_at", "pk")
        .first()
    )
    if origin is None:
        return ""
    return "ios" if origin.conversion.method == "skan" else origin.conversion.platform


def forwards(apps, schema_editor) -> None:
    conversion_model = apps.get_model("attribution", "Conversion")
    candidates = (
        conversion_model.objects.filter(
            event__postback__kind="s2s",
            method__in=("click_id", "device_id", "install_chain"),
        )
        .select_related("click")
        .order_by("occurred_at", "pk")  # a registration is fixed before the deposits chaining to it
    )
    days = set()
    rollup_model = apps.get_model("attribution", "DailyRollup")
    entry_model = apps.get_model("payouts", "LedgerEntry")
    first_rollup = rollup_model.objects.order_by("day").values_list("day", flat=True).first()
    last_rollup = rollup_model.objects.order_by("-day").values_list("day", flat=True).first()
    earned = entry_model.objects.filter(conversion__isnull=False).values_list(
        "conversion__occurred_at", flat=True
    )
    first_earned = earned.order_by("conversion__occurred_at").first()
    last_earned = earned.order_by("-conversion__occurred_at").first()
    days.update(d for d in (first_rollup, last_rollup) if d is not None)
    days.update(moment.date() for moment in (first_earned, last_earned) if moment is not None)
    for conversion in candidates.iterator(chunk_size=2000):
        platform = ""
        if conversion.method == "install_chain" and conversion.player_key:
            platform = _origin_platform(apps, conversion)
        if not platform and conversion.click_id:
            platform = conversion.click.platform
        if not platform or platform == conversion.platform:
            continue
        channel = "web" if platform == "web" else "mobile"
        conversion_model.objects.filter(pk=conversion.pk).update(platform=platform, channel=channel)
        days.add(conversion.occurred_at.date())
    if days:
        # Local days lie within a day of the UTC date either way.
        keep.rebuild(since=min(days) - timedelta(days=1), until=max(days) + timedelta(days=1))


class Migration(migrations.Migration):
    dependencies = [
        ("attribution", "0010_rollup_commission"),
        ("payouts", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
