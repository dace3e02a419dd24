"""Singular: GET templates with ``{MACRO}`` placeholders, which can arrive unfilled.

The partner picks the parameter names in its template; these are accepted, first present wins:

- ``evtname``, ``event_name``, ``event`` — absent, ``__INSTALL__`` or ``install`` → kind "install";
  ``__REENGAGEMENT__``/``reengagement``/``re-engagement`` → "reattribution"; else "event"
- ``event_id``, ``evtid`` — Singular's event id: the dedup key when present
- ``device_id``, ``singular_id``, ``sdid`` — Singular's device id (``mmp_device_id``)
- ``idfa``; ``idfv``; ``aifa``, ``gaid``, ``advertising_id`` (GAID); ``andi``, ``android_id``
  (only as a fallback device id for the dedup key)
- ``click_id``, ``cl_id``, ``cl``, ``clickid`` (our click id from ``{cl?Network}``; Singular's
  own example template names it ``cl_id``), then ``clid`` (``{CLID}`` is Singular's own click id,
  so it only matches if the template put our id there)
- ``utc``, ``utcm``, ``time``, ``event_utc``, ``event_time``, ``timestamp`` — event time
  (``{UTC}`` Unix s, ``{UTCM}`` Unix ms, told apart by size, or a date-time); installs fall back
  on ``install_utc``, ``install_time``
- ``install_utc``, ``install_time``; ``click_utc``, ``click_time``; ``touch_type``
- ``amount``, ``revenue`` (``{AMOUNT}``: whole currency units unless the source's revenue unit
  setting says cents) with ``currency``
- ``app_id``, ``longname`` (bundle id), ``bundle_id``, ``public_id`` (iOS store id)
- ``platform``, ``os``; ``country``, ``attribution_country``, ``country_code``; ``ip``,
  ``event_ip``, ``attribution_ip``; ``is_re_eng`` (``{IS_RE_ENG}``), ``is_reengagement``,
  ``is_retargeting`` (lenient boolean); ``is_viewthrough`` (``{IS_VIEWTHROUGH}``, 1 = impression)

Dedup key: ``singular:event:<event_id>``; without one,
``singular:device:<id kind>:<device id>:<event name>:<time>`` where the device id is the first of
device_id, idfa, idfv, aifa, andi (a PostbackError names them when none is there, and ``utc`` when
there is no time). A template with neither (Singular's own example sends ``cl_id``, ``amount``,
``event`` and ``timestamp``) is keyed by its click id and time, else by a hash of its content.
"""

from __future__ import annotations

from .base import DEFAULT_SETTINGS, NormalisedEvent, Payload, PostbackError, SourceSettings
from .fields import Fields, dedup_key, first_filled, infer_platform

_INSTALL_NAMES = frozenset({"__install__", "install", "_install"})
_REENGAGEMENT_NAMES = frozenset(
    {"__reengagement__", "reengagement", "re-engagement", "__reattribution__", "reattribution"}
)


class SingularAdapter:
    """Adapter for ``/postbacks/singular/...``."""

    source = "singular"

    def parse(
        self, payload: Payload, settings: SourceSettings = DEFAULT_SETTINGS
    ) -> NormalisedEvent:
        """Normalise one Singular postback."""
        f = Fields.of(payload)
        name = f.name("evtname", "event_name", "event")
        if not name or name in _INSTALL_NAMES:
            kind, event_name = "install", "install"
        elif name in _REENGAGEMENT_NAMES:
            kind, event_name = "reattribution", "reengagement"
        else:
            kind, event_name = "event", name

        device_id = f.text("device_id", "singular_id", "sdid")
        idfa = f.idfa("idfa")
        idfv = f.idfa("idfv")
        gaid = f.gaid("aifa", "gaid", "advertising_id")
        android_id = f.text("andi", "android_id")

        installed_at = f.time("install_utc", "install_time")
        occurred_at = f.time("utc", "utcm", "time", "event_utc", "event_time", "timestamp")
        if occurred_at is None and kind == "install":
            occurred_at = installed_at

        click_id = f.text("click_id", "cl_id", "cl", "clickid", "clid")
        event_id = f.text("event_id", "evtid")
        if event_id:
            key = dedup_key("singular", "event", event_id)
        else:
            device = first_filled(
                ("device_id", device_id),
                ("idfa", idfa),
                ("idfv", idfv),
                ("aifa", gaid),
                ("andi", android_id),
                ("click_id", click_id),
            )
            if device is None:
                raise PostbackError(
                    "device_id is missing (send event_id, or device_id, idfa, idfv, aifa, andi "
                    "or cl_id)"
                )
            if occurred_at is None and kind == "event":
                key = f.digest("singular")
            else:
                key = dedup_key("singular", "device", *device, event_name, occurred_at)

        app_id = f.text("app_id", "longname", "bundle_id", "public_id")
        touch_type = f.touch_type("touch_type")
        if not touch_type and f.first("is_viewthrough"):
            touch_type = "impression" if f.boolean("is_viewthrough") else "click"
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
                f.platform("platform", "os"), idfa=idfa, idfv=idfv, gaid=gaid, app_id=app_id
            ),
            revenue=f.amount(("amount", "revenue"), (), settings),
            currency=f.currency("currency"),
            country=f.country("country", "attribution_country", "country_code"),
            touch_type=touch_type,
            touch_time=f.time("click_utc", "click_time"),
            installed_at=installed_at or (occurred_at if kind == "install" else None),
            ip=f.ip("ip", "event_ip", "attribution_ip"),
            is_retargeting=kind == "reattribution"
            or f.boolean("is_re_eng", "is_reengagement", "is_retargeting"),
        )
