"""What load balancers and supervisors ask: ``/healthz`` (ready: the database and the broker
answer) and ``/livez`` (the process runs; nothing else is asked)."""

import logging
import time
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)

# Probes come every few seconds from every balancer: a broker check is kept this long.
BROKER_CHECK_SECONDS = 5.0
_broker_checked: list[float] = [0.0]


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return f"unavailable: {exc}"[:200]
    return "ok"


def _broker() -> str:
    if time.monotonic() < _broker_checked[0]:
        return "ok"
    try:
        if settings.EMBEDDED_BROKER:
            if not Path(settings.CELERY_QUEUE_DIR).is_dir():
                return "unavailable: the queue folder is missing"
        else:
            with current_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"unavailable: {exc}"[:200]
    _broker_checked[0] = time.monotonic() + BROKER_CHECK_SECONDS
    return "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: 200 when the database and the broker answer, else 503 saying which not.

    The database check is bounded by the web tier's deadlines (``portal.lib.deadlines``), so a
    silent database makes this a 503 within seconds, and the balancer stops sending traffic.
    """
    checks = {"database": _database(), "broker": _broker()}
    ok = all(value == "ok" for value in checks.values())
    if not ok:
        logger.warning("not ready: %s", checks)
    response = JsonResponse({"status": "ok" if ok else "unavailable", **checks})
    response.status_code = 200 if ok else 503
    response["Cache-Control"] = "no-store"
    return response


def livez(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers (restart it if not); asks nothing of the database or broker."""
    return JsonResponse({"status": "ok"})
