"""Branch: webhooks (POST JSON, nested) and flat GET templates (FreeMarker ``${...}``).

Nested objects may be real JSON objects or JSON text in a form field; Branch leaves empty objects
out, so every one of them is optional. Accepted names:

- ``id`` — Branch's event id (a numeric string; any token is accepted): the dedup key. Branch's
  own sample webhook body carries none, so without it the first of ``developer_identity``,
  ``idfa``, ``aaid``, ``idfv``, the click id names the device and ``timestamp`` the moment
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

Dedup key: ``branch:<id>``; without an id
``branch:<id kind>:<device id>:<event name>:<timestamp>``, or a hash of the whole body when there
is no timestamp either.
"""

from __future__ import annotations

from .base import DEFAULT_SETTINGS, NormalisedEvent, Payload, PostbackError, SourceSettings
from .fields import Fields, dedup_key, first_filled, infer_platform

_INSTALLS = frozenset({"install", "reinstall"})


class BranchAdapter:
    """Adapter for ``/postbacks/branch/...``."""

    source = "branch"

    def parse(
        self, payload: Payload, settings: SourceSettings = DEFAULT_SETTINGS
    ) -> NormalisedEvent:
        """Normalise one Branch webhook."""
        f = Fields.of(payload)
        event_id = f.text("id")
        name = f.require("name").lower()
        user = f.section("user_data")
        touch = f.section("last_attributed_touch_data")
        data = f.section("event_data")

        kind = "install" if name in _INSTALLS else "event"
        occurred_at = f.time("timestamp")

        revenue = data.amount(("revenue",), (), settings)
        currency = data.currency("currency")
        if revenue is None:
            revenue = f.amount(("revenue",), (), settings)
            currency = currency or f.currency("currency")
        if revenue is None and (revenue := data.decimal("revenue_in_usd")) is not None:
            currency = "USD"

        gaid = user.gaid("aaid") or f.gaid("aaid", "gaid")
        idfa = user.idfa("idfa") or f.idfa("idfa")
        idfv = user.idfa("idfv") or f.idfa("idfv")
        app_id = f.text("app_id")
        platform = user.platform("os", "platform") or f.platform("os", "platform")
        click_id = touch.text("click_id", "~click_id") or f.text("click_id")
        device_id = user.text("developer_identity", "randomized_device_token") or f.text(
            "developer_identity"
        )
        if event_id:
            key = dedup_key("branch", event_id)
        else:
            device = first_filled(
                ("developer_identity", device_id),
                ("idfa", idfa),
                ("aaid", gaid),
                ("idfv", idfv),
                ("click_id", click_id),
            )
            if device is None:
                raise PostbackError(
                    "id is missing (send id, or user_data with developer_identity, idfa or aaid)"
                )
            if occurred_at is None:
                key = f.digest("branch")
            else:
                key = dedup_key("branch", *device, name, occurred_at)
        return NormalisedEvent(
            source=self.source,
            kind=kind,
            event_name=name,
            dedup_key=key,
            occurred_at=occurred_at,
            click_id=click_id,
            mmp_device_id=device_id,
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
