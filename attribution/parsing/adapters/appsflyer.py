"""AppsFlyer: partner postbacks (GET) and Push API v2 rows (GET query or POST JSON).

Accepted names, first present wins (legacy hyphenated template names after the current ones;
every name also matches case-insensitively, so ``event_revenue_USD`` is ``event_revenue_usd``):

- ``appsflyer_id``, ``appsflyer-device-id``, ``appsflyer_device_id`` — required
- ``event_name``, ``event-name`` — absent, ``install`` or ``af_install`` means an install;
  ``reinstall`` an install named "reinstall"; ``re-engagement``/``re-attribution`` a reattribution
- ``install_unix_ts``, ``install-unix-ts``, ``install_time``, ``install-time`` — required for
  installs (``event_time`` is the fallback, as Push API rows carry both)
- ``event_time``, ``event-time`` — required for in-app events
- ``conversion_type`` (install / re-engagement / re-attribution / reinstall), ``campaign_type``
  (``retargeting``), ``is_retargeting``, ``is-retargeting`` (lenient boolean): a retargeting
  install is a reattribution; a retargeting in-app event stays an event with ``is_retargeting``
- ``blocked_reason``, ``blocked-reason`` + ``blocked_reason_value``, ``blocked-reason-value``
  (joined as ``reason:value``): kind "rejected", recorded and never paid
- ``clickid``, ``click_id``, ``click-id`` — our click id, echoed from the attribution link
- ``advertising_id``, ``advertiserId`` (GAID); ``idfa``; ``idfv``
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
reattributions and blocked installs, the event time for in-app events.
"""

from __future__ import annotations

from .base import NormalisedEvent, Payload, PostbackError
from .fields import Fields, dedup_key, infer_platform

_INSTALL_NAMES = frozenset({"install", "af_install"})
_REENGAGEMENT_NAMES = frozenset(
    {"re-engagement", "re_engagement", "reengagement", "re-attribution", "re_attribution"}
)


class AppsFlyerAdapter:
    """Adapter for ``/postbacks/appsflyer/...``."""

    source = "appsflyer"

    def parse(self, payload: Payload) -> NormalisedEvent:
        """Normalise one AppsFlyer postback or Push API row."""
        f = Fields.of(payload)
        appsflyer_id = f.require("appsflyer_id", "appsflyer-device-id", "appsflyer_device_id")
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
            if occurred_at is None:
                raise PostbackError("install_unix_ts is missing")
        else:
            kind = "event"
            occurred_at = event_time
            if occurred_at is None:
                raise PostbackError("event_time is missing")

        blocked_reason = f.text("blocked_reason", "blocked-reason")
        if blocked_reason:
            kind = "rejected"
            detail = f.text("blocked_reason_value", "blocked-reason-value")
            blocked_reason = f"{blocked_reason}:{detail}" if detail else blocked_reason

        revenue = f.decimal("event_revenue", "monetary", "revenue")
        currency = f.currency("event_revenue_currency", "currency")
        if revenue is None and (revenue := f.decimal("event_revenue_usd")) is not None:
            currency = "USD"
        event_value = f.loose_section("event_value")
        if revenue is None and (revenue := event_value.decimal("af_revenue")) is not None:
            currency = event_value.currency("af_currency") or currency

        gaid = f.gaid("advertising_id", "advertiserId")
        idfa = f.idfa("idfa")
        idfv = f.idfa("idfv")
        app_id = f.text("app_id", "app-id", "bundle_id")
        return NormalisedEvent(
            source=self.source,
            kind=kind,
            event_name=event_name,
            dedup_key=dedup_key("af", appsflyer_id, event_name, occurred_at),
            occurred_at=occurred_at,
            click_id=f.text("clickid", "click_id", "click-id"),
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
