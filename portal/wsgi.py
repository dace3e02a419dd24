import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from portal.lib.deadlines import BodyDeadline

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Behind gunicorn, a request's body must arrive in time (portal.lib.deadlines); the database
# deadline is put on in gunicorn.conf.py, for web processes only.
application = BodyDeadline(get_wsgi_application(), settings.REQUEST_BODY_TIMEOUT_SECONDS)
