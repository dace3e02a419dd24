"""AppsFlyer: partner postbacks (GET) and Push API v2 rows (GET query or POST JSON).

Accepted names, first present wins (legacy hyphenated template names after the current ones;
every name also matches case-insensitively, so ``event_revenue_USD`` is ``event_revenue_usd``):

- ``appsflyer_id``, ``appsflyer-device-id``, ``appsflyer_device_id`` — optional: an ad network
  picks the macros it receives, and AppsFlyer's own base postback spec sends none of these
- ``event_name``, ``event-name`` — absent, ``install`` or ``af_install`` means an install;
  ``reinstall`` an install named "reinstall"; ``re-engagement``/``re-attribution`` a reattribution
- ``install_unix_ts``, ``install-unix-ts`` (Unix s), ``install_time``, ``install-time``
  (``yyyy-mm-dd hh:mm:ss.sss`` UTC) for installs (``event_time`` is the fallback, as Push API rows
  carry both); a template may send no time at all: the worker then takes the time it arrived
- ``event_time``, ``event-time`` for in-app events (same rule)
- ``conversion_type`` (install / re-engagement / re-attribution / reinstall), ``campaign_type``
  (``retargeting``), ``is_retargeting``, ``is-retargeting`` (lenient boolean): a retargeting
  install is a reattribution; a retargeting in-app event stays an event with ``is_retargeting``
- ``blocked_reason``, ``blocked-reason``, ``rejected_reason``, ``reject_reason`` +
  ``blocked_reason_value``, ``blocked-reason-value``, ``rejected_reason_value``,
  ``reject_reason_value`` (joined as ``reason:value``): kind "rejected", recorded, never paid
- ``clickid``, ``click_id``, ``click-id`` — our click id, echoed from the attribution link
- ``advertising_id``, ``advertiserId``, ``gaid`` (GAID); ``idfa``; ``idfv``; ``oaid``,
  ``android_id`` (only as device ids for the dedup key)
- ``app_id``, ``app-id``, then ``bundle_id``; ``platform``; ``country_code``, ``country-code``,
  ``country``
- ``event_revenue``, ``monetary``, ``revenue`` with ``event_revenue_currency``, ``currency``; else
  ``event_revenue_usd`` in USD; else ``af_revenue``/``af_currency`` inside the ``event_value`` JSON
  (whose ``af_order_id`` becomes ``txid``; an ``event_value`` that is not a JSON object is
  ignored, it is free-form)
- ``attributed_touch_type``, ``attributed-touch-type``; ``attributed_touch_time``, ``click-ts``,
  ``click_time``, ``click-time``
- ``customer_user_id``, ``customer-user-id`` (player id); ``ip``, ``af_ip``, ``device_ip``

Push API extras (``media_source``, ``af_prt``, ``event_source``, ``device_model``, ``api_version``,
…) are accepted and ignored here; the raw row keeps them.

Dedup key: ``af:<appsflyer_id>:<event_name>:<time>`` with the install time for installs,
reattributions and blocked installs, the event time for in-app events. Without an AppsFlyer id,
the first id the postback carries stands in: ``af:<clickid|idfa|advertising_id|idfv|oaid|
android_id>:<id>:<event_name>:<time>``. Without a time, an install is keyed by its id alone (one
install per click or device) and an in-app event by a hash of its whole content, which an exact
retry repeats and a second event does not. A postback with no id at all cannot be attributed and
is refused.
"""

from __future__ import annotations

from .base import DEFAULT_SETTINGS, NormalisedEvent, Payload, PostbackError, SourceSettings
from .fields import Fields, dedup_key, first_filled, infer_platform

_INSTALL_NAMES = frozenset({"install", "af_install"})
_REENGAGEMENT_NAMES = frozenset(
    {"re-engagement", "re_engagement", "reengagement", "re-attribution", "re_attribution"}
)


class AppsFlyerAdapter:
    """Adapter for ``/postbacks/appsflyer/...``."""

    source = "appsflyer"

    def parse(
        self, payload: Payload, settings: SourceSettings = DEFAULT_SETTINGS
    ) -> NormalisedEvent:
        """Normalise one AppsFlyer postback or Push API row."""
        f = Fields.of(payload)
        appsflyer_id = f.text("appsflyer_id", "appsflyer-device-id", "appsflyer_device_id")
        event_name = f.name("event_name", "event-name")
        conversion_type = f.name("conversion_type")
        is_retargeting = (
            f.boolean("is_retargeting", "is-retargeting")
            or conversion_type in _REENGAGEMENT_NAMES
            or f.name("campaign_type") == "retargeting"
        )
        install_time = f.time("install_unix_ts", "install-unix-ts", "install_time", "install-time")
        event_time = f.time("event_time", "event-time")

        if not event_name or event_name in _INSTALL_NAMES | _REENGAGEMENT_NAMES | {"reinstall"}:
            if event_name in _REENGAGEMENT_NAMES:
                kind = "reattribution"
            elif is_retargeting:
                kind = "reattribution"
                event_name = (
                    conversion_type if conversion_type in _REENGAGEMENT_NAMES else "re-engagement"
                )
            else:
                kind = "install"
                reinstall = "reinstall" in (event_name, conversion_type)
                event_name = "reinstall" if reinstall else "install"
            occurred_at = install_time or event_time
        else:
            kind = "event"
            occurred_at = event_time

        blocked_reason = f.text(
            "blocked_reason", "blocked-reason", "rejected_reason", "reject_reason"
        )
        if blocked_reason:
            kind = "rejected"
            detail = f.text(
                "blocked_reason_value",
                "blocked-reason-value",
                "rejected_reason_value",
                "reject_reason_value",
            )
            blocked_reason = f"{blocked_reason}:{detail}" if detail else blocked_reason

        revenue = f.amount(("event_revenue", "monetary", "revenue"), (), settings)
        currency = f.currency("event_revenue_currency", "currency")
        if revenue is None and (revenue := f.decimal("event_revenue_usd")) is not None:
            currency = "USD"
        event_value = f.loose_section("event_value")
        if revenue is None and (revenue := event_value.decimal("af_revenue")) is not None:
            currency = event_value.currency("af_currency") or currency

        gaid = f.gaid("advertising_id", "advertiserId", "gaid")
        idfa = f.idfa("idfa")
        idfv = f.idfa("idfv")
        click_id = f.text("clickid", "click_id", "click-id")
        app_id = f.text("app_id", "app-id", "bundle_id")
        # The AppsFlyer id alone keeps the keys of rows stored before it became optional.
        device = ("appsflyer_id", appsflyer_id) if appsflyer_id else None
        device = device or first_filled(
            ("clickid", click_id),
            ("idfa", idfa),
            ("advertising_id", gaid),
            ("idfv", idfv),
            ("oaid", f.text("oaid")),
            ("android_id", f.text("android_id", "android-id")),
        )
        if device is None:
            raise PostbackError(
                "appsflyer_id is missing (send appsflyer_id, clickid, idfa or advertising_id)"
            )
        ids = device[1:] if appsflyer_id else device
        if occurred_at is None and kind == "event":
            key = f.digest("af")
        else:
            key = dedup_key("af", *ids, event_name, occurred_at)
        return NormalisedEvent(
            source=self.source,
            kind=kind,
            event_name=event_name,
            dedup_key=key,
            occurred_at=occurred_at,
            click_id=click_id,
            mmp_device_id=appsflyer_id,
            gaid=gaid,
            idfa=idfa,
            idfv=idfv,
            app_id=app_id,
            platform=infer_platform(
                f.platform("platform"), idfa=idfa, idfv=idfv, gaid=gaid, app_id=app_id
            ),
            revenue=revenue,
            currency=currency,
            country=f.country("country_code", "country-code", "country"),
            blocked_reason=blocked_reason,
            touch_type=f.touch_type("attributed_touch_type", "attributed-touch-type"),
            touch_time=f.time("attributed_touch_time", "click-ts", "click_time", "click-time"),
            installed_at=install_time or (occurred_at if kind == "install" else None),
            player_id=f.text("customer_user_id", "customer-user-id"),
            txid=event_value.text("af_order_id"),
            ip=f.ip("ip", "af_ip", "device_ip"),
            is_retargeting=is_retargeting,
        )
