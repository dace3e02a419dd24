"""Per-source postback adapters: sender parameters in, one :class:`NormalisedEvent` out.

Framework-free on purpose: the ingestion view and the worker hand in a plain mapping (query
parameters merged with the form or JSON body, the body winning) and get back a normalised event or
a :class:`PostbackError` whose message is the sender's 400 and the inbox row's reason.
"""

from __future__ import annotations

from .adjust import AdjustAdapter
from .appsflyer import AppsFlyerAdapter
from .base import DEFAULT_SETTINGS, Adapter, NormalisedEvent, Payload, PostbackError, SourceSettings
from .branch import BranchAdapter
from .kochava import KochavaAdapter
from .s2s import S2SAdapter
from .singular import SingularAdapter

__all__ = [
    "ADAPTERS",
    "DEFAULT_SETTINGS",
    "Adapter",
    "NormalisedEvent",
    "Payload",
    "PostbackError",
    "SourceSettings",
    "get_adapter",
]

ADAPTERS: dict[str, Adapter] = {
    adapter.source: adapter
    for adapter in (
        AppsFlyerAdapter(),
        AdjustAdapter(),
        BranchAdapter(),
        SingularAdapter(),
        KochavaAdapter(),
        S2SAdapter(),
    )
}


def get_adapter(source: str) -> Adapter:
    """The adapter for ``source`` (one of :data:`ADAPTERS`' keys); KeyError for anything else."""
    try:
        return ADAPTERS[source]
    except (KeyError, TypeError):
        raise KeyError(f"no postback adapter for source {source!r}") from None
