"""The stack on a three-node Docker Swarm, deployed and updated by scripts/deploy.sh.

In order: the deploy itself, a rolling update and scaling under load, a failing migration, then
a node with web tasks stopped and a node with a Celery worker killed mid-task.
"""

import json
import time

import httpx
import pytest

from conftest import (
    NODE_CONTAINERS,
    NODES,
    REPO,
    REPOSITORY,
    STACK,
    VARIANT,
    Load,
    deploy,
    node_names,
    run,
    running_tasks,
    swarm,
    wait_until,
)


def test_deploy_passes_every_smoke_check_through_each_nodes_nginx(deployed):
    for address in NODES:
        variant = ["--asgi"] if VARIANT == "asgi" else []
        output = run(str(REPO / "scripts/smoke.sh"), *variant, "--url", f"http://{address}")
        assert "all smoke checks passed" in output, output


def test_web_runs_on_two_nodes_and_one_nginx_reaches_all_of_it(deployed):
    web = running_tasks("web")
    assert len(web) == 2, web
    assert len({node for node, _ in web}) == 2, f"both web tasks on one node: {web}"
    # nginx resolves web to every task, whichever node it is on.
    with httpx.Client(base_url=f"http://{NODES[0]}", timeout=10) as http:
        hosts = {http.get("/api/info/").json()["host"] for _ in range(20)}
    assert len(hosts) == 2, f"one nginx reached {hosts}, not both web tasks"
    assert len(running_tasks("beat")) == 1, "not exactly one beat"
    manager = node_names()[0]
    for service in ("db", "redis"):
        assert [node for node, _ in running_tasks(service)] == [manager], (
            f"{service} is not on the node labelled data=true"
        )


def test_every_service_keeps_compose_yamls_limits_and_hardening(deployed):
    """What compose.yaml sets for one host holds on the swarm (swarm/stackfile.py translates it):
    the memory and pids limits, a read-only root, no capabilities, the user, the tmpfs mounts;
    and the secrets are Swarm's, with no volume left over them."""
    one_host = json.loads(
        run("docker", "compose", "-f", str(REPO / "compose.yaml"), "config", "--format", "json")
    )["services"]
    for name in ("db", "redis", "web", "worker", "beat", "nginx"):
        wanted = one_host[name]
        task = json.loads(swarm("service", "inspect", f"{STACK}_{name}"))[0]["Spec"]["TaskTemplate"]
        container, limits = task["ContainerSpec"], task["Resources"]["Limits"]
        assert limits.get("MemoryBytes") == int(wanted["mem_limit"]), name
        assert limits.get("Pids") == wanted["pids_limit"], name
        assert container["ReadOnly"] is True, name
        assert container["CapabilityDrop"] == ["ALL"], name
        assert container.get("User") == wanted.get("user"), name
        mounts = container.get("Mounts", [])
        tmpfs = {m["Target"] for m in mounts if m["Type"] == "tmpfs"}
        assert tmpfs == {entry.split(":")[0] for entry in wanted["tmpfs"]}, name
        assert all(m["Target"] != "/run/secrets" for m in mounts), name


def test_rolling_update_of_web_under_load_fails_no_request(deployed):
    # A new app image (v2); nginx's is the same image under the new tag.
    build = f"FROM {REPOSITORY}/app:v1\nLABEL test.release=v2\n"
    run("docker", "build", "--quiet", "--tag", f"{REPOSITORY}/app:v2", "-", input_text=build)
    run("docker", "push", "--quiet", f"{REPOSITORY}/app:v2")
    run("docker", "tag", f"{REPOSITORY}/nginx:v1", f"{REPOSITORY}/nginx:v2")
    run("docker", "push", "--quiet", f"{REPOSITORY}/nginx:v2")
    with Load(NODES) as load:
        time.sleep(2)
        deploy("v2", "--no-build")
        time.sleep(2)
    assert not load.failures, load.summary()
    assert load.answered > 100, load.summary()
    images = {image for _, image in running_tasks("web")}
    assert images == {f"{REPOSITORY}/app:v2"}, images


def test_scaling_web_up_and_down_under_load_fails_no_request(deployed):
    with Load(NODES) as load:
        swarm("service", "scale", f"{STACK}_web=6")
        wait_until(lambda: len(running_tasks("web")) == 6, 120, "6 web tasks running")
        load.hosts.clear()
        wait_until(lambda: len(load.hosts) == 6, 30, "requests reach all 6 web tasks")
        swarm("service", "scale", f"{STACK}_web=2")
        wait_until(lambda: len(running_tasks("web")) == 2, 120, "back to 2 web tasks")
        time.sleep(3)
    assert not load.failures, load.summary()


def test_a_failing_migration_stops_the_deploy_and_the_old_web_keeps_serving(deployed, tmp_path):
    latest = sorted(path.stem for path in (REPO / "app/demo/migrations").glob("0*.py"))[-1]
    (tmp_path / "9999_fails.py").write_text(
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [('demo', '{latest}')]\n"
        "    operations = [migrations.RunSQL('SELECT 1 / 0')]\n"
    )
    (tmp_path / "Dockerfile").write_text(
        f"FROM {REPOSITORY}/app:v2\nCOPY 9999_fails.py /app/demo/migrations/\n"
    )
    run("docker", "build", "--quiet", "--tag", f"{REPOSITORY}/app:bad", str(tmp_path))
    run("docker", "push", "--quiet", f"{REPOSITORY}/app:bad")
    run("docker", "tag", f"{REPOSITORY}/nginx:v1", f"{REPOSITORY}/nginx:bad")
    run("docker", "push", "--quiet", f"{REPOSITORY}/nginx:bad")
    with Load(NODES) as load:
        result = deploy("bad", "--no-build", check=False)
    assert result.returncode != 0, result.stdout
    assert "migrations" in result.stderr, result.stderr
    assert "division by zero" in result.stderr, result.stderr
    assert not load.failures, load.summary()
    for service in ("web", "worker", "beat"):
        images = {image for _, image in running_tasks(service)}
        assert images == {f"{REPOSITORY}/app:v2"}, f"{service}: {images}"


def _node_of(service: str, exclude: str) -> str:
    """A node other than `exclude` that runs a task of the service."""
    nodes = [node for node, _ in running_tasks(service) if node != exclude]
    assert nodes, f"no {service} task outside {exclude}: {running_tasks(service)}"
    return nodes[0]


def _restart_node(container: str, name: str) -> None:
    run("docker", "start", container)
    wait_until(
        lambda: (
            "Ready" in swarm("node", "ls", "--filter", f"name={name}", "--format", "{{.Status}}")
        ),
        120,
        f"{name} back in the swarm",
    )


@pytest.mark.disruptive
def test_a_stopped_node_with_web_tasks_costs_at_most_15_seconds(deployed):
    names = node_names()
    victim = _node_of("web", exclude=names[0])
    container = NODE_CONTAINERS[names.index(victim)]
    try:
        with Load([NODES[0]]) as load:
            time.sleep(2)
            stopped = time.monotonic()
            run("docker", "stop", "--time", "5", container)
            web = wait_until(
                lambda: (
                    (tasks := running_tasks("web"))
                    and len(tasks) == 2
                    and victim not in {node for node, _ in tasks}
                    and tasks
                ),
                120,
                f"web rescheduled off {victim}",
            )
            time.sleep(3)
        recovery = load.last_failure - stopped if load.failures else 0.0
        assert recovery <= 15, f"failures for {recovery:.1f} s after the stop: {load.summary()}"
        assert load.answered > 50, load.summary()
        assert len(web) == 2
    finally:
        _restart_node(container, victim)


@pytest.mark.disruptive
def test_a_worker_node_killed_mid_task_loses_no_task(deployed):
    names = node_names()
    # After the node stop above, both workers may run on one node: spread them again, as an
    # operator would once a node is back (Swarm does not rebalance by itself).
    swarm("service", "update", "--force", "--quiet", f"{STACK}_worker")
    wait_until(lambda: len(running_tasks("worker")) == 2, 120, "2 worker tasks running")
    victim = _node_of("worker", exclude=names[0])
    container = NODE_CONTAINERS[names.index(victim)]
    http = httpx.Client(base_url=f"http://{NODES[0]}", timeout=10)
    try:
        ids = []
        for _ in range(8):
            response = http.post("/api/tasks/", json={"seconds": 3})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        # Two workers run two tasks each at most: with three running, both have one.
        wait_until(
            lambda: (
                sum(http.get(f"/api/tasks/{i}/").json()["status"] == "running" for i in ids) >= 3
            ),
            30,
            "3 tasks running",
            interval=0.2,
        )
        # As a power cut would: no warm shutdown, the tasks it had are lost with it.
        run("docker", "kill", container)

        def state(task_id: str) -> str:
            # The killed node may have run a web task too: a request in flight to it is lost
            # with it, and one may fail meanwhile. The tasks are what this test is about.
            try:
                response = http.get(f"/api/tasks/{task_id}/")
            except httpx.HTTPError:
                return "unknown"
            return response.json()["status"] if response.status_code == 200 else "unknown"

        def all_done():
            states = [state(i) for i in ids]
            return states if all(s == "succeeded" for s in states) else None

        wait_until(all_done, 150, f"all 8 tasks succeeded after {victim} was killed", interval=2)
    finally:
        http.close()
        _restart_node(container, victim)
