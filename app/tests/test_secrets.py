import stat

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.secrets import init_secrets

NAMES = ["django_secret_key", "postgres_password", "redis_password"]


@pytest.fixture
def clean_environment(monkeypatch):
    for name in ["DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_first_run_generates_distinct_strong_secrets(tmp_path, clean_environment):
    init_secrets(tmp_path)
    values = [(tmp_path / name).read_text() for name in NAMES]
    assert len(set(values)) == 3
    assert all(len(value) >= 64 for value in values)
    assert (tmp_path / "redis.conf").read_text() == f"requirepass {values[2]}\n"


def test_later_runs_keep_what_was_generated(tmp_path, clean_environment):
    init_secrets(tmp_path)
    first = [(tmp_path / name).read_text() for name in NAMES]
    init_secrets(tmp_path)
    assert [(tmp_path / name).read_text() for name in NAMES] == first


def test_a_value_from_the_environment_wins(tmp_path, clean_environment):
    init_secrets(tmp_path)
    chosen = "a-chosen-redis-pass-0123456789"
    clean_environment.setenv("REDIS_PASSWORD", chosen)
    init_secrets(tmp_path)
    assert (tmp_path / "redis_password").read_text() == chosen
    assert (tmp_path / "redis.conf").read_text() == f"requirepass {chosen}\n"


def test_a_placeholder_from_the_environment_is_refused_by_name(tmp_path, clean_environment):
    clean_environment.setenv("POSTGRES_PASSWORD", "changeme-changeme-changeme")
    with pytest.raises(ImproperlyConfigured, match="POSTGRES_PASSWORD"):
        init_secrets(tmp_path)


def test_secret_files_are_read_only_for_everyone(tmp_path, clean_environment):
    clean_environment.setenv("REDIS_PASSWORD", "a-chosen-redis-pass-0123456789")
    init_secrets(tmp_path)
    for name in [*NAMES, "redis.conf"]:
        # Readable by the postgres and redis users too (the volume is the boundary), never
        # writable: services mount the volume read-only, and no file invites a change.
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o444, name
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*NAMES, "redis.conf"])
