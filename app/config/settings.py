"""Django settings for the stack: one module, every value read from the environment.

.env.example lists each variable with its default. Defaults are safe for production; what must
differ between deployments has no default that boots (see config/secrets.py).
https://docs.djangoproject.com/en/6.1/ref/settings/
"""

import importlib.util
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from environs import Env
from marshmallow import ValidationError
from marshmallow.validate import OneOf, Range

from config.environment import JSON_LOG_FORMATTER, log_format, server_interface
from config.secrets import read_secret

env = Env(expand_vars=False)

BASE_DIR = Path(__file__).resolve().parent.parent

# A fully qualified host name: dot-separated labels of letters, digits and inner hyphens.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = rf"(?=.{{1,253}}$)({_LABEL}\.)+[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?"


def _host_name(name: str) -> None:
    if name and not re.fullmatch(_HOST_NAME, name):
        raise ValidationError("a host name is wanted (no scheme, port or path), e.g. example.com")


# Content-Security-Policy sources, as DJANGO_CSP_* lists them (docs/security.md). Keywords may
# be written without their single quotes, which a .env file would strip anyway.
_CSP_KEYWORDS = {
    "self",
    "unsafe-inline",
    "unsafe-eval",
    "unsafe-hashes",
    "strict-dynamic",
    "wasm-unsafe-eval",
    "report-sample",
}
_CSP_HASH = r"sha(256|384|512)-[A-Za-z0-9+/_-]+={0,2}"
_CSP_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*:"
_CSP_HOST = (
    r"([A-Za-z][A-Za-z0-9+.-]*://)?(\*|(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)"
    r"(:([0-9]{1,5}|\*))?(/[^\s;,'\"]*)?"
)


def _csp_source(value: str, nonce_allowed: bool) -> str:
    """One source expression, keywords and hashes quoted; ValidationError if it is none."""
    bare = value.strip("'")
    if bare == "nonce" and nonce_allowed:
        return CSP.NONCE
    if bare in ("none", "nonce"):
        raise ValidationError(
            f"{value!r} has no place here ('none' only stands alone; a nonce is for "
            "DJANGO_CSP_SCRIPT_SRC and DJANGO_CSP_STYLE_SRC)"
        )
    if bare in _CSP_KEYWORDS or re.fullmatch(_CSP_HASH, bare):
        return f"'{bare}'"
    if "'" not in value and (re.fullmatch(_CSP_SCHEME, value) or re.fullmatch(_CSP_HOST, value)):
        return value
    raise ValidationError(
        f"{value!r} is not a CSP source: a host (cdn.example.com, https://*.example.com), a "
        "scheme (data:, blob:, https:) or a keyword (unsafe-inline, unsafe-eval, "
        "strict-dynamic, sha256-..., nonce for scripts and styles)"
    )


def _csp_sources(variable: str, nonce_allowed: bool = False) -> list[str]:
    """The sources a DJANGO_CSP_* variable adds to its directive (comma-separated)."""
    values = [value.strip() for value in env.list(variable, []) if value.strip()]
    try:
        return [_csp_source(value, nonce_allowed) for value in values]
    except ValidationError as error:
        raise ImproperlyConfigured(f"{variable}: {error.messages[0]}") from None


# SECURITY WARNING: don't run with debug turned on in production!
DEBUG = env.bool("DJANGO_DEBUG", False)

# SECURITY WARNING: keep the secret key used in production secret!
SECRET_KEY = read_secret("DJANGO_SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY or DJANGO_SECRET_KEY_FILE.")
    # Only ever with DJANGO_DEBUG=true, on a developer's machine.
    SECRET_KEY = "django-insecure-only-for-local-debugging"  # noqa: S105  # nosec B105

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
# The site's public host name once it is served over HTTPS (compose.https.yaml passes DOMAIN):
# it joins the allowed hosts, and https://DOMAIN the trusted origins.
DOMAIN = env.str("DJANGO_DOMAIN", "", validate=_host_name)
if DOMAIN:
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, DOMAIN]
    CSRF_TRUSTED_ORIGINS = [*CSRF_TRUSTED_ORIGINS, f"https://{DOMAIN}"]


# Applications

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before core: its failed-login receiver runs after axes' and reports axes' count.
    "axes",
    "core",
    "demo",  # demo: scripts/init.sh --no-demo removes every line marked like this
]

MIDDLEWARE = [
    # First, so probes answer before host validation or HTTPS redirects get a say.
    "core.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # {{ csp_nonce }} for inline scripts and styles (docs/security.md).
                "django.template.context_processors.csp",
            ],
            "loaders": [
                "django.template.loaders.filesystem.Loader",
                "django.template.loaders.app_directories.Loader",
            ],
        },
    },
]
if not DEBUG:
    # Compiled once per process. With DEBUG, templates are read on every render instead, so an
    # edit shows on the next page load (gunicorn restarts workers for Python files only).
    TEMPLATES[0]["OPTIONS"]["loaders"] = [
        ("django.template.loaders.cached.Loader", TEMPLATES[0]["OPTIONS"]["loaders"])
    ]

# Development tools: django-debug-toolbar is in the dev dependency group only, so this is
# refused where it is not installed (the production image) and without DEBUG.
# https://django-debug-toolbar.readthedocs.io/en/latest/installation.html
DEBUG_TOOLBAR = env.bool("DJANGO_DEBUG_TOOLBAR", False)
if DEBUG_TOOLBAR:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG_TOOLBAR=true needs DJANGO_DEBUG=true.")
    if importlib.util.find_spec("debug_toolbar") is None:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG_TOOLBAR=true, but django-debug-toolbar is not installed: it is in the "
            "dev dependency group, in the image's dev target (compose.dev.yaml) only."
        )
    INSTALLED_APPS.append("debug_toolbar")
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "debug_toolbar.middleware.DebugToolbarMiddleware",
    )
    # Requests reach Django from nginx, never from INTERNAL_IPS: DEBUG alone decides.
    DEBUG_TOOLBAR_CONFIG = {"SHOW_TOOLBAR_CALLBACK": "core.debug.show_toolbar"}


# Database: Postgres through psycopg 3
# https://docs.djangoproject.com/en/6.1/ref/databases/#postgresql-notes

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": env.str("POSTGRES_HOST", "db"),
        "PORT": env.int("POSTGRES_PORT", 5432),
        "NAME": env.str("POSTGRES_DB", "app"),
        "USER": env.str("POSTGRES_USER", "app"),
        "PASSWORD": read_secret("POSTGRES_PASSWORD") or "",
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5},
    }
}
# WSGI: each sync worker keeps its one connection across requests (checked before reuse).
# ASGI: sync code runs in many threads, and per-thread connections would pile up; a pool of
# DJANGO_DB_POOL_SIZE connections per worker process serves them all instead. Keep
# web workers x pool size + Celery concurrency + a few below Postgres' max_connections (100).
SERVER_INTERFACE = server_interface()
DB_POOL_SIZE = env.int(
    "DJANGO_DB_POOL_SIZE", 8 if SERVER_INTERFACE == "asgi" else 0, validate=Range(min=0, max=50)
)
if DB_POOL_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_SIZE,
        # How long a request waits for a free (or, with Postgres down, any) connection.
        "timeout": 5,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = 60

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# Redis: Celery's broker (database 0) and, on a server of its own, the cache (database 1).
# Two servers, because each needs the opposite memory policy: a full broker must refuse new
# tasks and keep the queued ones, a full cache must forget old entries (compose.yaml). Pointing
# REDIS_CACHE_HOST at the broker's server works (database 1 keeps them apart), but then a cache
# that fills up makes the broker refuse tasks.

REDIS_HOST = env.str("REDIS_HOST", "redis")
REDIS_PORT = env.int("REDIS_PORT", 6379)
REDIS_CACHE_HOST = env.str("REDIS_CACHE_HOST", "cache")
REDIS_CACHE_PORT = env.int("REDIS_CACHE_PORT", 6379)
# One password for both servers (the secrets volume's redis.conf).
_redis_password = read_secret("REDIS_PASSWORD")
_redis_auth = f":{quote(_redis_password, safe='')}@" if _redis_password else ""
REDIS_URL = f"redis://{_redis_auth}{REDIS_HOST}:{REDIS_PORT}"
REDIS_CACHE_URL = f"redis://{_redis_auth}{REDIS_CACHE_HOST}:{REDIS_CACHE_PORT}"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"{REDIS_CACHE_URL}/1",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}


# Celery
# https://docs.celeryq.dev/en/stable/userguide/configuration.html

CELERY_BROKER_URL = f"{REDIS_URL}/0"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task taken by a worker that then dies (SIGKILL, OOM) goes back to the queue after
# CELERY_VISIBILITY_TIMEOUT seconds: keep it longer than your longest task, or long tasks run
# twice. kombu looks for such tasks every interval x throttle seconds (10 x 10 by default, which
# would add up to 100 s); every 5 s is cheap (one sorted-set query).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 300, validate=Range(min=1)),
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    # While Redis restarts, each connection attempt fails within 2 s instead of hanging, and
    # attempts go on for 15 s (kombu gives up after its connect timeout, 5 s by default, whatever
    # the publish retry policy below says).
    "socket_connect_timeout": 2,
    "connect_retries_timeout": 15,
}
# While Redis restarts, enqueueing waits for it (up to about 15 s) instead of failing.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 30,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 0.5,
}
# No result backend: a task with an outcome worth keeping records it itself.
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged after it ran, so a worker that dies mid-task leaves it to be redelivered.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Database connections are kept across tasks as across requests (CONN_MAX_AGE, checked before
# reuse; config/celery.py); Celery's own rule would close them after every task.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# beat touches a heartbeat file on every pass of its loop, at least every 5 s; its healthcheck
# fails when the file grows old (core/beat.py).
CELERY_BEAT_SCHEDULER = "core.beat.HeartbeatScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
CELERY_BEAT_SCHEDULE = {
    # "name": {"task": "app.tasks.function", "schedule": seconds or celery.schedules.crontab},
    "demo-beat-tick": {"task": "demo.tasks.beat_tick", "schedule": 30.0},  # demo
    "demo-requeue-stale": {"task": "demo.tasks.requeue_stale_runs", "schedule": 30.0},  # demo
}


# Security: the site sits behind nginx, which may or may not terminate TLS.
# https://docs.djangoproject.com/en/6.1/howto/deployment/checklist/

# nginx sets this header from the scheme of the connection it accepted.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = False
# Turn on once the site is served over HTTPS: redirects, secure cookies and HSTS follow.
HTTPS = env.bool("DJANGO_HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
# An hour to start with; raise it (and add subdomains/preload) once HTTPS is there to stay.
SECURE_HSTS_SECONDS = 3600 if HTTPS else 0
# includeSubDomains and preload bind every subdomain to HTTPS for months: that is the domain
# owner's call, not a template's, so their deploy-check warnings are silenced here on purpose.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
# Pages load scripts, styles and images from this site only; nothing may frame them. Each
# DJANGO_CSP_<DIRECTIVE> adds sources to its directive (docs/security.md); browsers report what
# the policy blocks to CSP_REPORT_PATH, which logs each report as a WARNING (core/csp.py).
CSP_REPORT_PATH = "/csp-report/"
# Report lines a web process logs a minute at most; more are counted, not logged.
CSP_REPORTS_PER_MINUTE = 60
_csp_policy = {
    "default-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
for _directive, _nonce_allowed in (
    ("script-src", True),
    ("style-src", True),
    ("img-src", False),
    ("connect-src", False),
    ("font-src", False),
    ("frame-src", False),
    ("media-src", False),
    ("worker-src", False),
):
    _variable = "DJANGO_CSP_" + _directive.upper().replace("-", "_")
    if _extra := _csp_sources(_variable, _nonce_allowed):
        _csp_policy[_directive] = [*_csp_policy.get(_directive, [CSP.SELF]), *_extra]
_csp_policy["report-uri"] = [CSP_REPORT_PATH]
# true: the policy is only reported (Content-Security-Policy-Report-Only), never enforced: for
# trying a stricter policy out on a live site before enforcing it.
CSP_REPORT_ONLY = env.bool("DJANGO_CSP_REPORT_ONLY", False)
SECURE_CSP = {} if CSP_REPORT_ONLY else _csp_policy
SECURE_CSP_REPORT_ONLY = _csp_policy if CSP_REPORT_ONLY else {}
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Login throttling (django-axes, docs/security.md): DJANGO_LOGIN_FAILURE_LIMIT failed logins for
# one username from one client address lock that pair out for DJANGO_LOGIN_COOLOFF_MINUTES,
# answered 429. Per pair, never per username alone: an attacker elsewhere cannot lock the real
# admin out. The address is REMOTE_ADDR: the visitor's, as nginx saw it (config/forwarded.py
# under WSGI, uvicorn's proxy headers under ASGI), never a header a client chose.
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("DJANGO_LOGIN_FAILURE_LIMIT", 5, validate=Range(min=1, max=1000))
AXES_COOLOFF_TIME = timedelta(
    minutes=env.int("DJANGO_LOGIN_COOLOFF_MINUTES", 15, validate=Range(min=1, max=7 * 24 * 60))
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "core.auth.client_address"
AXES_LOCKOUT_CALLABLE = "core.auth.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = True


# Outgoing mail: SMTP, configured by EMAIL_*; DJANGO_EMAIL_BACKEND=console writes each message
# to the log instead (compose.dev.yaml does). Django 6.1's MAILERS, which replaces the EMAIL_*
# settings. https://docs.djangoproject.com/en/6.1/topics/email/

EMAIL_BACKEND_NAME = env.str("DJANGO_EMAIL_BACKEND", "smtp", validate=OneOf(["smtp", "console"]))
SMTP_OPTIONS = {
    "host": env.str("EMAIL_HOST", "localhost"),
    "port": env.int("EMAIL_PORT", 25, validate=Range(min=1, max=65535)),
    "username": env.str("EMAIL_HOST_USER", ""),
    "password": env.str("EMAIL_HOST_PASSWORD", ""),
    # STARTTLS (usually port 587) or implicit TLS (usually 465): one or the other.
    "use_tls": env.bool("EMAIL_USE_TLS", False),
    "use_ssl": env.bool("EMAIL_USE_SSL", False),
    "timeout": env.int("EMAIL_TIMEOUT", 10, validate=Range(min=1)),
}
if SMTP_OPTIONS["use_tls"] and SMTP_OPTIONS["use_ssl"]:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS or EMAIL_USE_SSL, not both.")
MAILERS = {
    "default": (
        {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": SMTP_OPTIONS}
        if EMAIL_BACKEND_NAME == "smtp"
        else {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    )
}
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", "webmaster@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


# Internationalization

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True


# Static files are collected into the image at build time and served by nginx, with hashed
# names so they can be cached for ever. Media (uploads) live on a volume nginx serves read-only.

STATIC_URL = "static/"
# Both paths are baked into the images (app/Dockerfile, nginx/templates/).
STATIC_ROOT = "/srv/static"
MEDIA_URL = "media/"
MEDIA_ROOT = "/srv/media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}


# Logging: one JSON object per line on stderr (or plain text for reading by eye).

LOG_LEVEL = env.str(
    "DJANGO_LOG_LEVEL", "INFO", validate=OneOf(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
)
LOG_FORMAT = log_format()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": JSON_LOG_FORMATTER,
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"},
    },
    "filters": {"request_noise": {"()": "core.log.RequestNoiseAsWarning"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # A bad Host header is the client's mistake (400), not ours: one line, no traceback.
        "django.security.DisallowedHost": {"filters": ["request_noise"]},
        # The Celery worker's pool (billiard) logs here, not through the root logger (a pool
        # process killed, for one); without a handler of ours Celery adds its own, in plain text.
        "multiprocessing": {"handlers": ["console"], "propagate": False},
        # core/auth.py logs each failed login as one line with its fields; axes' own lines say
        # the same again in prose (several a failure): only its errors are kept.
        "axes": {"level": "ERROR"},
    },
}
