"""Demo settings, all from the environment (12-factor).

SQLite and an embedded Redis by default (``make run`` starts it and sets REDIS_URL);
PostgreSQL, Redis and RabbitMQ when DATABASE_URL, REDIS_URL and CELERY_BROKER_URL are set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TASKSTREAM_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the SQLite files live here; a fresh clone lacks it


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


DEBUG = _flag("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-dev-only-key-do-not-use-in-production"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
if DEBUG and not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "ninja",  # the API docs' Swagger UI from its own static files, not a CDN
    "taskstream",
    "taskstream.rooms",
    "taskstream.notifications",
    "taskstream.jobs",
    "taskstream.pipelines",
    "taskstream.periodic",
    "taskstream.ops",
    "taskstream.collab",
    "example",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # 503 JSON with a code, not a 500, while the database is unreachable.
    "taskstream.unavailable.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "example.security.ContentSecurityPolicyMiddleware",
]

if not DEBUG:
    # Production: HTTPS only (example.security checks each at start-up). Behind a proxy
    # that terminates TLS, it must set X-Forwarded-Proto (and strip the client's).
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

ROOT_URLCONF = "example.urls"
ASGI_APPLICATION = "example.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "example" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_default_db = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", _default_db),
                                              conn_max_age=60, conn_health_checks=True)}
# Persistent connections: a Celery worker otherwise reconnects to the database for every
# task (Celery's Django fix-up closes only connections past CONN_MAX_AGE).
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (server, workers, tests) share the file: WAL and a busy timeout.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # A file (not :memory:) so server and worker subprocesses see the test data; one per
    # test run so concurrent runs on one machine do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_taskstream_{os.getpid()}"}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Django's ModelBackend with sign-in throttles (per client address and per account) in
# front of the password check; the demo account is refused when DEBUG is off.
AUTHENTICATION_BACKENDS = ["example.auth.DemoBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = VAR_DIR / "media"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

REDIS_URL = os.environ.get("REDIS_URL", "")

TASKSTREAM = {
    "REDIS_URL": REDIS_URL or None,
    "KEY_PREFIX": os.environ.get("TASKSTREAM_KEY_PREFIX", "ts:"),
}
# Any other hub setting as JSON, e.g. TASKSTREAM_JSON='{"HEARTBEAT": 30}'.
try:
    TASKSTREAM.update(json.loads(os.environ.get("TASKSTREAM_JSON", "{}")))
except ValueError as exc:
    raise ImproperlyConfigured(f"TASKSTREAM_JSON is not valid JSON: {exc}") from exc

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL
# Pipelines' chords count their finished chunks in the result backend (Redis); other
# tasks store no results.
# (Celery's Redis backend has no Cluster mode: with a redis+cluster:// hub, name another.)
CELERY_RESULT_BACKEND = (os.environ.get("CELERY_RESULT_BACKEND")
                         or (REDIS_URL if "+cluster" not in REDIS_URL else "")) or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Task events for the ops monitor and Flower (`celery worker -E` turns them on as well).
CELERY_WORKER_SEND_TASK_EVENTS = _flag("CELERY_TASK_EVENTS", False)
CELERY_TASK_SEND_SENT_EVENT = CELERY_WORKER_SEND_TASK_EVENTS
# Celery's Django fix-up closes the database connection before and after every task,
# whatever CONN_MAX_AGE says, unless this is set: then every 1,000th task (a LiveTask
# still drops a connection past CONN_MAX_AGE or broken). Reconnecting was ~1 ms a job.
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# django-celery-beat's DatabaseScheduler behind a Redis lock: one beat sends, others stand by.
CELERY_BEAT_SCHEDULER = "taskstream.periodic.scheduler:SingleBeatScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Demo LiveTasks (the "My jobs" page); tests route tasks to a queue of their own.
CELERY_IMPORTS = ["example.jobs_demo", "example.notify_demo"]
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")

# LOG_FORMAT=json: one JSON object per line (taskstream.ops.jsonlog), for log pipelines.
_JSON_LOGS = os.environ.get("LOG_FORMAT") == "json"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "taskstream.ops.jsonlog.JsonFormatter"}} if _JSON_LOGS else {},
    "handlers": {"console": {"class": "logging.StreamHandler",
                             **({"formatter": "json"} if _JSON_LOGS else {})}},
    "loggers": {"taskstream": {"handlers": ["console"], "level": "INFO"}},
}
