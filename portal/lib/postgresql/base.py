"""Django's PostgreSQL backend, whose reuse health check a web process can put a deadline on.

Django checks a kept connection with a ``SELECT 1`` sent straight to the driver before a request
reuses it; against a silent server (a network partition) that waited for as long as the
partition lasted. ``portal.lib.deadlines.watch_connection`` gives the connection a watchdog,
which bounds that check as it bounds every query. Without one (workers), nothing changes.
"""

from typing import Any

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    watchdog: Any = None

    def is_usable(self) -> bool:
        if self.watchdog is None:
            return super().is_usable()
        try:
            with self.watchdog.watching(self.connection):
                return super().is_usable()
        except base.DatabaseError:
            return False
