"""Branch: webhooks (POST JSON, nested) and flat GET templates (FreeMarker ``${...}``).

Nested objects may be real JSON objects or JSON text in a form field; Branch leaves empty objects
out, so every one of them is optional. Accepted names:

- ``id`` — required, Branch's event id (a numeric string; any token is accepted): the dedup key
- ``name`` — required, case-insensitive: INSTALL / REINSTALL → kind "install" (named "install" /
  "reinstall"), anything else (OPEN, PURCHASE, custom) → kind "event" with the lower-cased name
- ``timestamp`` — event time in ms (seconds are recognised too)
- ``last_attributed_touch_type`` (CLICK/IMPRESSION); ``last_attributed_touch_timestamp`` (ms),
  else ``last_attributed_touch_data["+click_timestamp"]`` (s)
- ``last_attributed_touch_data``: ``click_id`` (our link key), else ``~click_id``
- ``user_data``: ``os``, ``platform``, ``aaid``, ``idfa``, ``idfv``, ``developer_identity``
  (else ``randomized_device_token``) as the device id, ``ip``, ``geo_country_code``
- ``event_data``: ``transaction_id`` (txid), ``revenue`` with ``currency``, else
  ``revenue_in_usd`` in USD
- flat fallbacks at the top level for GET templates: ``click_id``, ``aaid``/``gaid``, ``idfa``,
  ``idfv``, ``developer_identity``, ``os``/``platform``, ``geo_country_code``/``country``, ``ip``,
  ``transaction_id``, ``revenue``, ``currency``, ``app_id``

Dedup key: ``branch:<id>``.
"""

from __future__ import annotations

from .base import NormalisedEvent, Payload
from .fields import Fields, dedup_key, infer_platform

_INSTALLS = frozenset({"install", "reinstall"})


class BranchAdapter:
    """Adapter for ``/postbacks/branch/...``."""

    source = "branch"

    def parse(self, payload: Payload) -> NormalisedEvent:
        """Normalise one Branch webhook."""
        f = Fields.of(payload)
        event_id = f.require("id")
        name = f.require("name").lower()
        user = f.section("user_data")
        touch = f.section("last_attributed_touch_data")
        data = f.section("event_data")

        kind = "install" if name in _INSTALLS else "event"
        occurred_at = f.time("timestamp")

        revenue = data.decimal("revenue")
        currency = data.currency("currency")
        if revenue is None:
            revenue = f.decimal("revenue")
            currency = currency or f.currency("currency")
        if revenue is None and (revenue := data.decimal("revenue_in_usd")) is not None:
            currency = "USD"

        gaid = user.gaid("aaid") or f.gaid("aaid", "gaid")
        idfa = user.idfa("idfa") or f.idfa("idfa")
        idfv = user.idfa("idfv") or f.idfa("idfv")
        app_id = f.text("app_id")
        platform = user.platform("os", "platform") or f.platform("os", "platform")
        return NormalisedEvent(
            source=self.source,
            kind=kind,
            event_name=name,
            dedup_key=dedup_key("branch", event_id),
            occurred_at=occurred_at,
            click_id=touch.text("click_id", "~click_id") or f.text("click_id"),
            mmp_device_id=(
                user.text("developer_identity", "randomized_device_token")
                or f.text("developer_identity")
            ),
            gaid=gaid,
            idfa=idfa,
            idfv=idfv,
            app_id=app_id,
            platform=infer_platform(platform, idfa=idfa, idfv=idfv, gaid=gaid, app_id=app_id),
            revenue=revenue,
            currency=currency,
            country=(
                user.country("geo_country_code", "country")
                or f.country("geo_country_code", "country")
            ),
            touch_type=f.touch_type("last_attributed_touch_type"),
            touch_time=(
                f.time("last_attributed_touch_timestamp") or touch.time("+click_timestamp")
            ),
            installed_at=occurred_at if kind == "install" else None,
            txid=data.text("transaction_id") or f.text("transaction_id"),
            ip=user.ip("ip") or f.ip("ip"),
        )
