"""Secrets: the value of VAR if set, else the content of the file VAR_FILE names.

In the compose stack a one-shot service runs `python -m config.secrets /run/secrets` before
anything else: it writes each secret given in the environment to that volume, and generates the
ones never given, once. So a fresh clone starts with strong secrets and no .env file.
"""

import os
import secrets
import sys
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# The secrets the stack needs, each with the shortest value accepted for it. (Lengths, not
# passwords: bandit's B105 only sees the key names.)
MIN_LENGTHS = {
    "DJANGO_SECRET_KEY": 50,  # nosec B105
    "POSTGRES_PASSWORD": 16,  # nosec B105
    "REDIS_PASSWORD": 16,  # nosec B105
}
PLACEHOLDER_WORDS = ("change", "replace", "secret", "password", "example", "insecure")


def check_secret(name: str, value: str) -> str:
    """Return value, or stop with a message naming the variable if it is weak or a placeholder."""
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDER_WORDS):
        raise ImproperlyConfigured(
            f"{name} looks like a placeholder; set a real value or unset it."
        )
    if len(value) < MIN_LENGTHS[name] or len(set(value)) < 5:
        raise ImproperlyConfigured(
            f"{name} is too weak: use at least {MIN_LENGTHS[name]} random characters."
        )
    return value


def read_secret(name: str) -> str | None:
    if value := os.environ.get(name, ""):
        return check_secret(name, value)
    if path := os.environ.get(f"{name}_FILE", ""):
        try:
            value = Path(path).read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {error}") from error
        return check_secret(name, value) if value else None
    return None


def _write_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as file:
        file.write(text)
    # Readable by the postgres and redis users of their images too; the volume is the boundary.
    os.chmod(file.name, 0o444)
    os.replace(file.name, path)


def init_secrets(directory: Path) -> None:
    for name in MIN_LENGTHS:
        path = directory / name.lower()
        if given := os.environ.get(name, ""):
            _write_atomically(path, check_secret(name, given))
            print(f"{name}: taken from the environment")
        elif path.exists():
            print(f"{name}: kept")
        else:
            # Hex, so no generated value can ever spell one of the placeholder words.
            _write_atomically(path, secrets.token_hex(32))
            print(f"{name}: generated")
    # Redis reads its password from a config file, so it never shows on a command line.
    redis_password = (directory / "redis_password").read_text()
    _write_atomically(directory / "redis.conf", f"requirepass {redis_password}\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m config.secrets DIRECTORY")
    try:
        init_secrets(Path(sys.argv[1]))
    except ImproperlyConfigured as error:
        sys.exit(f"error: {error}")
