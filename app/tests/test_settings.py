"""Configuration from the environment: bad values stop startup with a message naming them."""

import json
import os
import subprocess
import sys

import pytest

GOOD_KEY = "k" * 10 + "0123456789abcdefghijklmnopqrstuvwxyz0123456789"


# What config/settings.py reads. The test container's environment carries compose's values for
# them, which would hide settings.py's own defaults: every run starts without any of them.
SETTINGS_VARIABLES = ("DJANGO_", "POSTGRES_", "REDIS_", "CELERY_", "EMAIL_", "SERVER_INTERFACE")


def clean_environment(**overrides: str | None) -> dict[str, str]:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(SETTINGS_VARIABLES)
    }
    environment["DJANGO_SECRET_KEY"] = GOOD_KEY
    environment.update(overrides)
    return {name: value for name, value in environment.items() if value is not None}


def run_settings(code: str, **overrides: str | None) -> subprocess.CompletedProcess:
    """Runs code in a fresh interpreter with only the given settings variables set."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=clean_environment(**overrides),
        capture_output=True,
        text=True,
        check=False,
    )


def load_settings(**overrides: str | None) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with only the given variables set."""
    code = (
        "import json; from config import settings as s; "
        "print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, "
        "'origins': s.CSRF_TRUSTED_ORIGINS, "
        "'ssl_redirect': s.SECURE_SSL_REDIRECT, 'secure_cookies': s.SESSION_COOKIE_SECURE, "
        "'hsts': s.SECURE_HSTS_SECONDS}))"
    )
    return run_settings(code, **overrides)


def test_defaults_are_production_safe():
    code = """if True:
        import json
        from config import settings as s
        database = s.DATABASES["default"]
        print(json.dumps({
            "debug": s.DEBUG,
            "hosts": s.ALLOWED_HOSTS,
            "csrf_origins": s.CSRF_TRUSTED_ORIGINS,
            "https": [s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE],
            "hsts": s.SECURE_HSTS_SECONDS,
            "database": [database[key] for key in ("HOST", "PORT", "NAME", "USER", "PASSWORD")],
            "db_pool": "pool" in database["OPTIONS"],
            "conn_max_age": database["CONN_MAX_AGE"],
            "redis": s.REDIS_URL,
            "broker": s.CELERY_BROKER_URL,
            "cache": s.CACHES["default"]["LOCATION"],
            "visibility_timeout": s.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"],
            "log_level": s.LOG_LEVEL,
            "log_format": s.LOGGING["handlers"]["console"]["formatter"],
        }))
    """
    result = run_settings(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "debug": False,
        "hosts": ["localhost", "127.0.0.1", "[::1]"],
        "csrf_origins": [],
        "https": [False, False, False],
        "hsts": 0,
        "database": ["db", 5432, "app", "app", ""],
        "db_pool": False,
        "conn_max_age": 60,
        "redis": "redis://redis:6379",
        "broker": "redis://redis:6379/0",
        "cache": "redis://cache:6379/1",
        "visibility_timeout": 300,
        "log_level": "INFO",
        "log_format": "json",
    }


def test_asgi_defaults_to_a_connection_pool():
    code = "from config import settings as s; print(s.DATABASES['default']['OPTIONS']['pool'])"
    result = run_settings(code, SERVER_INTERFACE="asgi")
    assert result.returncode == 0, result.stderr
    assert "'max_size': 8" in result.stdout


def test_allowed_hosts_is_a_comma_separated_list():
    result = load_settings(DJANGO_ALLOWED_HOSTS="example.com,www.example.com")
    assert '"hosts": ["example.com", "www.example.com"]' in result.stdout


def test_https_switch_turns_on_redirect_secure_cookies_and_hsts():
    result = load_settings(DJANGO_HTTPS="true")
    assert '"ssl_redirect": true, "secure_cookies": true, "hsts": 3600' in result.stdout


def test_domain_joins_allowed_hosts_and_trusted_origins():
    result = load_settings(DJANGO_DOMAIN="example.com")
    assert result.returncode == 0, result.stderr
    assert '"hosts": ["localhost", "127.0.0.1", "[::1]", "example.com"]' in result.stdout
    assert '"origins": ["https://example.com"]' in result.stdout


def test_domain_adds_to_what_is_set_explicitly():
    result = load_settings(
        DJANGO_DOMAIN="www.example.com",
        DJANGO_ALLOWED_HOSTS="example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://example.com",
    )
    assert '"hosts": ["example.com", "www.example.com"]' in result.stdout
    assert '"origins": ["https://example.com", "https://www.example.com"]' in result.stdout


def test_no_domain_trusts_no_origin():
    assert '"origins": []' in load_settings().stdout


@pytest.mark.parametrize(
    "domain",
    [
        "https://example.com",
        "example.com:443",
        "example.com/",
        "localhost",
        "exa mple.com",
        "*.com",
    ],
)
def test_domain_that_is_not_a_host_name_stops_startup(domain):
    result = load_settings(DJANGO_DOMAIN=domain)
    assert result.returncode != 0
    assert "DJANGO_DOMAIN" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_DEBUG", "maybe"),
        ("DJANGO_HTTPS", "yes please"),
        ("DJANGO_LOG_FORMAT", "xml"),
        ("DJANGO_LOG_LEVEL", "LOUD"),
        ("POSTGRES_PORT", "five-four-three-two"),
        ("EMAIL_PORT", "smtp"),
        ("EMAIL_PORT", "70000"),
        ("EMAIL_USE_TLS", "sure"),
        ("DJANGO_EMAIL_BACKEND", "pigeon"),
    ],
)
def test_malformed_variable_stops_startup_naming_it(variable, value):
    result = load_settings(**{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr


def test_smtp_settings_come_from_the_environment():
    result = run_settings(
        "import json; from config import settings as s; "
        "print(json.dumps([s.MAILERS, s.DEFAULT_FROM_EMAIL]))",
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="587",
        EMAIL_HOST_USER="mailer",
        EMAIL_USE_TLS="true",
        DJANGO_DEFAULT_FROM_EMAIL="site@example.com",
    )
    assert result.returncode == 0, result.stderr
    mailers, sender = json.loads(result.stdout.splitlines()[-1])
    assert mailers["default"]["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    options = mailers["default"]["OPTIONS"]
    assert (options["host"], options["port"], options["username"]) == (
        "smtp.example.com",
        587,
        "mailer",
    )
    assert (options["use_tls"], options["use_ssl"]) == (True, False)
    assert sender == "site@example.com"


def test_console_mail_backend_takes_no_smtp_options():
    result = run_settings(
        "import json; from config import settings as s; print(json.dumps(s.MAILERS))",
        DJANGO_EMAIL_BACKEND="console",
    )
    assert result.returncode == 0, result.stderr
    mailers = json.loads(result.stdout.splitlines()[-1])
    assert mailers == {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}


def test_starttls_and_implicit_tls_together_stop_startup():
    result = load_settings(EMAIL_USE_TLS="true", EMAIL_USE_SSL="true")
    assert result.returncode != 0
    assert "EMAIL_USE_TLS or EMAIL_USE_SSL" in result.stderr


def test_debug_toolbar_needs_debug():
    refused = load_settings(DJANGO_DEBUG_TOOLBAR="true")
    assert refused.returncode != 0
    assert "DJANGO_DEBUG_TOOLBAR=true needs DJANGO_DEBUG=true" in refused.stderr
    # The test image has the dev dependencies, like the dev image.
    allowed = run_settings(
        "from config import settings as s; print('debug_toolbar' in s.INSTALLED_APPS)",
        DJANGO_DEBUG="true",
        DJANGO_DEBUG_TOOLBAR="true",
    )
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.strip() == "True"


def test_templates_are_cached_unless_debugging():
    code = (
        "from config import settings as s; first = s.TEMPLATES[0]['OPTIONS']['loaders'][0]; "
        "print(first if isinstance(first, str) else first[0])"
    )
    assert run_settings(code).stdout.strip() == "django.template.loaders.cached.Loader"
    debugging = run_settings(code, DJANGO_DEBUG="true").stdout.strip()
    assert debugging == "django.template.loaders.filesystem.Loader"


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("change-me-" + "x" * 60, "placeholder"),
        ("django-insecure-" + "abcdefghij" * 6, "placeholder"),
        ("tooshort", "too weak"),
        ("a" * 80, "too weak"),
    ],
)
def test_weak_or_placeholder_secret_key_stops_startup(value, complaint):
    result = load_settings(DJANGO_SECRET_KEY=value)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert complaint in result.stderr


def test_missing_secret_key_stops_startup_unless_debugging():
    missing = load_settings(DJANGO_SECRET_KEY=None)
    assert missing.returncode != 0
    assert "DJANGO_SECRET_KEY" in missing.stderr
    assert load_settings(DJANGO_SECRET_KEY=None, DJANGO_DEBUG="true").returncode == 0


def test_secret_file_that_cannot_be_read_is_named(tmp_path):
    result = load_settings(DJANGO_SECRET_KEY=None, DJANGO_SECRET_KEY_FILE=str(tmp_path / "missing"))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY_FILE" in result.stderr


def test_deploy_checks_pass_when_served_over_https():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=clean_environment(DJANGO_HTTPS="true", DJANGO_DOMAIN="example.com"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_models_and_migrations_agree():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_worker_pool_logs_json_too():
    """billiard, the Celery worker's pool, logs on "multiprocessing" (a pool process killed, for
    one), which does not propagate: Celery gives it a plain-text handler unless it has ours."""
    code = """if True:
        import django
        django.setup()
        from celery.utils.log import get_multiprocessing_logger
        from config.celery import app
        app.log.setup_logging_subsystem(loglevel="INFO")  # as the worker does at start
        get_multiprocessing_logger().error("Process %r exited", "ForkPoolWorker-1")
    """
    result = run_settings(code, DJANGO_SETTINGS_MODULE="config.settings")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("{"), lines
    assert json.loads(lines[0])["message"] == "Process 'ForkPoolWorker-1' exited"
