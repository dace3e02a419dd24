import logging
from pathlib import Path

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("portal")


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        db = settings.DATABASES["default"]
        logger.info(
            "database: %s%s",
            db["ENGINE"].rsplit(".", 1)[-1],
            " (embedded default: SQLite under var/; set DATABASE_URL for PostgreSQL)"
            if settings.EMBEDDED_DATABASE
            else "",
        )
        if not settings.ADMIN_2FA:
            logger.warning("admin two-factor login is OFF (ADMIN_2FA=false or DEBUG)")
        if settings.EMBEDDED_BROKER:
            for folder in ("data_folder_in", "processed_folder", "control_folder"):
                Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS[folder]).mkdir(
                    parents=True, exist_ok=True
                )
            logger.info(
                "celery: embedded default, kombu filesystem transport at %s; tasks run in the "
                "worker that `make run` starts (set CELERY_BROKER_URL for Redis or RabbitMQ)",
                settings.CELERY_QUEUE_DIR,
            )
        else:
            logger.info("celery: broker %s", _redact(settings.CELERY_BROKER_URL))
        logger.info(
            "postbacks: hand-off to workers %s (POSTBACK_HANDOFF), group commit %s "
            "(POSTBACK_GROUP_COMMIT)",
            settings.POSTBACK_HANDOFF,
            "on" if settings.POSTBACK_GROUP_COMMIT else "off",
        )


def _redact(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[-1]}"
