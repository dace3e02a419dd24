import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db.backends.signals import connection_created

from portal.lib.deadlines import BodyDeadline, QueryWatchdog, watch_connection

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

# The web tier's deadlines (portal.lib.deadlines): workers run long batches and have none.
_watchdog = QueryWatchdog(settings.DB_QUERY_DEADLINE_SECONDS)
connection_created.connect(
    lambda sender, connection, **kwargs: watch_connection(_watchdog, connection), weak=False
)
application = BodyDeadline(application, settings.REQUEST_BODY_TIMEOUT_SECONDS, _watchdog)
