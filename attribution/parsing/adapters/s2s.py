"""The operator's own backend (server-to-server, web and app).

Registrations, deposits, withdrawals, bonuses, chargebacks and purchases, keyed by the click id the
portal handed over. Accepted names (industry aliases after the canonical one), first present wins:

- ``event``, ``goal``, ``action`` — required; lower-cased. ``install`` is kind "install", every
  other event kind "event"
- ``txid``, ``action_id``, ``order_id`` — required: the operator's transaction id, the dedup key
- ``click_id``, ``clickid``, ``transaction_id``, ``aff_click_id`` — our click id (``transaction_id``
  is the click id here, as on Everflow and TUNE)
- ``amount``, ``sum`` with ``currency``
- ``player_id``, ``user_id`` — for FTD-once and RevShare per player
- ``status`` — approved/pending/declined, also Affise's 1 approved, 2 pending, 3 declined, 5 hold
  (pending) and the words approve/confirmed, hold/on_hold, decline/rejected/cancelled
- ``country``, ``country_code``; ``platform`` (default "web" unless device ids say otherwise);
  ``ip``; ``time``, ``timestamp``, ``event_time``, ``created_at``, ``date``; ``idfa``; ``idfv``;
  ``gaid``, ``advertising_id``; ``app_id``

Dedup key: ``s2s:<txid>``, and ``s2s:<txid>:<status>[:<time>]`` when a status is given: a retry
of a report (same status, same time) is a repeat; a later report of the transaction with another
status is not, nor one that returns to an earlier status at a later time of its own (approved,
declined, approved again). The worker
applies such a report to the transaction's conversion (a deposit the operator confirms, holds or
declines) instead of making a second one.
"""

from __future__ import annotations

from .base import DEFAULT_SETTINGS, NormalisedEvent, Payload, PostbackError, SourceSettings
from .fields import Fields, dedup_key, infer_platform

_STATUSES = {
    "approved": "approved",
    "approve": "approved",
    "confirmed": "approved",
    "accepted": "approved",
    "1": "approved",
    "pending": "pending",
    "hold": "pending",
    "on_hold": "pending",
    "2": "pending",
    "5": "pending",
    "declined": "declined",
    "decline": "declined",
    "rejected": "declined",
    "cancelled": "declined",
    "canceled": "declined",
    "3": "declined",
}


class S2SAdapter:
    """Adapter for ``/postbacks/s2s/...``."""

    source = "s2s"

    def parse(
        self, payload: Payload, settings: SourceSettings = DEFAULT_SETTINGS
    ) -> NormalisedEvent:
        """Normalise one server-to-server postback from the operator."""
        f = Fields.of(payload)
        event_name = f.name("event", "goal", "action")
        if not event_name:
            raise PostbackError("event is missing")
        txid = f.require("txid", "action_id", "order_id")

        status = ""
        if found := f.first("status"):
            label, value = found
            status = _STATUSES.get(value.lower(), "")
            if not status:
                raise PostbackError(
                    f"{label} '{value[:60]}' is not one of approved, pending, declined"
                )

        idfa = f.idfa("idfa")
        idfv = f.idfa("idfv")
        gaid = f.gaid("gaid", "advertising_id")
        app_id = f.text("app_id")
        platform = infer_platform(
            f.platform("platform"), idfa=idfa, idfv=idfv, gaid=gaid, app_id=app_id
        )
        occurred_at = f.time("time", "timestamp", "event_time", "created_at", "date")
        report = (status, occurred_at) if occurred_at else (status,)
        return NormalisedEvent(
            source=self.source,
            kind="install" if event_name == "install" else "event",
            event_name=event_name,
            dedup_key=dedup_key("s2s", txid, *report) if status else dedup_key("s2s", txid),
            occurred_at=occurred_at,
            click_id=f.text("click_id", "clickid", "transaction_id", "aff_click_id"),
            gaid=gaid,
            idfa=idfa,
            idfv=idfv,
            app_id=app_id,
            platform=platform or "web",
            revenue=f.amount(("amount", "sum"), (), settings),
            currency=f.currency("currency"),
            country=f.country("country", "country_code"),
            player_id=f.text("player_id", "user_id"),
            txid=txid,
            status=status,
            ip=f.ip("ip"),
        )
