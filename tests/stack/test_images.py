"""What the images leave to compose, and what compose chooses, as the running stack shows it.

The official postgres, redis, python and nginx images set no USER: each long-running container's
uid must come from compose.yaml (`user:`) or from a USER in app/Dockerfile, the one Dockerfile
this project builds from. The stand-in images CI uses in the official ones' place (.ci/images/)
must not supply it either, or a compose file that lost its `user:` would pass here and run as
root with the official images. Also: Postgres's locale, client authentication, data directory and
socket directory are the ones compose chose, and each Redis server's memory bounds (the broker's and
the cache's) leave room for the modules the official image loads.
"""

import json
import re
import shlex
from functools import cache
from pathlib import Path

from helpers import compose, containers, docker, inspect

DOCKERFILE = Path(__file__).resolve().parents[2] / "app" / "Dockerfile"
# Resident memory the official redis:8 image's four modules add at start (measured about 8 MiB
# with their redis-stack builds; docs/architecture.md), with room to spare.
REDIS_MODULES_ALLOWANCE = 32 * 2**20


@cache
def config() -> dict:
    return json.loads(compose("config", "--format", "json").stdout)


def long_running() -> dict[str, dict]:
    """The services compose keeps running (one-shot services have restart: "no")."""
    return {
        name: service
        for name, service in config()["services"].items()
        if service.get("restart", "no") != "no"
    }


def running_containers() -> dict[str, dict]:
    return {
        container["Service"]: inspect(container["ID"])
        for container in containers()
        if container["State"] == "running"
    }


def dockerfile_user(target: str) -> str | None:
    """The USER that app/Dockerfile's stage `target` runs as, following `FROM <stage>` chains;
    None if that stage, or a stage it builds on, sets none (it would inherit the base image's)."""
    stages: dict[str, tuple[str, str | None]] = {}
    name = base = user = None
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        instruction = words[0].upper()
        if instruction == "FROM":
            if name:
                stages[name] = (base, user)
            base = words[1]
            name = words[3] if len(words) > 3 and words[2].upper() == "AS" else None
            user = None
        elif instruction == "USER":
            user = words[1]
    if name:
        stages[name] = (base, user)
    while target in stages:
        base, user = stages[target]
        if user:
            return user
        target = base
    return None


def image_user(image: str) -> str:
    return docker("image", "inspect", "--format", "{{.Config.User}}", image).strip()


def uid_of(service: str, user: str) -> int:
    """The uid that `user` (name or number, optionally :group) means inside service's container."""
    who = user.split(":")[0]
    if who.isdigit():
        return int(who)
    return int(compose("exec", "-T", service, "id", "-u", who).stdout.strip())


def process_uids(container_id: str) -> list[tuple[str, set[int]]]:
    """Every process in the container: its command and its real, effective, saved and fs uids."""
    # docker top runs ps for the container; it needs the pid column to find the container's.
    output = docker("top", container_id, "-eo", "pid,ruid,euid,suid,fuid,comm")
    processes = []
    for line in output.splitlines()[1:]:
        _pid, *uids, command = line.split(None, 5)
        processes.append((command, {int(uid) for uid in uids}))
    return processes


def build_target(service: dict) -> str | None:
    """app/Dockerfile's target that built the service's image, if this project builds it."""
    if "build" in service:
        return service["build"].get("target")
    for other in config()["services"].values():
        if "build" in other and other.get("image") and other.get("image") == service.get("image"):
            return other["build"].get("target")
    return None


def test_base_images_set_no_user():
    """Like the official images: the stand-ins must not decide the uid in compose's place."""
    services = config()["services"]
    images = {services["db"]["image"], services["redis"]["image"]}
    for service in services.values():
        images.update(
            value
            for key, value in service.get("build", {}).get("args", {}).items()
            if key.endswith("_IMAGE")
        )
    for image in sorted(images):
        assert image_user(image) == "", f"{image} sets USER {image_user(image)!r}"


def one_shot_uid(name: str) -> int:
    """The uid a one-shot service's command runs as: `id -u` in a fresh container of it (its
    own exited long ago)."""
    run = compose("run", "--rm", "--no-deps", "-T", "--entrypoint", "id", name, "-u")
    return int(run.stdout.strip())


def test_every_container_gets_its_uid_from_compose_or_our_dockerfile():
    running = running_containers()
    problems = []
    for name, service in config()["services"].items():
        if service.get("user"):
            source, user = f"compose's user: {service['user']}", service["user"]
        elif (target := build_target(service)) and (user := dockerfile_user(target)):
            source = f"app/Dockerfile's USER {user} (target {target})"
        elif target:
            problems.append(f"{name}: neither compose nor app/Dockerfile ({target}) sets a user")
            continue
        else:
            problems.append(
                f"{name}: compose sets no user: and the image is not built here; the official "
                "image would run it as root (under cap_drop: [ALL] its entrypoint cannot drop root)"
            )
            continue
        if name not in long_running():
            expected = int(user.split(":")[0]) if user.split(":")[0].isdigit() else None
            uid = one_shot_uid(name)
            if uid == 0 or (expected is not None and uid != expected):
                problems.append(f"{name}: its command runs as uid {uid}, {source}")
            continue
        if name not in running:
            problems.append(f"{name}: not running")
            continue
        expected = uid_of(name, user)
        if expected == 0:
            problems.append(f"{name}: {source} is root")
        for command, uids in process_uids(running[name]["Id"]):
            if uids != {expected}:
                problems.append(
                    f"{name}: {command} runs as uids {sorted(uids)}, {source} says {expected}"
                )
    assert not problems, "\n".join(problems)


def db_env() -> dict[str, str]:
    return config()["services"]["db"].get("environment") or {}


def initdb_options() -> dict[str, str]:
    options = {}
    for word in shlex.split(db_env().get("POSTGRES_INITDB_ARGS", "")):
        key, _, value = word.partition("=")
        options[key] = value
    return options


def sql(query: str) -> list[list[str]]:
    psql = 'psql -X -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -At'
    command = f"{psql} -c {shlex.quote(query)}"
    output = compose("exec", "-T", "db", "sh", "-c", command).stdout
    return [line.split("|") for line in output.splitlines()]


def test_db_keeps_its_data_on_the_compose_volume():
    mounts = {
        volume["target"]
        for volume in config()["services"]["db"]["volumes"]
        if volume.get("source") == "postgres-data"
    }
    assert sql("SHOW data_directory") == [[directory] for directory in mounts]


def test_db_locale_is_the_one_compose_chose():
    options = initdb_options()
    provider = options.get("--locale-provider")
    locale = options.get("--builtin-locale") or options.get("--locale")
    assert provider, "compose must choose the locale provider (POSTGRES_INITDB_ARGS)"
    assert locale, "compose must choose the cluster's locale (POSTGRES_INITDB_ARGS)"
    [[got_provider, got_locale, collate]] = sql(
        "SELECT datlocprovider, coalesce(datlocale, ''), datcollate FROM pg_database"
        " WHERE datname = current_database()"
    )
    assert got_provider == provider[0]  # builtin -> b, libc -> c, icu -> i
    assert locale in (got_locale, collate)


def test_db_client_authentication_is_the_one_compose_chose():
    method = db_env().get("POSTGRES_HOST_AUTH_METHOD")
    assert method, "compose must choose the method for TCP (POSTGRES_HOST_AUTH_METHOD)"
    assert method != "trust", "every TCP connection would get in without a password"
    options = initdb_options()
    rules = sql(
        "SELECT type, database, user_name, coalesce(address, ''), auth_method"
        " FROM pg_hba_file_rules ORDER BY line_number"
    )
    assert rules[-1] == ["host", "{all}", "{all}", "all", method]
    for kind, option in (("local", "--auth-local"), ("host", "--auth-host")):
        if option in options:
            assert {rule[4] for rule in rules[:-1] if rule[0] == kind} == {options[option]}, rules


def test_db_socket_directory_belongs_to_the_db_user():
    """The image's entrypoint sets mode 3775 on each start, which only the owner may do."""
    [tmpfs] = [
        mount
        for mount in config()["services"]["db"]["tmpfs"]
        if mount.split(":")[0] == "/var/run/postgresql"
    ]
    options = dict(option.partition("=")[::2] for option in tmpfs.partition(":")[2].split(","))
    owner, mode = compose(
        "exec", "-T", "db", "stat", "-c", "%u %a", "/var/run/postgresql"
    ).stdout.split()
    assert (owner, mode) == (options.get("uid"), options.get("mode", "").lstrip("0"))
    assert owner == compose("exec", "-T", "db", "id", "-u").stdout.strip()
    logs = compose("logs", "--no-log-prefix", "db")
    output = logs.stdout + logs.stderr
    assert not re.search(r"chmod.*/var/run/postgresql", output), "the entrypoint's chmod failed"


def test_nginx_may_reuse_the_ports_of_its_closed_upstream_connections():
    """nginx opens a connection to gunicorn for each request to sync workers; without port reuse,
    a few minutes at a few hundred requests a second leave every local port waiting out its 60 s
    (TIME_WAIT), and each new connection then costs nginx a search (measured: compose.yaml says)."""
    nginx = next(c["ID"] for c in containers() if c["Service"] == "nginx")
    assert docker("exec", nginx, "cat", "/proc/sys/net/ipv4/tcp_tw_reuse").strip() == "1"


def redis_config(service: str) -> dict[str, str]:
    """The running server's configuration, as CONFIG GET reports it."""
    command = (
        'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" exec redis-cli --raw CONFIG GET "*"'
    )
    lines = compose("exec", "-T", service, "sh", "-c", command).stdout.splitlines()
    return dict(zip(lines[::2], lines[1::2], strict=True))


def memory_used(container: dict) -> float:
    """The container's memory use in bytes, as `docker stats` reports it."""
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", container["Id"])
    number, unit = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?i?B)\s*", usage.split("/")[0]).groups()
    return float(number) * {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]


def test_redis_memory_limit_leaves_room_for_the_official_modules():
    running = running_containers()
    assert "redis" in running, "redis is not running"
    container = running["redis"]
    limit, used = container["HostConfig"]["Memory"], memory_used(container)
    assert used + REDIS_MODULES_ALLOWANCE < limit / 4, f"redis uses {used} of {limit} bytes"


def test_the_broker_refuses_writes_when_full_and_stays_below_its_limit():
    """A full broker answers OOM to new tasks and keeps the queued ones: no eviction, and
    maxmemory low enough that the kernel never kills it, even while an append-only-file rewrite's
    fork copies every page of the data set."""
    settings = redis_config("redis")
    assert settings["maxmemory-policy"] == "noeviction"
    assert settings["appendonly"] == "yes"
    maxmemory = int(settings["maxmemory"])
    limit = running_containers()["redis"]["HostConfig"]["Memory"]
    assert 0 < 2 * maxmemory + REDIS_MODULES_ALLOWANCE < limit, (maxmemory, limit)


def test_the_cache_evicts_when_full_keeps_nothing_on_disk_and_stays_below_its_limit():
    settings = redis_config("cache")
    assert settings["maxmemory-policy"] == "allkeys-lru"
    assert settings["appendonly"] == "no"
    assert settings["save"] == "", "snapshots would fork and copy the whole cache"
    maxmemory = int(settings["maxmemory"])
    limit = running_containers()["cache"]["HostConfig"]["Memory"]
    # Room for the modules, client buffers and the allocator's fragmentation.
    assert 0 < maxmemory + REDIS_MODULES_ALLOWANCE < limit * 0.75, (maxmemory, limit)
    container = running_containers()["cache"]
    # However full it is (an earlier test may have filled it).
    used = memory_used(container)
    assert used + REDIS_MODULES_ALLOWANCE < limit * 0.75, f"cache uses {used} of {limit} bytes"
    mounts = [mount["Destination"] for mount in container["Mounts"]]
    assert "/data" not in mounts, f"a volume for a cache that writes nothing: {mounts}"
    assert "/data" in (container["HostConfig"]["Tmpfs"] or {})


def test_the_production_image_carries_no_dev_tooling():
    """The dev target adds the debug toolbar and the test tools; the image web runs has none."""
    image = running_containers()["web"]["Image"]
    probe = (
        "import importlib.util, sys; "
        "found = [m for m in ('debug_toolbar', 'pytest', 'pytest_django') "
        "if importlib.util.find_spec(m)]; print(found); sys.exit(bool(found))"
    )
    result = docker("run", "--rm", "--entrypoint", "python", image, "-c", probe)
    assert result.strip() == "[]", result
