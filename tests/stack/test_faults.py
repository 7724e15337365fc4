"""Faults the stack survives. Each test breaks something for real, checks what a user would see,
and leaves every service healthy again. scripts/test.sh runs this file last.

The stack under test runs with CELERY_VISIBILITY_TIMEOUT=20 (scripts/test.sh), so tasks taken by
a killed worker come back within seconds instead of the production default's minutes.
"""

import difflib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from helpers import (
    STACK_URL,
    VARIANT,
    compose,
    containers,
    enqueue,
    inspect,
    wait_for_task,
    wait_healthy,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.disruptive
only_once = pytest.mark.skipif(
    VARIANT != "wsgi", reason="independent of the web server: run with the WSGI stack only"
)


def container_ids(service: str) -> list[str]:
    return [c["ID"] for c in containers() if c["Service"] == service and c["State"] == "running"]


def started_at(service: str) -> set[str]:
    return {inspect(container_id)["State"]["StartedAt"] for container_id in container_ids(service)}


def wait_for_status(http: httpx.Client, task_id: str, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (current := http.get(f"/api/tasks/{task_id}/").json()["status"]) != status:
        assert time.monotonic() < deadline, f"task {task_id} not {status} in {timeout} s: {current}"
        time.sleep(0.2)


# Long enough that the kill (after `celery inspect`, seconds on a busy machine) lands while the
# task runs: one that finished first would never run again, killed or not.
TASK_SECONDS = 10


def run_started_at(result: dict) -> float:
    """When the run that completed the task started, as a Unix time (the containers share the
    host's clock)."""
    return datetime.fromisoformat(result["started_at"]).timestamp()


def redis_cli(*arguments: str) -> str:
    command = 'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" exec redis-cli "$@"'
    return compose("exec", "-T", "redis", "sh", "-c", command, "redis-cli", *arguments).stdout


def duration_seconds(value: str) -> float:
    """A compose duration ("30s", "1m30s", "1h") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    assert "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


class Load:
    """Background clients sending GETs through nginx, counting every answer that is not a 200."""

    def __init__(self, path: str, clients: int = 4) -> None:
        self.path, self.stop = path, threading.Event()
        self.ok, self.failures = 0, []
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(base_url=STACK_URL, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    status = client.get(self.path).status_code
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    continue
                if status == 200:
                    self.ok += 1
                else:
                    self.failures.append(status)

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


@pytest.mark.demo
@only_once
def test_a_task_running_when_its_worker_is_killed_runs_again(http):
    """SIGKILL for the whole worker, as the OOM killer or a crashed host would deal it: the task
    it was running was never acknowledged, so Redis hands it out again (after the visibility
    timeout) and it runs once more, from the start."""
    task_id = enqueue(http, TASK_SECONDS)
    wait_for_status(http, task_id, "running")
    killed_at = time.time()
    compose("kill", "--signal", "KILL", "worker")
    # Docker applies no restart policy after a `docker kill` (Docker 20.10 counts it as a
    # manual stop): start it again, as the restart policy does after a crash.
    compose("start", "worker")

    result = wait_for_task(http, task_id, timeout=120)["result"]
    assert run_started_at(result) > killed_at, "the task was not run again after the kill"
    wait_healthy()


@pytest.mark.demo
@only_once
def test_a_task_whose_pool_process_dies_runs_again_at_once(http):
    """SIGKILL for the one pool process running a task (what the OOM killer picks): the worker
    stays up and, with task_reject_on_worker_lost, puts the task back on the queue at once."""
    (worker,) = container_ids("worker")
    worker_started = inspect(worker)["State"]["StartedAt"]
    task_id = enqueue(http, TASK_SECONDS)
    wait_for_status(http, task_id, "running")
    active = json.loads(
        compose(
            "exec", "-T", "worker", "celery", "--app", "config", "inspect", "active", "--json"
        ).stdout
    )
    (pid,) = [
        task["worker_pid"] for tasks in active.values() for task in tasks if task["id"] == task_id
    ]
    killed_at = time.time()
    compose("exec", "-T", "worker", "sh", "-c", f"kill -KILL {pid}")

    result = wait_for_task(http, task_id, timeout=TASK_SECONDS + 20)["result"]
    assert run_started_at(result) > killed_at, "the task was not run again after the kill"
    # Well within the visibility timeout (20 s after the first delivery): requeued by the
    # worker, not restored by Redis.
    requeued_after = run_started_at(result) - killed_at
    assert requeued_after < 10, f"run again {requeued_after:.1f} s after the kill, not at once"
    assert inspect(worker)["State"]["StartedAt"] == worker_started, "the worker restarted"
    wait_healthy()


@pytest.mark.demo
def test_enqueues_wait_out_a_redis_crash_and_queued_tasks_survive_it(http):
    """Redis SIGKILLed (no shutdown save): what was queued survives through the append-only
    file, and enqueues sent while Redis is down wait for it instead of failing."""
    outage_seconds = 4  # how long Redis stays down: well within the enqueue's retries (15 s)
    compose("stop", "worker")  # so that the queued tasks are still in Redis at the crash
    answers: list[tuple[int, str, float]] = []

    def enqueue_during_the_outage() -> None:
        with httpx.Client(base_url=STACK_URL, timeout=60) as client:
            response = client.post("/api/tasks/", json={"seconds": 0})
            answers.append((response.status_code, response.text, time.monotonic()))

    try:
        queued = [enqueue(http, 0) for _ in range(5)]
        assert int(redis_cli("llen", "celery")) >= len(queued)
        compose("kill", "--signal", "KILL", "redis")
        senders = [threading.Thread(target=enqueue_during_the_outage) for _ in range(3)]
        for sender in senders:
            sender.start()
        time.sleep(outage_seconds)
        assert answers == [], "answered while Redis was down"
        redis_back = time.monotonic()
        compose("start", "redis")
        for sender in senders:
            sender.join()
    finally:
        compose("start", "redis")
        wait_healthy()  # starts the worker too

    assert [status for status, _, _ in answers] == [202] * 3, answers
    assert all(answered > redis_back for _, _, answered in answers), "no enqueue waited"
    for task_id in [*queued, *(json.loads(text)["id"] for _, text, _ in answers)]:
        wait_for_task(http, task_id, timeout=60)


def restarts(service: str) -> tuple[int, str]:
    """How often Docker restarted the service's container, and when it last started."""
    (container_id,) = container_ids(service)
    container = inspect(container_id)
    return container["RestartCount"], container["State"]["StartedAt"]


def crash(service: str, timeout: float = 60) -> None:
    """SIGKILL for the main process of the service's container, from the host: a crash, which the
    restart policy answers (`docker kill` is a manual stop for Docker 20.10, and a signal sent from
    inside the container cannot kill its PID 1)."""
    (container_id,) = container_ids(service)
    count, _ = restarts(service)
    os.kill(inspect(container_id)["State"]["Pid"], signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while inspect(container_id)["RestartCount"] == count:
        assert time.monotonic() < deadline, f"{service} not restarted {timeout} s after the crash"
        time.sleep(0.2)


def wait_until_succeeded_once(http: httpx.Client, task_ids: list[str], timeout: float) -> None:
    """Every task ends succeeded, recorded once: what was recorded when it first showed succeeded
    (worker, start, finish) is still what the database says after all of them are done, so no
    second run of any of them recorded an outcome of its own."""
    deadline = time.monotonic() + timeout
    first_seen = {
        task_id: wait_for_task(http, task_id, timeout=max(1, deadline - time.monotonic()))
        for task_id in task_ids
    }
    changed = [
        task_id
        for task_id in task_ids
        if http.get(f"/api/tasks/{task_id}/").json() != first_seen[task_id]
    ]
    assert not changed, f"recorded again after it had succeeded: {changed}"


CACHE_FILL = """if True:
    import json, os
    from django.core.cache import cache
    errors = []
    for i in range({count}):
        try:
            cache.set(f"fill:{{i}}", os.urandom(2**20), timeout=None)
        except Exception as error:
            errors.append(repr(error))
    kept = 0
    for i in range(10):
        try:
            kept += cache.get(f"fill:{{i}}") is not None
        except Exception as error:
            errors.append(repr(error))
    print(json.dumps({{"errors": len(errors), "first_errors": errors[:3], "early_kept": kept}}))
"""


def redis_info(service: str) -> dict[str, str]:
    command = 'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" exec redis-cli INFO'
    lines = compose("exec", "-T", service, "sh", "-c", command).stdout.splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))


@pytest.mark.demo
def test_a_cache_filled_far_past_its_limit_evicts_and_the_broker_loses_no_task(http):
    """900 one-MiB values through django.core.cache, far more than the cache server may hold,
    while tasks are queued and running: the cache forgets the oldest entries, no Redis is
    restarted (killed by the kernel at its memory limit), no cache.set fails, and every task is
    done once."""
    before = {service: restarts(service) for service in ("redis", "cache")}
    accepted = [enqueue(http, 2) for _ in range(6)]  # 2 running, 4 queued (concurrency 2)
    during: list[str] = []
    filled = threading.Event()

    def enqueue_while_filling() -> None:
        with httpx.Client(base_url=STACK_URL, timeout=60) as client:
            while not filled.is_set():
                during.append(enqueue(client, 0.5))
                time.sleep(0.5)

    sender = threading.Thread(target=enqueue_while_filling)
    sender.start()
    try:
        code = CACHE_FILL.format(count=900)
        fill = compose("exec", "-T", "web", "python", "manage.py", "shell", "-c", code)
    finally:
        filled.set()
        sender.join()
    outcome = json.loads(fill.stdout.splitlines()[-1])

    assert outcome["errors"] == 0, outcome
    info = redis_info("cache")
    assert int(info["evicted_keys"]) > 0, "the cache evicted nothing"
    assert outcome["early_kept"] < 10, "the first values written are all still there"
    assert int(info["used_memory"]) <= int(info["maxmemory"]) + 2 * 2**20
    assert {service: restarts(service) for service in ("redis", "cache")} == before
    assert during, "no task was enqueued while the cache filled up"
    wait_until_succeeded_once(http, accepted + during, timeout=180)


def task_rows() -> int:
    query = "SELECT count(*) FROM demo_taskrun"
    psql = f'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "{query}"'
    return int(compose("exec", "-T", "db", "sh", "-c", psql).stdout.strip())


@pytest.mark.demo
@only_once
def test_an_enqueue_that_outlasts_its_retries_gets_503_and_leaves_no_task(http):
    """Redis down for longer than enqueues wait (about 15 s): a 503 that says to retry, not a
    500, and no task recorded as queued that no worker will ever see."""
    rows_before = task_rows()
    compose("stop", "redis")
    try:
        response = httpx.post(f"{STACK_URL}/api/tasks/", json={"seconds": 0}, timeout=90)
    finally:
        compose("start", "redis")
        wait_healthy()
    assert response.status_code == 503, response.text[:300]
    assert response.headers["retry-after"]
    assert "unavailable" in response.json()["error"]
    assert task_rows() == rows_before


@pytest.mark.demo
def test_readiness_names_the_database_while_it_is_down_and_recovers(http):
    before = started_at("web") | started_at("worker")
    compose("stop", "db")
    try:
        response = http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"].startswith("error")
        assert response.json()["checks"]["redis"] == "ok"
        # An enqueue meanwhile is told to come back, not answered with a 500.
        enqueue_meanwhile = http.post("/api/tasks/", json={"seconds": 0})
        assert enqueue_meanwhile.status_code == 503, enqueue_meanwhile.text[:300]
        assert enqueue_meanwhile.headers["retry-after"] == "10"
    finally:
        compose("start", "db")
    wait_healthy()

    deadline = time.monotonic() + 20
    while http.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "not ready again 20 s after the database came back"
        time.sleep(0.5)
    wait_for_task(http, enqueue(http, 0))
    assert started_at("web") | started_at("worker") == before, "web or worker was restarted"


@pytest.mark.demo
def test_tasks_running_or_queued_when_postgres_crashes_all_succeed_once(http):
    """Postgres' postmaster SIGKILLed while tasks run (the restart policy brings it back within
    seconds): the tasks that were running or queued retry until the database answers again, and
    every task accepted before, during and after the crash succeeds, each recorded once."""
    before = started_at("web") | started_at("worker")
    accepted = [enqueue(http, TASK_SECONDS / 2) for _ in range(5)]  # 2 running, 3 queued
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def enqueue_across_the_crash() -> None:
        # While the database is down an enqueue may be refused (no row can be written): only
        # the accepted ones must all be done.
        with httpx.Client(base_url=STACK_URL, timeout=30) as client:
            while not stop.is_set():
                response = client.post("/api/tasks/", json={"seconds": 1})
                answers.append((response.status_code, response.text))
                time.sleep(0.2)

    sender = threading.Thread(target=enqueue_across_the_crash)
    wait_for_status(http, accepted[0], "running")
    wait_for_status(http, accepted[1], "running")
    sender.start()
    try:
        crash("db")
        deadline = time.monotonic() + 60
        while (ready := http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, f"not ready 60 s after the crash: {ready.text}"
            time.sleep(0.2)
    finally:
        stop.set()
        sender.join()
    accepted += [json.loads(text)["id"] for status, text in answers if status == 202]
    assert len(accepted) > 5, f"no enqueue accepted around the crash: {answers[:3]}"
    # Ready again: every request is answered as usual (no broken connection handed out).
    accepted += [enqueue(http, 1) for _ in range(3)]

    wait_until_succeeded_once(http, accepted, timeout=180)
    assert started_at("web") | started_at("worker") == before, "web or worker was restarted"
    wait_healthy()


ORPHAN_RUN = """if True:
    from django.utils import timezone
    from demo.models import TaskRun
    from demo.tasks import stale_after
    run = TaskRun.objects.create(seconds=0)
    # Running since long before the sweep's cutoff, on a worker long gone, its message lost.
    long_ago = timezone.now() - stale_after() * 2
    TaskRun.objects.filter(pk=run.pk).update(
        status="running", worker="celery@gone", created_at=long_ago, started_at=long_ago
    )
    print(run.pk)
"""


@pytest.mark.demo
@only_once
def test_a_run_whose_message_was_lost_is_finished_by_beats_sweep(http):
    """The safety net behind the retries: a run recorded as running whose message no broker holds
    (its retries used up, or its message lost) is enqueued again by beat and finished."""
    shell = ("python", "manage.py", "shell", "-c", ORPHAN_RUN)
    run_id = compose("exec", "-T", "web", *shell).stdout.split()[-1]
    assert http.get(f"/api/tasks/{run_id}/").json()["status"] == "running"
    # Beat sends the sweep every 30 s.
    result = wait_for_task(http, run_id, timeout=90)["result"]
    assert result["worker"] != "celery@gone"


@pytest.mark.demo
def test_in_flight_requests_outlast_the_stop_signal_and_finish(http):
    """Requests in flight when web gets its SIGTERM run to their end, most of it after the
    signal, and gunicorn's grace period fits in the one compose gives the container."""
    config = json.loads(compose("config", "--format", "json").stdout)
    grace = duration_seconds(config["services"]["web"].get("stop_grace_period", "10s"))
    code = "import runpy; print(runpy.run_path('config/gunicorn.py')['graceful_timeout'])"
    graceful_timeout = float(compose("exec", "-T", "web", "python", "-c", code).stdout)
    assert graceful_timeout < grace, "gunicorn would be SIGKILLed before its workers finish"

    # As long as /api/wait/ allows (15 s): longer than Docker's 10 s default stop timeout, so
    # only compose's stop_grace_period lets them finish; most of it after the stop signal.
    wait_ms = 15_000
    assert wait_ms / 1000 < graceful_timeout
    assert "stop_grace_period" in config["services"]["web"], "Docker's 10 s default applies"
    results: list[tuple[int, float]] = []

    def slow_request() -> None:
        response = httpx.get(f"{STACK_URL}/api/wait/?ms={wait_ms}", timeout=60)
        results.append((response.status_code, time.monotonic()))

    requests = [threading.Thread(target=slow_request) for _ in range(3)]
    sent = time.monotonic()
    for request in requests:
        request.start()
    time.sleep(1)  # for the requests to pass nginx; 14 s of them remain after the stop
    stop_began = time.monotonic()
    compose("stop", "web")  # SIGTERM to gunicorn, then up to stop_grace_period
    for request in requests:
        request.join()
    wait_healthy()

    assert [status for status, _ in results] == [200] * 3
    for _, ended in results:
        assert ended > stop_began + 10, "the request did not outlast Docker's 10 s default"
        assert ended - sent >= wait_ms / 1000


def nginx_has_reached(container_id: str) -> bool:
    """Whether nginx has opened a connection to this web container since it (re)started: its
    network namespace, new at each start, holds one from nginx's address (open, or closed and
    in TIME_WAIT for a minute)."""
    (nginx,) = container_ids("nginx")
    nginx_addresses = {
        network["IPAddress"] for network in inspect(nginx)["NetworkSettings"]["Networks"].values()
    }
    table = subprocess.run(
        ["docker", "exec", container_id, "cat", "/proc/net/tcp"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in table.splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if local.endswith(":1F40") and state != "0A":  # port 8000, not the listening socket
            address = ".".join(str(int(remote[i : i + 2], 16)) for i in (6, 4, 2, 0))
            if address in nginx_addresses:
                return True
    return False


def wait_until_nginx_reaches(container_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not nginx_has_reached(container_id):
        assert time.monotonic() < deadline, f"nginx never sent a request to {container_id[:12]}"
        time.sleep(0.5)


@pytest.mark.demo
def test_rolling_restart_of_two_web_containers_drops_no_request(http):
    task_id = enqueue(http, 0)
    wait_for_task(http, task_id)
    wait_healthy("--scale", "web=2", "--no-recreate")
    try:
        first, second = container_ids("web")
        # The procedure: one container at a time, each only once nginx uses the other (nginx
        # asks Docker's DNS every 2 s, so it takes a moment to see a container).
        with Load(f"/api/tasks/{task_id}/") as load:
            for container_id in (first, second):
                wait_until_nginx_reaches(first if container_id == second else second)
                subprocess.run(["docker", "restart", container_id], check=True, capture_output=True)
                deadline = time.monotonic() + 60
                while inspect(container_id)["State"]["Health"]["Status"] != "healthy":
                    assert time.monotonic() < deadline, "restarted web container never healthy"
                    time.sleep(0.5)
                wait_until_nginx_reaches(container_id)
        assert load.ok >= 1, "no request was served during the restarts"
        assert load.failures == []
    finally:
        wait_healthy("--scale", "web=1")


def connections_to_gunicorn(container_id: str) -> int:
    """Established connections to gunicorn's port (8000) inside a web container."""
    table = docker_exec(container_id, "cat", "/proc/net/tcp").stdout
    return sum(
        1
        for line in table.splitlines()[1:]
        if line.split()[1].endswith(":1F40") and line.split()[3] == "01"
    )


def docker_exec(container_id: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "exec", container_id, *command], capture_output=True, text=True, check=False
    )


def request_inside(container_id: str, path: str) -> str:
    """A request to the container's own gunicorn, bypassing nginx: its status, or the error."""
    code = (
        "import sys, urllib.request\n"
        "try:\n"
        f"    print(urllib.request.urlopen('http://127.0.0.1:8000{path}', timeout=30).status)\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)"
    )
    return docker_exec(container_id, "python", "-c", code).stdout.strip()


@pytest.mark.demo
def test_a_draining_web_container_serves_on_then_stops(http, monkeypatch):
    """WEB_DRAIN_SECONDS, proven on one host (the Swarm tests prove it where it is set): after
    its SIGTERM a web container accepts and answers requests for that long, its in-flight ones
    finish, then it stops cleanly, and nginx goes on serving from the other container."""
    drain = 6
    monkeypatch.setenv("WEB_DRAIN_SECONDS", str(drain))
    wait_healthy("--scale", "web=2")
    try:
        draining, other = container_ids("web")
        wait_until_nginx_reaches(draining)
        wait_until_nginx_reaches(other)
        with Load("/api/info/") as load:
            in_flight: list[str] = []
            slow = threading.Thread(
                target=lambda: in_flight.append(request_inside(draining, "/api/wait/?ms=4000"))
            )
            before = connections_to_gunicorn(draining)
            slow.start()
            deadline = time.monotonic() + 30
            while connections_to_gunicorn(draining) <= before:
                assert time.monotonic() < deadline, "the slow request never reached gunicorn"
                time.sleep(0.1)
            signalled = time.monotonic()
            subprocess.run(["docker", "kill", "--signal", "TERM", draining], check=True)
            # A new request, sent after the signal: answered, not refused.
            answer = request_inside(draining, "/api/info/")
            assert answer == "200", f"a request during the drain got {answer!r}"
            assert time.monotonic() - signalled < drain, "the check came too late to prove it"
            slow.join()
            assert in_flight == ["200"], in_flight
            deadline = time.monotonic() + drain + 30
            while (state := inspect(draining)["State"])["Running"]:
                assert time.monotonic() < deadline, "the draining container never stopped"
                time.sleep(0.2)
            assert state["ExitCode"] == 0, state
            assert time.monotonic() - signalled >= drain, "it stopped before its drain ended"
            served_when_stopped = load.ok
            deadline = time.monotonic() + 30
            while load.ok < served_when_stopped + 20:
                assert time.monotonic() < deadline, "nginx served nothing after the stop"
                time.sleep(0.2)
    finally:
        monkeypatch.delenv("WEB_DRAIN_SECONDS")
        wait_healthy("--scale", "web=1")


def test_bad_gateway_is_a_friendly_page_with_retry_after(http):
    compose("stop", "web")
    try:
        response = http.get("/")
        assert response.status_code in (502, 503, 504)
        assert response.headers["retry-after"] == "30"
        assert "Back in a moment" in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
    finally:
        wait_healthy()


def write_media(name: str, content: str) -> None:
    compose("exec", "-T", "web", "sh", "-c", f"cat > /srv/media/{name}", input_text=content)


@pytest.mark.demo
@only_once
def test_data_and_media_survive_down_and_up(http):
    task = wait_for_task(http, enqueue(http, 0))
    write_media("kept.txt", "still here")

    compose("down")
    wait_healthy()

    assert http.get(f"/api/tasks/{task['id']}/").json() == task
    assert http.get("/media/kept.txt").text == "still here"


def database_dump() -> list[str]:
    """The whole database, schema and every row of every table, as pg_dump prints it (without
    the random key of its \\restrict lines)."""
    dump = compose(
        "exec",
        "-T",
        "db",
        "sh",
        "-c",
        'exec pg_dump --no-owner --username="$POSTGRES_USER" "$POSTGRES_DB"',
    ).stdout
    return [
        line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    ]


def media_checksums() -> str:
    listing = "cd /srv/media && find . -type f -exec sha256sum {} + | sort -k 2"
    return compose("exec", "-T", "web", "sh", "-c", listing).stdout


@pytest.mark.demo
@only_once
def test_backup_then_restore_after_a_wipe_gives_identical_data(http):
    tasks = [wait_for_task(http, enqueue(http, 0)) for _ in range(3)]
    write_media("backed-up.txt", "in the backup")
    compose(
        "exec",
        "-T",
        "web",
        "sh",
        "-c",
        "mkdir -p '/srv/media/uploads/a b' "
        "&& head -c 100000 /dev/urandom > '/srv/media/uploads/a b/c.bin'",
    )
    before = database_dump(), media_checksums()
    assert "backed-up.txt" in before[1]
    assert "c.bin" in before[1]
    assert sum(line.startswith("COPY ") for line in before[0]) >= 10  # Django's tables and ours
    with tempfile.TemporaryDirectory() as directory:
        backup = run_script("backup.sh", directory).stdout.strip().splitlines()[-1]

        compose("down", "--volumes")  # the wipe: database, media, secrets, all gone
        wait_healthy()
        assert http.get(f"/api/tasks/{tasks[0]['id']}/").status_code == 404
        assert media_checksums() == ""

        run_script("restore.sh", backup)

    after = database_dump(), media_checksums()
    assert after[1] == before[1]
    assert after[0] == before[0], "\n".join(
        list(difflib.unified_diff(before[0], after[0], lineterm="", n=1))[:60]
    )
    assert [http.get(f"/api/tasks/{task['id']}/").json() for task in tasks] == tasks
    assert http.get("/media/backed-up.txt").text == "in the backup"


@pytest.mark.demo
@only_once
def test_switching_between_wsgi_and_asgi_keeps_the_data(http):
    task = wait_for_task(http, enqueue(http, 0))
    wsgi_files = os.environ["COMPOSE_FILE"]
    asgi_files = wsgi_files.replace("compose.yaml", "compose.asgi.yaml", 1)
    try:
        os.environ["COMPOSE_FILE"] = asgi_files
        wait_healthy()
        assert http.get("/api/info/").json()["interface"] == "asgi"
        assert http.get(f"/api/tasks/{task['id']}/").json() == task
    finally:
        os.environ["COMPOSE_FILE"] = wsgi_files
        wait_healthy()
    assert http.get("/api/info/").json()["interface"] == "wsgi"


def run_script(name: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ROOT / "scripts" / name, *arguments], capture_output=True, text=True, check=True
    )
