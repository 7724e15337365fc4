"""What an operator relies on: ports, users, secrets, start-up checks, admin access."""

import json
import secrets

from helpers import compose, docker

APP_SERVICES = ["web", "worker", "beat"]


def running_containers() -> list[dict]:
    output = compose("ps", "--format", "json").stdout
    # Compose prints one JSON object per line (or one array, depending on its version).
    if output.lstrip().startswith("["):
        return json.loads(output)
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_only_nginx_publishes_a_port_and_only_on_loopback():
    published = {
        (container["Service"], publisher["URL"])
        for container in running_containers()
        for publisher in container.get("Publishers") or []
        if publisher.get("PublishedPort")
    }
    assert {service for service, _ in published} == {"nginx"}
    assert {address for _, address in published} == {"127.0.0.1"}


def test_app_containers_run_as_an_unprivileged_user():
    for service in APP_SERVICES:
        uid = compose("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid not in ("", "0"), f"{service} runs as uid {uid!r}"


def test_generated_secrets_are_nowhere_in_the_image():
    key = compose("exec", "-T", "web", "cat", "/run/secrets/django_secret_key").stdout.strip()
    assert len(key) >= 50
    image_id = json.loads(compose("images", "--format", "json", "web").stdout)[0]["ID"]
    assert key not in docker("history", "--no-trunc", image_id)
    assert key not in docker("image", "inspect", image_id)
    # The image's own secrets directory is empty: the volume brings them at run time.
    assert docker("run", "--rm", image_id, "ls", "-A", "/run/secrets").strip() == ""


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


def test_uploaded_media_is_served_but_never_run_as_a_page(http):
    compose(
        "exec",
        "-T",
        "web",
        "sh",
        "-c",
        "printf '<script>alert(1)</script>' > /srv/media/stack-test.html",
    )
    response = http.get("/media/stack-test.html")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
