import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from portal.lib.deadlines import BodyDeadline

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_application = get_wsgi_application()

from attribution.fastpath import ClickFastPath  # noqa: E402 - needs the apps loaded

# Behind gunicorn, a request's body must arrive in time (portal.lib.deadlines); the database
# deadline is put on in gunicorn.conf.py, for web processes only. Clicks, which have no body,
# are answered in front of Django (attribution.fastpath).
application = ClickFastPath(BodyDeadline(django_application, settings.REQUEST_BODY_TIMEOUT_SECONDS))
