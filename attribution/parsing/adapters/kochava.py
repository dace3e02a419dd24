"""Kochava: custom postbacks (GET); parameter names are mapped per integration.

These names are accepted, first present wins:

- ``event_name``, ``event`` — absent, ``_install`` or ``install`` → kind "install";
  ``_reengagement``/``reengagement``/``_reattribution``/``reattribution`` → "reattribution";
  anything else → "event" with the lower-cased name
- ``event_id`` — Kochava's event id; ``transaction_id`` — the app's transaction id (also ``txid``)
- ``kochava_device_id``, ``device_id``, ``kochava_id`` — Kochava's device id (``mmp_device_id``)
- ``idfa``; ``idfv``; ``adid``, ``gaid``, ``advertising_id`` (GAID); ``android_id`` (only as a
  fallback device id for the dedup key)
- ``click_id``, ``clickid`` — the click id we passed on the tracker
- ``event_time``, ``timestamp``, ``time`` — event time; installs fall back on ``install_time``
- ``install_time``; ``click_time``; ``touch_type``
- ``revenue`` (strict), else ``event_value`` when it is a number (Kochava event values are often
  free text or JSON, which is not revenue and not an error); ``currency``
- ``app_id``, ``app_guid``, ``bundle_id``, ``package_name``; ``platform``, ``os``, ``device_os``;
  ``country``, ``country_code``; ``ip``, ``device_ip``
- ``network_name``, ``user_agent`` — accepted and ignored here (kept in the raw row)

Dedup key: ``kochava:event_id:<event_id>``, else ``kochava:transaction_id:<transaction_id>``, else
``kochava:device:<id kind>:<device id>:<event name>:<time>`` with the first of kochava_device_id,
idfa, idfv, adid, android_id, click_id; an in-app event without a time is keyed by a hash of its
whole content. ``revenue`` and a numeric ``event_value`` are whole currency units unless the
source's revenue unit setting says cents (Kochava leaves the names and values to the template).
"""

from __future__ import annotations

from decimal import Decimal

from .base import DEFAULT_SETTINGS, NormalisedEvent, Payload, PostbackError, SourceSettings
from .fields import Fields, dedup_key, first_filled, infer_platform

_INSTALL_NAMES = frozenset({"_install", "install"})
_REENGAGEMENT_NAMES = frozenset(
    {"_reengagement", "reengagement", "_reattribution", "reattribution"}
)


def _event_value_amount(f: Fields) -> Decimal | None:
    try:
        return f.decimal("event_value")
    except PostbackError:
        return None


class KochavaAdapter:
    """Adapter for ``/postbacks/kochava/...``."""

    source = "kochava"

    def parse(
        self, payload: Payload, settings: SourceSettings = DEFAULT_SETTINGS
    ) -> NormalisedEvent:
        """Normalise one Kochava postback."""
        f = Fields.of(payload)
        name = f.name("event_name", "event")
        if not name or name in _INSTALL_NAMES:
            kind, event_name = "install", "install"
        elif name in _REENGAGEMENT_NAMES:
            kind, event_name = "reattribution", "reengagement"
        else:
            kind, event_name = "event", name

        device_id = f.text("kochava_device_id", "device_id", "kochava_id")
        idfa = f.idfa("idfa")
        idfv = f.idfa("idfv")
        gaid = f.gaid("adid", "gaid", "advertising_id")
        android_id = f.text("android_id")

        installed_at = f.time("install_time")
        occurred_at = f.time("event_time", "timestamp", "time")
        if occurred_at is None and kind == "install":
            occurred_at = installed_at

        click_id = f.text("click_id", "clickid")
        event_id = f.text("event_id")
        transaction_id = f.text("transaction_id")
        if event_id:
            key = dedup_key("kochava", "event_id", event_id)
        elif transaction_id:
            key = dedup_key("kochava", "transaction_id", transaction_id)
        else:
            device = first_filled(
                ("kochava_device_id", device_id),
                ("idfa", idfa),
                ("idfv", idfv),
                ("adid", gaid),
                ("android_id", android_id),
                ("click_id", click_id),
            )
            if device is None:
                raise PostbackError(
                    "kochava_device_id is missing (send event_id, or kochava_device_id, idfa, "
                    "idfv, adid, android_id or click_id)"
                )
            if occurred_at is None and kind == "event":
                key = f.digest("kochava")
            else:
                key = dedup_key("kochava", "device", *device, event_name, occurred_at)

        revenue = f.amount(("revenue",), (), settings)
        if revenue is None and (revenue := _event_value_amount(f)) is not None:
            revenue = revenue / 100 if settings.revenue_unit == "cents" else revenue
        app_id = f.text("app_id", "app_guid", "bundle_id", "package_name")
        return NormalisedEvent(
            source=self.source,
            kind=kind,
            event_name=event_name,
            dedup_key=key,
            occurred_at=occurred_at,
            click_id=click_id,
            mmp_device_id=device_id,
            gaid=gaid,
            idfa=idfa,
            idfv=idfv,
            app_id=app_id,
            platform=infer_platform(
                f.platform("platform", "os", "device_os"),
                idfa=idfa,
                idfv=idfv,
                gaid=gaid,
                app_id=app_id,
            ),
            revenue=revenue,
            currency=f.currency("currency"),
            country=f.country("country", "country_code"),
            touch_type=f.touch_type("touch_type"),
            touch_time=f.time("click_time"),
            installed_at=installed_at or (occurred_at if kind == "install" else None),
            txid=transaction_id,
            ip=f.ip("ip", "device_ip"),
            is_retargeting=kind == "reattribution",
        )
