"""Configuration from the environment: bad values stop startup with a message naming them."""

import os
import subprocess
import sys

import pytest

GOOD_KEY = "k" * 10 + "0123456789abcdefghijklmnopqrstuvwxyz0123456789"


def load_settings(**overrides: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with the given environment changes."""
    environment = {**os.environ, "DJANGO_SECRET_KEY": GOOD_KEY}
    environment.pop("DJANGO_SECRET_KEY_FILE", None)
    environment.update(overrides)
    environment = {name: value for name, value in environment.items() if value is not None}
    code = (
        "import json; from config import settings as s; "
        "print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, "
        "'origins': s.CSRF_TRUSTED_ORIGINS, "
        "'ssl_redirect': s.SECURE_SSL_REDIRECT, 'secure_cookies': s.SESSION_COOKIE_SECURE, "
        "'hsts': s.SECURE_HSTS_SECONDS}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=False
    )


def test_defaults_are_production_safe():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert '"debug": false' in result.stdout
    assert '"hosts": ["localhost", "127.0.0.1", "[::1]"]' in result.stdout


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
    ],
)
def test_malformed_variable_stops_startup_naming_it(variable, value):
    result = load_settings(**{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr


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
    environment = {
        **os.environ,
        "DJANGO_SECRET_KEY": GOOD_KEY,
        "DJANGO_HTTPS": "true",
        "DJANGO_DOMAIN": "example.com",
    }
    environment.pop("DJANGO_SECRET_KEY_FILE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=environment,
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
