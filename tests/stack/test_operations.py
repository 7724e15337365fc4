"""What an operator relies on: ports, users, lock-down, secrets, start-up checks, admin access."""

import secrets
import subprocess

from helpers import compose, containers, docker, inspect

ALL_SERVICES = {"db", "redis", "web", "worker", "beat", "nginx"}


def running() -> dict[str, dict]:
    """The long-running services' containers, inspected."""
    return {
        container["Service"]: inspect(container["ID"])
        for container in containers()
        if container["State"] == "running"
    }


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
    services = running()
    assert set(services) == ALL_SERVICES
    for service in services:
        uid = compose("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid not in ("", "0"), f"{service} runs as uid {uid!r}"


def test_every_container_is_locked_down():
    for service, container in running().items():
        host = container["HostConfig"]
        assert host["ReadonlyRootfs"], f"{service}: writable root file system"
        assert host["CapDrop"] == ["ALL"], f"{service}: capabilities {host['CapDrop']}"
        assert "no-new-privileges:true" in host["SecurityOpt"], service
        assert host["Memory"] > 0, f"{service}: no memory limit"
        assert (host["PidsLimit"] or 0) > 0, f"{service}: no pids limit"
        assert host["LogConfig"]["Config"].get("max-size"), f"{service}: logs never rotate"


def test_nginx_shares_no_network_with_postgres_or_redis():
    services = running()
    nginx_networks = set(services["nginx"]["NetworkSettings"]["Networks"])
    for data_service in ("db", "redis"):
        assert not nginx_networks & set(services[data_service]["NetworkSettings"]["Networks"])
    lookup = compose("exec", "-T", "nginx", "getent", "hosts", "db", "redis", check=False)
    assert lookup.returncode != 0, lookup.stdout


def test_redis_refuses_commands_without_the_password():
    answer = compose("exec", "-T", "redis", "redis-cli", "ping", check=False)
    assert "NOAUTH" in answer.stdout + answer.stderr


def test_pages_carry_security_headers(http):
    headers = http.get("/").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert "default-src 'self'" in headers["content-security-policy"]
    static = http.get("/static/demo/status.css").headers
    assert static["x-content-type-options"] == "nosniff"


def test_generated_secrets_are_nowhere_in_the_images():
    values = [
        compose("exec", "-T", "web", "cat", f"/run/secrets/{name}").stdout.strip()
        for name in ("django_secret_key", "postgres_password", "redis_password")
    ]
    assert all(len(value) >= 50 for value in values)
    for service in ("web", "nginx"):
        image_id = running()[service]["Image"]
        layers_and_config = docker("history", "--no-trunc", image_id) + docker("inspect", image_id)
        assert not any(value in layers_and_config for value in values), service
        # Nor in the files the image carries: the volume brings the secrets at run time.
        grep = docker_run(
            image_id, "grep", "-rlF", "-e", values[0], "-e", values[1], "/etc", "/srv"
        )
        assert grep.returncode == 1, f"{service}: {grep.stdout}"
    assert docker_run(running()["web"]["Image"], "ls", "-A", "/run/secrets").stdout.strip() == ""


def docker_run(image_id: str, program: str, *arguments: str) -> subprocess.CompletedProcess:
    """Runs a program in a fresh container of the image, as root so that it can read everything."""
    return subprocess.run(
        ["docker", "run", "--rm", "--user", "0", "--entrypoint", program, image_id, *arguments],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_malformed_variable_stops_startup_naming_it():
    result = compose(
        "run",
        "--rm",
        "--no-deps",
        "-e",
        "DJANGO_DEBUG=maybe",
        "web",
        "python",
        "manage.py",
        "check",
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_DEBUG" in result.stderr + result.stdout


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


def test_a_superuser_can_log_in_to_the_admin_through_nginx(http):
    username, password = f"admin-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    compose(
        "exec",
        "-T",
        "-e",
        f"DJANGO_SUPERUSER_PASSWORD={password}",
        "web",
        "python",
        "manage.py",
        "createsuperuser",
        "--noinput",
        "--username",
        username,
        "--email",
        f"{username}@example.com",
    )
    login_page = http.get("/admin/login/")
    token = http.cookies["csrftoken"]
    response = http.post(
        "/admin/login/?next=/admin/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": str(login_page.url)},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Site administration" in response.text
    http.cookies.clear()
