"""What an operator relies on: ports, users, lock-down, secrets, start-up checks, admin access."""

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from waiting import wait_until

from helpers import admin_login, compose, containers, create_superuser, inspect

ROOT = Path(__file__).resolve().parents[2]
LONG_RUNNING = {"db", "redis", "cache", "web", "worker", "beat", "nginx"}
ONE_SHOT = {"secrets", "migrate"}
# The services that log through Python's logging, one JSON object per line by default.
JSON_LOGGING = {"web", "worker", "beat"}
# Django's whole policy (SECURE_CSP in config/settings.py), directive by directive.
CSP = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "report-uri": "/csp-report/",
}
NGINX_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def every_container() -> dict[str, dict]:
    """Every container of the stack, the one-shot services' exited ones included, inspected."""
    found = {container["Service"]: inspect(container["ID"]) for container in containers()}
    assert set(found) == LONG_RUNNING | ONE_SHOT, sorted(found)
    return found


def running() -> dict[str, dict]:
    """The long-running services' containers, inspected."""
    found = {
        container["Service"]: inspect(container["ID"])
        for container in containers()
        if container["State"] == "running"
    }
    assert set(found) == LONG_RUNNING, sorted(found)
    return found


def test_only_nginx_publishes_a_port_and_only_on_loopback():
    published = {
        (container["Service"], publisher["URL"])
        for container in containers()
        for publisher in container.get("Publishers") or []
        if publisher.get("PublishedPort")
    }
    assert {service for service, _ in published} == {"nginx"}
    assert {address for _, address in published} == {"127.0.0.1"}


def test_every_container_runs_as_an_unprivileged_user():
    for service, container in every_container().items():
        # The user it was started as (compose's user:, else the image's USER).
        user = container["Config"]["User"].split(":")[0]
        assert user not in ("", "0", "root"), f"{service} starts as {user!r}"
    for service in running():
        uid = compose("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid not in ("", "0"), f"{service} runs as uid {uid!r}"


def test_every_container_is_locked_down():
    for service, container in every_container().items():
        host = container["HostConfig"]
        assert host["ReadonlyRootfs"], f"{service}: writable root file system"
        assert host["CapDrop"] == ["ALL"], f"{service}: capabilities {host['CapDrop']}"
        assert not host["CapAdd"], f"{service}: capabilities added {host['CapAdd']}"
        assert not host["Privileged"], f"{service}: privileged"
        assert "no-new-privileges:true" in host["SecurityOpt"], service
        assert host["Memory"] > 0, f"{service}: no memory limit"
        assert (host["PidsLimit"] or 0) > 0, f"{service}: no pids limit"
        assert host["LogConfig"]["Config"].get("max-size"), f"{service}: logs never rotate"


def test_secrets_are_mounted_read_only_except_where_they_are_written():
    for service, container in every_container().items():
        mounts = {mount["Destination"]: mount for mount in container["Mounts"]}
        if service == "nginx":
            assert "/run/secrets" not in mounts, "nginx needs no secret"
            assert not mounts["/srv/media"]["RW"], "nginx: media writable"
            continue
        assert "/run/secrets" in mounts, service
        assert mounts["/run/secrets"]["RW"] == (service == "secrets"), service
    listing = compose(
        "exec", "-T", "web", "sh", "-c", "stat -c '%a %U %n' /run/secrets/*"
    ).stdout.split("\n")
    modes = {line.split()[2]: line.split()[:2] for line in listing if line}
    assert set(modes) == {
        f"/run/secrets/{name}"
        for name in ("django_secret_key", "postgres_password", "redis_password", "redis.conf")
    }
    assert all(mode == "444" for mode, _ in modes.values()), modes
    write = compose("exec", "-T", "web", "sh", "-c", "touch /run/secrets/new-file", check=False)
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr, write.stderr


def test_nginx_shares_no_network_with_postgres_or_redis():
    services = running()
    nginx_networks = set(services["nginx"]["NetworkSettings"]["Networks"])
    for data_service in ("db", "redis", "cache"):
        assert not nginx_networks & set(services[data_service]["NetworkSettings"]["Networks"])
    # getent exits 2 for "not found"; other failures (1: bad arguments, no getent: 126/127)
    # must not pass for isolation. web, which nginx does reach, resolves.
    assert compose("exec", "-T", "nginx", "getent", "hosts", "web", check=False).returncode == 0
    for name in ("db", "redis", "cache"):
        lookup = compose("exec", "-T", "nginx", "getent", "hosts", name, check=False)
        assert lookup.returncode == 2, f"{name}: exit {lookup.returncode} {lookup.stdout}"


def test_redis_refuses_commands_without_the_password():
    for service in ("redis", "cache"):
        answer = compose("exec", "-T", service, "redis-cli", "ping", check=False)
        assert "NOAUTH" in answer.stdout + answer.stderr, service


def policy(header: str) -> dict[str, str]:
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in directives}


def test_pages_carry_security_headers_and_the_full_policy(http):
    page = http.get("/")
    headers = page.headers
    for name, value in NGINX_HEADERS.items():
        assert headers[name] == value, name
    assert policy(headers["content-security-policy"]) == CSP


def test_what_nginx_serves_itself_carries_security_headers(http):
    page = http.get("/admin/login/").text
    hashed = re.findall(r'/static/[^"]+\.[0-9a-f]{12}\.(?:css|js)', page)
    assert hashed, "the admin's login page links no hashed static file"
    for path in ["/static/admin/css/base.css", "/favicon.ico", *hashed]:
        response = http.get(path)
        assert response.status_code == 200, path
        for name, value in NGINX_HEADERS.items():
            assert response.headers.get(name) == value, f"{path}: {name}"
    assert "immutable" in http.get(hashed[0]).headers["cache-control"]


def test_gunicorn_keeps_idle_connections_longer_than_nginx_reuses_them():
    """Else gunicorn may close a connection nginx is sending a request on: a 502 (ASGI)."""
    rendered = compose("exec", "-T", "nginx", "nginx", "-T").stdout
    upstream = re.search(r"upstream django \{(.*?)\}", rendered, re.DOTALL)
    assert upstream
    assert "keepalive " in upstream.group(1)
    timeout = re.search(r"keepalive_timeout\s+(\d+)s?;", upstream.group(1))
    nginx_seconds = int(timeout.group(1)) if timeout else 60  # nginx's default
    gunicorn = gunicorn_settings("keepalive", "graceful_timeout")
    assert gunicorn["keepalive"] > nginx_seconds


def gunicorn_settings(*names: str) -> dict:
    """Settings of config/gunicorn.py as the running web container computes them."""
    code = (
        "import json, runpy; c = runpy.run_path('config/gunicorn.py'); "
        f"print(json.dumps({{n: c[n] for n in {list(names)!r}}}))"
    )
    return json.loads(compose("exec", "-T", "web", "python", "-c", code).stdout)


def test_logs_are_one_json_object_per_line():
    for service, container in running().items():
        if service not in JSON_LOGGING:
            continue
        logs = subprocess.run(
            ["docker", "logs", container["Id"]], capture_output=True, text=True, check=True
        )
        lines = (logs.stdout + logs.stderr).splitlines()
        assert lines, f"{service}: no log lines"
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                raise AssertionError(f"{service}: not a JSON line: {line!r}") from None
            assert isinstance(entry, dict), line
            assert {"time", "level", "message"} <= set(entry), line


def compose_in(
    environment: dict,
    *args: str,
    cwd: Path = ROOT,
    check: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """`docker compose` for a project other than the stack under test, in its own environment."""
    return subprocess.run(
        ["docker", "compose", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


def rendered_config(env_file: Path, names: set[str]) -> dict:
    """`docker compose config` of the stack's files with only env_file for variables: the
    shell's values of `names` removed, as in a fresh shell."""
    environment = {
        **{name: value for name, value in os.environ.items() if name not in names},
        "COMPOSE_ENV_FILES": str(env_file),
    }
    return json.loads(compose_in(environment, "config", "--format", "json", check=True).stdout)


def test_compose_defaults_are_the_ones_env_example_documents(tmp_path):
    """With no .env at all the stack runs as .env.example says (the tests run with it, so
    a default in compose files that differs from it, JSON logs for one, would go unseen)."""
    example = ROOT / ".env.example"
    names = set(re.findall(r"^#* *([A-Z][A-Z0-9_]*)=", example.read_text(), re.MULTILINE))
    names.discard("COMPOSE_FILE")  # which files: the variant under test's, in both renderings
    empty = tmp_path / "empty.env"
    empty.write_text("")
    defaults, documented = rendered_config(empty, names), rendered_config(example, names)
    assert differences(defaults, documented) == []


def differences(found, wanted, path: str = "") -> list[str]:
    """Where two JSON values differ, as "path: found != wanted" lines."""
    if isinstance(found, dict) and isinstance(wanted, dict):
        return [
            line
            for key in sorted(found.keys() | wanted.keys())
            for line in differences(found.get(key), wanted.get(key), f"{path}.{key}")
        ]
    return [] if found == wanted else [f"{path}: {found!r} != {wanted!r}"]


def docker_run(image_id: str, program: str, *arguments: str) -> subprocess.CompletedProcess:
    """Runs a program in a fresh container of the image, as root so that it can read everything."""
    return subprocess.run(
        ["docker", "run", "--rm", "--user", "0", "--entrypoint", program, image_id, *arguments],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_running_images_carry_no_secret_files():
    services = running()
    assert docker_run(services["web"]["Image"], "ls", "-A", "/run/secrets").stdout.strip() == ""
    assert services["web"]["Image"] == every_container()["secrets"]["Image"]


def contains_any(stream, needles: list[bytes]) -> set[bytes]:
    """The needles found in a byte stream, read in chunks (overlapping, so none is cut)."""
    found, tail = set(), b""
    overlap = max(len(needle) for needle in needles)
    while chunk := stream.read(1 << 20):
        window = tail + chunk
        found |= {needle for needle in needles if needle in window}
        tail = window[-overlap:]
    return found


@pytest.fixture(scope="module")
def images_built_with_known_secrets():
    """The images, built by `docker compose build` from a copy of this checkout whose .env and
    environment carry known secrets. Yields (image names, secret values)."""
    values = {
        "DJANGO_SECRET_KEY": "known-django-key-" + secrets.token_hex(24),
        "POSTGRES_PASSWORD": "known-pg-pass-" + secrets.token_hex(16),
        "REDIS_PASSWORD": "known-redis-pass-" + secrets.token_hex(16),
    }
    project = f"{os.environ.get('COMPOSE_PROJECT_NAME', 'stack')}-secrets-build"
    images = {"app": f"{project}-app:local", "nginx": f"{project}-nginx"}
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    with tempfile.TemporaryDirectory() as directory:
        copy = Path(directory)
        for name in filter(None, listed.split("\0")):
            if (ROOT / name).is_file():
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, copy / name)
        (copy / ".env").write_text("".join(f"{name}={value}\n" for name, value in values.items()))
        environment = {
            **os.environ,
            **values,
            "COMPOSE_PROJECT_NAME": project,
            "APP_IMAGE": images["app"],
        }
        build = compose_in(environment, "build", "--quiet", "web", "nginx", cwd=copy)
        assert build.returncode == 0, build.stderr
    try:
        yield images, [value.encode() for value in values.values()]
    finally:
        subprocess.run(["docker", "rmi", *images.values()], capture_output=True, check=False)


@pytest.mark.parametrize("image", ["app", "nginx"])
def test_secrets_given_at_build_time_are_in_no_layer(images_built_with_known_secrets, image):
    images, values = images_built_with_known_secrets
    # A line of the app's own code, to prove the search reads the layers' files (uncompressed).
    canary = b"CELERY_BEAT_SCHEDULER = " if image == "app" else b"proxy_pass http://django;"
    with subprocess.Popen(["docker", "save", images[image]], stdout=subprocess.PIPE) as save:
        found = contains_any(save.stdout, [*values, canary])
    assert save.returncode == 0
    assert canary in found, "the search did not see the image's files"
    assert not found - {canary}, f"{image}: {sorted(found - {canary})}"


def wait_for_exit(project: str, environment: dict, timeout: float = 180) -> None:
    def states() -> str:
        return compose_in(environment, "ps", "--all", "--format", "{{.Service}} {{.State}}").stdout

    wait_until(lambda: "migrate exited" in states(), timeout, f"{project}: migrate ran", interval=1)


def test_a_first_start_prints_no_error_lines():
    """The first `docker compose up`, before any image of this project exists, says nothing
    alarming: the services that run web's image wait for its build instead of trying to pull it
    from a registry (which has no such image: one "Error" line each)."""
    project = f"{os.environ.get('COMPOSE_PROJECT_NAME', 'stack')}-first-start"
    environment = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": project,
        "HTTP_PORT": "0",
        # A name no image has yet; the build itself is quick, from the stack's build cache.
        "APP_IMAGE": f"{project}-app:{secrets.token_hex(4)}",
    }
    try:
        up = compose_in(environment, "up", "--no-start", timeout=600)
        output = up.stdout + up.stderr
        assert up.returncode == 0, output[-3000:]
        alarming = [
            line for line in output.splitlines() if re.search(r"\b(Error|Warning|Pulling)\b", line)
        ]
        assert not alarming, "\n".join(alarming)
    finally:
        compose_in(environment, "down", "--volumes", "--remove-orphans")
        images = [environment["APP_IMAGE"], f"{project}-nginx"]
        subprocess.run(["docker", "rmi", *images], capture_output=True, check=False)


def test_a_malformed_variable_makes_up_wait_fail_and_the_logs_name_it():
    """`docker compose up --wait` as an operator runs it, in a project of its own."""
    project = f"{os.environ.get('COMPOSE_PROJECT_NAME', 'stack')}-bad-config"
    environment = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": project,
        "HTTP_PORT": "0",  # any free port: the stack under test keeps its own
        "DJANGO_DEBUG": "maybe",
    }
    # The images of the stack under test, under the names this project looks for (no pull).
    nginx_image = f"{project}-nginx"
    subprocess.run(["docker", "tag", running()["nginx"]["Image"], nginx_image], check=True)
    try:
        up = compose_in(environment, "up", "--wait", "--no-build", timeout=300)
        assert up.returncode != 0, up.stdout + up.stderr
        assert "migrate" in up.stdout + up.stderr, up.stdout + up.stderr
        wait_for_exit(project, environment)
        logs = compose_in(environment, "logs", "--no-log-prefix", "migrate", check=True)
        assert "DJANGO_DEBUG" in logs.stdout + logs.stderr, logs.stdout[-2000:]
        states = {
            container["Service"]: container["State"]
            for container in map(
                json.loads,
                compose_in(
                    environment, "ps", "--all", "--format", "json", check=True
                ).stdout.splitlines(),
            )
        }
        assert "web" not in states or states["web"] != "running", states
    finally:
        compose_in(environment, "down", "--volumes", "--remove-orphans")
        subprocess.run(["docker", "rmi", nginx_image], capture_output=True, check=False)


def test_a_placeholder_secret_stops_startup_naming_it():
    result = compose(
        "run",
        "--rm",
        "--no-deps",
        "-e",
        "DJANGO_SECRET_KEY=please-change-me-" + "0123456789" * 5,
        "secrets",
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr + result.stdout


def test_a_superuser_can_log_in_to_the_admin_through_nginx():
    username, password = create_superuser("admin")
    assert admin_login(username, password)
    assert not admin_login(username, password + "-wrong")
