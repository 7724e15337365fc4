"""Login throttling (django-axes, core/auth.py): failures counted per username and client
address, a lock-out answered 429 until the cool-down ends, every failure one log line."""

import json
import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from pythonjsonlogger.json import JsonFormatter

from tests.test_settings import run_settings

pytestmark = pytest.mark.django_db

PASSWORD = "a long enough password"  # noqa: S105
ATTACKER, ADMIN_DESK = "203.0.113.7", "198.51.100.20"


@pytest.fixture
def admin_user():
    return User.objects.create_superuser("boss", "boss@example.com", PASSWORD)


def login(client, password: str, address: str, username: str = "boss"):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def fail(client, times: int, address: str = ATTACKER, username: str = "boss") -> list[int]:
    return [login(client, "wrong", address, username).status_code for _ in range(times)]


def test_locked_out_after_the_limit_with_a_clear_429(client, admin_user):
    limit = settings.AXES_FAILURE_LIMIT
    assert fail(client, limit - 1) == [200] * (limit - 1)  # the form again, with its error
    locked = login(client, "wrong", ATTACKER)
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed logins" in text
    assert f"{settings.AXES_COOLOFF_TIME.seconds // 60} minutes" in text
    assert locked["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    # Locked means locked: the right password is refused too.
    assert login(client, PASSWORD, ATTACKER).status_code == 429


def test_another_address_is_not_locked_out(client, admin_user):
    """The attacker's failures never lock the real admin out from elsewhere."""
    fail(client, settings.AXES_FAILURE_LIMIT)
    assert login(client, PASSWORD, ATTACKER).status_code == 429
    assert login(client, PASSWORD, ADMIN_DESK).status_code == 302


def test_another_username_from_the_same_address_is_not_locked_out(client, admin_user):
    User.objects.create_user("clerk", password=PASSWORD, is_staff=True)
    fail(client, settings.AXES_FAILURE_LIMIT)
    assert login(client, PASSWORD, ATTACKER, username="clerk").status_code == 302


def age_attempts(by: timedelta) -> None:
    """What the passing of time does to axes' records: their last attempt moves into the past."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - by)


def test_the_cool_down_ends_the_lock_out(client, admin_user):
    cool_off = settings.AXES_COOLOFF_TIME
    fail(client, settings.AXES_FAILURE_LIMIT)
    age_attempts(cool_off - timedelta(minutes=1))
    assert login(client, PASSWORD, ATTACKER).status_code == 429  # a minute to go
    age_attempts(cool_off + timedelta(seconds=1))
    assert login(client, PASSWORD, ATTACKER).status_code == 302


def test_a_successful_login_resets_the_count(client, admin_user):
    limit = settings.AXES_FAILURE_LIMIT
    fail(client, limit - 1)
    assert login(client, PASSWORD, ATTACKER).status_code == 302
    client.logout()
    # Without the reset the first of these would be the limit-th failure, and locked out.
    assert fail(client, limit - 1) == [200] * (limit - 1)


def test_each_failure_is_one_json_line_with_username_and_address(client, admin_user, caplog):
    caplog.set_level(logging.INFO)
    fail(client, 2)
    records = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.name for record in records] == ["core.auth", "core.auth"]
    # Formatted as settings.LOGGING formats it in production.
    options = settings.LOGGING["formatters"]["json"]
    formatter = JsonFormatter(options["format"], rename_fields=options["rename_fields"])
    lines = [formatter.format(record) for record in records]
    assert all("\n" not in line for line in lines)
    entries = [json.loads(line) for line in lines]
    assert [(entry["username"], entry["client_address"]) for entry in entries] == [
        ("boss", ATTACKER),
        ("boss", ATTACKER),
    ]
    assert [entry["failures"] for entry in entries] == [1, 2]
    assert entries[0]["level"] == "WARNING"
    assert entries[0]["event"] == "login_failed"
    assert entries[0]["locked_out"] is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_LOGIN_FAILURE_LIMIT", "0"),
        ("DJANGO_LOGIN_FAILURE_LIMIT", "five"),
        ("DJANGO_LOGIN_COOLOFF_MINUTES", "0"),
        ("DJANGO_LOGIN_COOLOFF_MINUTES", "soon"),
    ],
)
def test_a_bad_limit_stops_startup_naming_the_variable(variable, value):
    result = run_settings("import config.settings", **{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr


def test_limits_come_from_the_environment():
    code = (
        "from config import settings as s; "
        "print(s.AXES_FAILURE_LIMIT, int(s.AXES_COOLOFF_TIME.total_seconds()))"
    )
    result = run_settings(code, DJANGO_LOGIN_FAILURE_LIMIT="9", DJANGO_LOGIN_COOLOFF_MINUTES="2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["9", "120"]
