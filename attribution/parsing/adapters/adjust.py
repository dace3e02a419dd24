"""Adjust: callbacks (GET) built from the partner's URL with Adjust's ``{placeholders}``.

Our own values (the click id) are filled at click time; Adjust fills its placeholders at callback
time and drops the ones it has no data for. Accepted names, first present wins:

- ``adid`` (Adjust device id) — optional; without it the first of ``click_id``, ``gps_adid``,
  ``idfa``, ``idfv``, ``android_id`` names the device in the dedup key (one of them is required)
- ``activity_kind`` — install, reinstall → kind "install"; event → "event"; reattribution,
  reattribution_reinstall → "reattribution"; rejected_install, rejected_reattribution → "rejected"
  (``blocked_reason`` = ``rejection_reason``, else the activity kind); session, uninstall and any
  other activity → kind "event" named after the activity. When the template leaves
  ``activity_kind`` out, a postback with an event token or name is an event, otherwise an install.
- ``created_at`` (``{created_at}``, Unix s), ``created_at_milli`` (``{created_at_milli}``, Unix ms);
  for installs ``installed_at`` stands in when it is missing. Without any time the worker takes
  the time the callback arrived, and an event is keyed by a hash of its whole content.
- ``event``, ``event_token`` (event token); ``event_name`` — the event name, else the token
- ``revenue_float`` (``{revenue_float}``, whole currency units), then ``revenue`` (``{revenue}``,
  which Adjust documents in **cents**: 345 is 3.45), with ``currency``; else
  ``reporting_revenue`` with ``reporting_currency``; else ``revenue_usd`` in USD, else
  ``revenue_usd_cents`` (cents) in USD. A source whose template put another macro under these
  names says so in its revenue unit setting.
- ``click_id``, ``clickid`` — our click id
- ``gps_adid``, ``gaid`` (GAID); ``idfa``; ``idfv``; ``app_id``; ``os_name``, ``platform``;
  ``country``; ``ip_address``, ``ip``
- ``installed_at``; ``click_time``; ``engagement_type`` (click/impression, if the template sends it)
- ``rejection_reason``, ``rejected_reason``; ``is_reattributed`` (lenient boolean)

Ignored here (kept in the raw row): ``tracker``, ``link_token``, ``tracker_name``, ``network_name``,
``campaign_name``, ``app_name``, ``android_id``, ``conversion_duration``, ``label``, ….

Dedup key: ``adjust:<adid>:<activity_kind>:<created_at>:<event token>``; without ``adid``,
``adjust:<id kind>:<id>:<activity_kind>:<created_at>:<event token>``.
"""

from __future__ import annotations

from .base import DEFAULT_SETTINGS, NormalisedEvent, Payload, PostbackError, SourceSettings
from .fields import Fields, dedup_key, first_filled, infer_platform

_INSTALLS = frozenset({"install", "reinstall"})
_REATTRIBUTIONS = frozenset({"reattribution", "reattribution_reinstall"})


class AdjustAdapter:
    """Adapter for ``/postbacks/adjust/...``."""

    source = "adjust"

    def parse(
        self, payload: Payload, settings: SourceSettings = DEFAULT_SETTINGS
    ) -> NormalisedEvent:
        """Normalise one Adjust callback."""
        f = Fields.of(payload)
        adid = f.text("adid")
        token = f.text("event", "event_token")
        named = f.name("event_name")
        activity = f.name("activity_kind") or ("event" if token or named else "install")

        blocked_reason = ""
        if activity in _INSTALLS:
            kind, event_name = "install", activity
        elif activity in _REATTRIBUTIONS:
            kind, event_name = "reattribution", activity
        elif activity.startswith("rejected_"):
            kind, event_name = "rejected", activity.removeprefix("rejected_")
            blocked_reason = f.text("rejection_reason", "rejected_reason") or activity
        elif activity == "event":
            kind, event_name = "event", named or token.lower()
            if not event_name:
                raise PostbackError("event is missing (the event token, or event_name)")
        else:
            kind, event_name = "event", activity

        installed_at = f.time("installed_at")
        occurred_at = f.time("created_at", "created_at_milli")
        if occurred_at is None and kind == "install":
            occurred_at = installed_at

        revenue = f.amount(("revenue_float",), ("revenue",), settings)
        currency = f.currency("currency")
        if revenue is None and (revenue := f.decimal("reporting_revenue")) is not None:
            currency = f.currency("reporting_currency")
        if (
            revenue is None
            and (revenue := f.amount(("revenue_usd",), ("revenue_usd_cents",), settings))
            is not None
        ):
            currency = "USD"

        gaid = f.gaid("gps_adid", "gaid")
        idfa = f.idfa("idfa")
        idfv = f.idfa("idfv")
        click_id = f.text("click_id", "clickid")
        app_id = f.text("app_id")
        # adid alone keeps the keys of rows stored before it became optional.
        device = (
            (adid,)
            if adid
            else first_filled(
                ("click_id", click_id),
                ("gps_adid", gaid),
                ("idfa", idfa),
                ("idfv", idfv),
                ("android_id", f.text("android_id")),
            )
        )
        if device is None:
            raise PostbackError("adid is missing (send adid, click_id, gps_adid or idfa)")
        if occurred_at is None and kind == "event":
            key = f.digest("adjust")
        else:
            key = dedup_key("adjust", *device, activity, occurred_at, token)
        return NormalisedEvent(
            source=self.source,
            kind=kind,
            event_name=event_name,
            dedup_key=key,
            occurred_at=occurred_at,
            click_id=click_id,
            mmp_device_id=adid,
            gaid=gaid,
            idfa=idfa,
            idfv=idfv,
            app_id=app_id,
            platform=infer_platform(
                f.platform("os_name", "platform"), idfa=idfa, idfv=idfv, gaid=gaid, app_id=app_id
            ),
            revenue=revenue,
            currency=currency,
            country=f.country("country"),
            blocked_reason=blocked_reason,
            touch_type=f.touch_type("engagement_type"),
            touch_time=f.time("click_time"),
            installed_at=installed_at or (occurred_at if kind == "install" else None),
            ip=f.ip("ip_address", "ip"),
            is_retargeting=kind == "reattribution" or f.boolean("is_reattributed"),
            event_token=token,
        )
