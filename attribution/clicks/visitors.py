"""Who counts as a visitor. ``HEAD`` requests and known bots, crawlers and link previewers are
redirected like anyone, but recorded only as a number per day, link and reason (SkippedClicks).

The bot list is crawlerdetect's (a Python port of JayBizzle's Crawler-Detect, about 1,500
patterns, kept up to date upstream): upgrading the package is how the list is maintained. Its one
big regular expression costs about half a millisecond a user agent, as much as the rest of a
click, so each process remembers the answer for the user agents it has seen (browsers send few
distinct ones: a cache hit costs a tenth of a microsecond).
"""

import logging
import threading
import time
from collections import Counter
from functools import lru_cache

from crawlerdetect import CrawlerDetect
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from attribution.models import SkippedClicks

logger = logging.getLogger(__name__)

_detector = CrawlerDetect()


@lru_cache(maxsize=16384)
def is_bot(user_agent: str) -> bool:
    """Whether ``user_agent`` names a bot, crawler, scanner or link previewer. An empty one
    does not: a browser's privacy settings or an app's web view may send none."""
    return _detector.is_crawler(user_agent)


def skip_reason(*, method: str, user_agent: str) -> str:
    """Why this request is not a click (a ``SkippedClicks.Reason``), or "" for a visitor."""
    if method == "HEAD":
        return SkippedClicks.Reason.HEAD
    if user_agent and is_bot(user_agent):
        return SkippedClicks.Reason.BOT
    return ""


class SkipTally:
    """One process's counts of skipped requests, written to SkippedClicks at most every
    ``CLICK_SKIPPED_FLUSH_SECONDS`` by the request that finds them due (one upsert a counter),
    and by ``flush()`` when the web worker exits.

    Not the click's own durability: a process killed outright loses the counts since its last
    flush (a few seconds of bot traffic), never a click.
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, int, str]] = Counter()
        self._lock = threading.Lock()
        self._flushed_at = 0.0

    def add(self, *, link_id: int, reason: str) -> None:
        day = timezone.now().date().isoformat()
        with self._lock:
            self._counts[(day, link_id, reason)] += 1
            due = time.monotonic() - self._flushed_at >= settings.CLICK_SKIPPED_FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
            self._flushed_at = time.monotonic()
        if not counts:
            return
        table = connection.ops.quote_name(SkippedClicks._meta.db_table)
        sql = (
            f"INSERT INTO {table} (day, link_id, reason, count) VALUES (%s, %s, %s, %s) "  # noqa: S608
            "ON CONFLICT (day, link_id, reason) DO UPDATE "
            f"SET count = {table}.count + excluded.count"
        )
        try:
            with connection.cursor() as cursor:
                cursor.executemany(sql, [(*key, n) for key, n in sorted(counts.items())])
        except DatabaseError as exc:
            # A counter is not worth a visitor's redirect: keep the counts for the next flush.
            logger.warning("skipped-click counters not written, kept for later: %s", exc)
            with self._lock:
                self._counts.update(counts)


tally = SkipTally()
