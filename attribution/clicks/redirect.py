"""What ``GET /c/<code>`` answers, whoever serves it: the Django view (``attribution.views``)
or the WSGI fast path in front of Django (``attribution.fastpath``). Both call ``click_answer``
and turn its ``Answer`` into a response, so they cannot drift apart.
"""

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import DatabaseError

from attribution.clicks import recording, targets

logger = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Destinations are app-store, MMP and landing URLs of any scheme the operator configured
# (itms-apps://, market://); the operator, not the visitor, chose them.
ALLOWED_SCHEMES = ("http", "https", "itms-apps", "market")
# Headers of every redirect of a click: no cache may keep it (each visitor gets a click id of
# their own), and the destination learns nothing of the page that sent the visitor to us.
REDIRECT_HEADERS = (("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer"))
UNAVAILABLE_TEXT = "Temporarily unavailable; try again."


@dataclass(frozen=True)
class Answer:
    """``status`` 302 with ``location``; 404 (no such link, or nowhere to send anyone); 503
    (the click could not be stored, so the visitor is not redirected)."""

    status: int
    location: str = ""


NOT_FOUND = Answer(404)
UNAVAILABLE = Answer(503)


def click_answer(
    code: str, params: Mapping[str, str], meta: Mapping[str, str], method: str
) -> Answer:
    """Record the click on ``code`` (``recording``) and say where the visitor goes."""
    try:
        # No link code holds a control character (PostgreSQL text cannot even hold a NUL).
        link = None if _CONTROL.search(code) else targets.link_for_redirect(code=code[:64])
        if link is None:
            return NOT_FOUND
        if not link.allowed:
            # The affiliate may not send traffic here any more: no click, the campaign's fallback.
            return Answer(302, link.fallback_url) if link.fallback_url else NOT_FOUND
        recorded = recording.click_record(link=link, params=params, meta=meta, method=method)
    except DatabaseError as exc:
        # Not stored, so not redirected: a 302 promises a stored click.
        logger.error("click not stored, database unavailable: %s", exc)
        return UNAVAILABLE
    return NOT_FOUND if recorded is None else Answer(302, recorded.destination)
