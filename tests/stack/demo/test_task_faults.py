"""Faults the demo's tasks survive: a worker, its pool process, Redis or Postgres killed mid-task,
a cache filled past its limit, a lost message, and requests in flight at web's SIGTERM. Each
breaks something for real and leaves every service healthy again; they run last.

The stack under test runs with CELERY_VISIBILITY_TIMEOUT=20 (scripts/test.sh), so tasks taken by
a killed worker come back within seconds instead of the production default's minutes.
"""

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from demo_tasks import enqueue, wait_for_task
from waiting import wait_for, wait_until

from helpers import (
    STACK_URL,
    compose,
    container_ids,
    inspect,
    only_once,
    wait_healthy,
)

pytestmark = pytest.mark.disruptive


def started_at(service: str) -> set[str]:
    return {inspect(container_id)["State"]["StartedAt"] for container_id in container_ids(service)}


def readiness(http: httpx.Client) -> Callable[[], tuple[int, str]]:
    """/readyz's status and what it names, for a wait to show if it stays unready."""

    def fetch() -> tuple[int, str]:
        answer = http.get("/readyz")
        return answer.status_code, answer.text[:300]

    return fetch


def wait_for_status(http: httpx.Client, task_id: str, status: str, timeout: float = 30) -> None:
    wait_for(
        lambda: http.get(f"/api/tasks/{task_id}/").json()["status"],
        lambda seen: seen == status,
        timeout,
        f"task {task_id} {status}",
    )


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
    wait_until(
        lambda: inspect(container_id)["RestartCount"] != count,
        timeout,
        f"{service} restarted after the crash",
    )


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

    wait_until(
        lambda: http.get("/readyz").status_code == 200,
        20,
        "ready again after the database came back",
        0.5,
    )
    wait_for_task(http, enqueue(http, 0))
    assert started_at("web") | started_at("worker") == before, "web or worker was restarted"


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
        wait_for(readiness(http), lambda seen: seen[0] == 200, 60, "ready after the crash")
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
