"""One settings module for every deployment; production differs only through the environment.

Embedded default (no configuration): SQLite under ``var/`` and Celery over kombu's filesystem
transport under ``var/celery/`` with a real worker that ``make run`` starts beside the web server.
Given ``DATABASE_URL`` and ``CELERY_BROKER_URL`` the same code runs on PostgreSQL and Redis or
RabbitMQ. Which of the two is in force is logged once at start (``portal.apps``).
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-not-secret-" + "x" * 40)
else:
    # No default outside DEBUG: a production deployment that forgot it must not start.
    SECRET_KEY = env.str("SECRET_KEY")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "portal.apps.PortalConfig",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "affiliates",
    "attribution",
    "payouts",
]

MIDDLEWARE = [
    # First: a click request is counted as on its way from the start (group commit, clicks).
    "attribution.middleware.ClickComingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.lib.csp.ContentSecurityPolicyMiddleware",
    # A database that is away answers 503, a body that never came 408 (portal/lib/deadlines.py).
    "portal.lib.deadlines.UnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers locked-out logins.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "affiliates.context.notifications",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
EMBEDDED_DATABASE = "DATABASE_URL" not in env
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, for the test database too: the real Celery worker the integration
    # tests start is another process and must see what the test wrote.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        # The web server and the worker write to the same file: wait for the lock, take it at
        # BEGIN rather than upgrading mid-transaction, and let readers run beside one writer.
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with a deadline on the reuse health check in web processes.
        DATABASES["default"]["ENGINE"] = "portal.lib.postgresql"
    # A database that does not answer must fail fast, not hold requests: connecting gives up
    # after DB_CONNECT_TIMEOUT; a connection whose packets go unanswered (a partition) is
    # dropped by TCP within seconds (tcp_user_timeout, keepalives).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=3),
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            "tcp_user_timeout": env.int("DB_TCP_USER_TIMEOUT_MS", default=5000),
        }
    )
# Web processes only (portal/wsgi.py): no database round trip of a request waits longer.
DB_QUERY_DEADLINE_SECONDS = env.float("DB_QUERY_DEADLINE_SECONDS", default=5.0)
# Behind gunicorn: a request's body must arrive within this (portal/lib/deadlines.py).
REQUEST_BODY_TIMEOUT_SECONDS = env.float("REQUEST_BODY_TIMEOUT_SECONDS", default=10.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery ---------------------------------------------------------------------------------
EMBEDDED_BROKER = "CELERY_BROKER_URL" not in env
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if EMBEDDED_BROKER:
    CELERY_QUEUE_DIR = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR),
        "data_folder_out": str(CELERY_QUEUE_DIR),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
else:
    # A publish that cannot reach the broker must fail fast: the row is already durable and the
    # sweep re-queues it, so the sender should not wait on broker retries.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
# Celery's Django fixup closes the database connection around every task unless told to reuse
# it: a new PostgreSQL session per postback cost more than the attribution itself.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# A publish to a broker that is down must not hold the sender's request: fail fast, the row is
# durable and the sweep re-queues it.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}
POSTBACK_SWEEP_GRACE_SECONDS = env.int("POSTBACK_SWEEP_GRACE_SECONDS", default=120)
POSTBACK_SWEEP_BATCH = env.int("POSTBACK_SWEEP_BATCH", default=5000)
# Inbox rows one attribution task takes at a time (the sweep and ingestion publish batches).
POSTBACK_BATCH = env.int("POSTBACK_BATCH", default=200)
# A row that keeps meeting database errors (a statement of its own timing out) is marked failed
# after this many attempts, so that it never holds up the rows behind it. A row that fails for a
# reason of its own (a value the database refuses) is marked failed at once.
POSTBACK_MAX_ATTEMPTS = env.int("POSTBACK_MAX_ATTEMPTS", default=5)
# How the web process hands stored postbacks to the workers (attribution/handoff.py):
# "background", a thread per process publishing one task per batch every 50 ms; or "sync", one
# task per postback from the request itself (the embedded default: a file per message anyway).
POSTBACK_HANDOFF = env.str("POSTBACK_HANDOFF", default="sync" if EMBEDDED_BROKER else "background")
if POSTBACK_HANDOFF not in ("background", "sync"):
    raise ImproperlyConfigured(
        f"POSTBACK_HANDOFF must be background or sync, not {POSTBACK_HANDOFF!r}"
    )
# Concurrent postback requests of one process share one INSERT and one commit
# (attribution/groupcommit.py): PostgreSQL only, on by default there.
_POSTGRES = DATABASES["default"]["ENGINE"] == "portal.lib.postgresql"
POSTBACK_GROUP_COMMIT = env.bool("POSTBACK_GROUP_COMMIT", default=_POSTGRES)
if POSTBACK_GROUP_COMMIT and not _POSTGRES:
    raise ImproperlyConfigured("POSTBACK_GROUP_COMMIT needs PostgreSQL (DATABASE_URL)")
# How long a web process keeps a postback source it looked up by token (0: look up every time).
POSTBACK_SOURCE_CACHE_SECONDS = env.float("POSTBACK_SOURCE_CACHE_SECONDS", default=5.0)
# The longest the first row of a group waits for the requests under way to join it.
POSTBACK_GROUP_COMMIT_WAIT_MS = env.float("POSTBACK_GROUP_COMMIT_WAIT_MS", default=10.0)
# Outbound postbacks (calls to affiliates' own servers) have a queue and workers of their own:
# `celery -A portal worker -Q outbound`. Attribution workers take the default queue only
# (`-Q celery`), so a slow receiver can never delay attribution.
CELERY_TASK_ROUTES = {
    "attribution.dispatch_outbound": {"queue": "outbound"},
    "attribution.send_outbound": {"queue": "outbound"},
}
CELERY_BEAT_SCHEDULE = {
    "manager-alerts": {"task": "affiliates.manager_alerts", "schedule": 3600.0},
    "apply-setting-changes": {"task": "affiliates.apply_setting_changes", "schedule": 300.0},
    "sweep-postbacks": {"task": "attribution.sweep_postbacks", "schedule": 60.0},
    "fill-click-rollups": {"task": "attribution.fill_click_rollups", "schedule": 60.0},
    "click-partitions": {"task": "attribution.click_partitions", "schedule": 6 * 3600.0},
    "sweep-ledger": {"task": "payouts.sweep_ledger", "schedule": 60.0},
    "refresh-cohort-facts": {"task": "payouts.refresh_cohort_facts", "schedule": 60.0},
    "close-previous-month": {"task": "payouts.close_previous_month", "schedule": 3600.0},
}

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # Login throttling: after AXES_FAILURE_LIMIT failures a username+IP is locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# What axes records of a failed login's username: cut to a username's length (its column is 255).
AXES_USERNAME_CALLABLE = "portal.lib.logins.axes_username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Managers sign in to the admin with a one-time code (TOTP) as well as their password. Off only
# where asked for, and by default in DEBUG so that `make run` works without an authenticator.
ADMIN_2FA = env.bool("ADMIN_2FA", default=not DEBUG)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Affiliate portal")
# With ADMIN_2FA a manager's API token is issued only for a one-time code, and lasts this long.
STAFF_TOKEN_HOURS = env.int("STAFF_TOKEN_HOURS", default=12)

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/login/"
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")
# Where the portal answers, for links in emails (unsubscribe, "read more").
PORTAL_URL = env.str("PORTAL_URL", default="http://127.0.0.1:8000")
# Managers are told when this many conversions wait for review.
REVIEW_QUEUE_ALERT = env.int("REVIEW_QUEUE_ALERT", default=50)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Front-end packages come from npm (`make` runs `npm ci`), served under static/vendor/.
if (BASE_DIR / "node_modules" / "chart.js" / "dist").is_dir():
    STATICFILES_DIRS.append(("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"))
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
# Uploads (campaign creatives) go through the default storage; on disk, here. Without it Django
# writes them into the working directory.
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed names need `collectstatic`, which production runs at deploy time.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("STATIC_MANIFEST", default=not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (production defaults; DEBUG relaxes what a laptop cannot do) -------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# On every answer (portal.lib.csp). Scripts only from our own files; inline style attributes are
# allowed (the admin and the API docs use them), inline scripts are not.
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
# Preloading HSTS is a promise about the operator's whole domain that only they can make
# (SECURE_HSTS_PRELOAD=true); until they do, the check's reminder is noise in every deploy.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "affiliates.authentication.PortalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Also documents the error answers (400/401/403/404/415/429) each endpoint can give.
    "DEFAULT_SCHEMA_CLASS": "portal.api.PortalAutoSchema",
    # Per process (the default cache): enough to slow password guessing at one web process;
    # a shared cache (CACHES) makes it exact across processes.
    "DEFAULT_THROTTLE_RATES": {"auth-token": "10/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Affiliate portal API",
    "DESCRIPTION": "Affiliates read their own results, conversions, clicks, links and payouts; "
    "managers read everything and manage affiliates, campaigns, links and commission plans. "
    "Authenticate with `Authorization: Token <key>` (POST /api/v1/auth/token/).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components: read-only fields are not asked for, write-only
    # ones (passwords) never appear in answers.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from the drf-spectacular-sidecar package: /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AffiliateStatusEnum": "affiliates.models.Affiliate.Status",
        "CampaignStatusEnum": "affiliates.models.Campaign.Status",
        "ConversionStatusEnum": "attribution.models.Conversion.Status",
        "PayoutStatusEnum": "payouts.models.Payout.Status",
        "ConversionTypeEnum": "attribution.models.ConversionType",
    },
}

# --- Outbound postbacks to affiliates ------------------------------------------------------
# Only public addresses are called. Networks listed here may be called too: for tests and
# private deployments only (e.g. "10.20.0.0/16"; "0.0.0.0/0,::/0" turns the check off).
OUTBOUND_ALLOW_NETWORKS = env.list("OUTBOUND_ALLOW_NETWORKS", default=[])
OUTBOUND_TIMEOUT_SECONDS = env.float("OUTBOUND_TIMEOUT_SECONDS", default=5.0)
# The whole of one delivery, from DNS to the last byte read: a receiver that trickles its answer
# is cut off here (OUTBOUND_TIMEOUT_SECONDS bounds each connect and read only).
OUTBOUND_DEADLINE_SECONDS = env.float("OUTBOUND_DEADLINE_SECONDS", default=10.0)
# Postback URLs an affiliate may have (the forms refuse more; only this many are called).
OUTBOUND_MAX_ENDPOINTS = env.int("OUTBOUND_MAX_ENDPOINTS", default=10)
# Deliveries that may wait for one URL; past it, a delivery is logged as failed, not queued.
OUTBOUND_MAX_QUEUED = env.int("OUTBOUND_MAX_QUEUED", default=50)
# A count of waiting deliveries not touched for this long was left by lost tasks: start again.
OUTBOUND_QUEUED_STALE_SECONDS = env.int("OUTBOUND_QUEUED_STALE_SECONDS", default=3600)
# The test button: one test per URL this often, and none while deliveries wait for it.
OUTBOUND_TEST_INTERVAL_SECONDS = env.int("OUTBOUND_TEST_INTERVAL_SECONDS", default=60)
OUTBOUND_MAX_ATTEMPTS = env.int("OUTBOUND_MAX_ATTEMPTS", default=5)
OUTBOUND_BACKOFF_SECONDS = env.int("OUTBOUND_BACKOFF_SECONDS", default=30)
OUTBOUND_DISABLE_AFTER = env.int("OUTBOUND_DISABLE_AFTER", default=20)
OUTBOUND_NOTICE_AT = (5, 10, 15)

# --- Money ---------------------------------------------------------------------------------
# FX rates are kept against this currency (Payouts > FX rates).
BASE_CURRENCY = env.str("BASE_CURRENCY", default="EUR")
# Self-billing invoices (payouts.invoices): the operator who issues them on the affiliates'
# behalf, and a Unicode TrueType font for names in any script (Debian: fonts-dejavu-core,
# installed by `make`); without the font the PDF falls back to Latin-1.
INVOICE_ISSUER = env.str("INVOICE_ISSUER", default="Lucky Spins Ltd")
INVOICE_ISSUER_ADDRESS = env.str(
    "INVOICE_ISSUER_ADDRESS", default="1 Harbour Road, Valletta, Malta"
)
INVOICE_ISSUER_VAT_ID = env.str("INVOICE_ISSUER_VAT_ID", default="MT12345678")
INVOICE_PREFIX = env.str("INVOICE_PREFIX", default="SB")
INVOICE_FONT = env.str("INVOICE_FONT", default="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

# --- Tracking -------------------------------------------------------------------------------
# AppsFlyer media source (pid) the portal is registered under as an integrated partner.
APPSFLYER_PID = env.str("APPSFLYER_PID", default="affportal_int")
# Header a CDN or load balancer sets with the visitor's country (Cloudflare: CF-IPCountry).
COUNTRY_HEADER = env.str("COUNTRY_HEADER", default="HTTP_CF_IPCOUNTRY")
# Clicks (attribution/clicks/writing.py): concurrent clicks of one web process share one COPY and
# one commit on PostgreSQL (CLICK_GROUP_COMMIT); "sync" answers 302 once the click is committed,
# "buffered" answers first and writes within CLICK_GROUP_COMMIT_WAIT_MS (loss window: README).
CLICK_GROUP_COMMIT = env.bool("CLICK_GROUP_COMMIT", default=_POSTGRES)
if CLICK_GROUP_COMMIT and not _POSTGRES:
    raise ImproperlyConfigured("CLICK_GROUP_COMMIT needs PostgreSQL (DATABASE_URL)")
CLICK_GROUP_COMMIT_WAIT_MS = env.float("CLICK_GROUP_COMMIT_WAIT_MS", default=10.0)
CLICK_WRITE = env.str("CLICK_WRITE", default="sync")
if CLICK_WRITE not in ("sync", "buffered"):
    raise ImproperlyConfigured(f"CLICK_WRITE must be sync or buffered, not {CLICK_WRITE!r}")
if CLICK_WRITE == "buffered" and not CLICK_GROUP_COMMIT:
    raise ImproperlyConfigured("CLICK_WRITE=buffered needs CLICK_GROUP_COMMIT (PostgreSQL)")
# How long a web process keeps the link behind a /c/<code> it looked up (0: look up every time).
CLICK_LINK_CACHE_SECONDS = env.float("CLICK_LINK_CACHE_SECONDS", default=5.0)
# The click table by month on PostgreSQL (attribution/clicks/partitions.py): partitions made this
# many months ahead (beat, daily), and months of clicks kept (0: all; else at least 4, so that
# every lookback window, 90 days at most, still finds its clicks).
CLICK_PARTITIONS_AHEAD = env.int("CLICK_PARTITIONS_AHEAD", default=3)
CLICK_RETENTION_MONTHS = env.int("CLICK_RETENTION_MONTHS", default=0)
if CLICK_RETENTION_MONTHS and CLICK_RETENTION_MONTHS < 4:
    raise ImproperlyConfigured(
        f"CLICK_RETENTION_MONTHS must be 0 (keep all) or at least 4, not {CLICK_RETENTION_MONTHS}"
    )
if CLICK_PARTITIONS_AHEAD < 1:
    raise ImproperlyConfigured("CLICK_PARTITIONS_AHEAD must be at least 1")
# How often a web process writes its counts of skipped requests (HEAD, bots) to SkippedClicks.
CLICK_SKIPPED_FLUSH_SECONDS = env.float("CLICK_SKIPPED_FLUSH_SECONDS", default=10.0)
# Number of proxies in front of the app whose X-Forwarded-For entries are trusted (0: none).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
