"""One measurement of bench/run.sh as a JSON line: python3 bench/measure.py KIND KEY=VALUE...

KIND wrk (a wrk run, and the CPU each service spent a request), celery (bench/celery_probe.py
in the stack's web container), memory (each service's memory now), soak (wrk at a fixed rate,
sampled once a minute) or timing (seconds since started=) adds its results to the pairs; any
other KIND (meta, component, image, note) prints them as they are. With network=NAME, wrk runs
in a container of BENCH_WRK_IMAGE on that Docker network (the stack's frontend, as a load
balancer would reach nginx); without, on this host, through the published port.
A VALUE that is a number is read as one, except a component's (versions). Standard library only.
"""

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from glob import glob
from pathlib import Path

MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def run(*command: str) -> str:
    # Only docker and wrk, with arguments from bench/run.sh.
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603


PREFIX = os.environ.get("BENCH_PREFIX", "django-stack-bench")
BENCH_DIR = Path(__file__).resolve().parent


def containers(stack: str) -> list[tuple[str, str]]:
    """(service, full container id) of each running container of a bench stack."""
    label = f"label=com.docker.compose.project={PREFIX}-{stack}"
    fmt = '{{.Label "com.docker.compose.service"}} {{.ID}}'
    lines = run("docker", "ps", "--no-trunc", "--filter", label, "--format", fmt).splitlines()
    return [tuple(line.split()) for line in lines]


def memory_mb(stack: str) -> dict[str, float]:
    """Each service's memory in MB as `docker stats` counts it: the cgroup's usage without its
    inactive file cache."""
    used: Counter = Counter()
    for service, cid in containers(stack):
        if v1 := glob(f"/sys/fs/cgroup/memory/docker/{cid}/memory.usage_in_bytes"):
            usage = int(Path(v1[0]).read_text())
            stat = Path(v1[0]).with_name("memory.stat").read_text()
            inactive = int(re.search(r"^total_inactive_file (\d+)", stat, re.MULTILINE)[1])
        elif (v2 := Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope")).exists():
            usage = int((v2 / "memory.current").read_text())
            inactive = int(
                re.search(r"^inactive_file (\d+)", (v2 / "memory.stat").read_text(), re.M)[1]
            )
        else:
            continue
        used[service] += (usage - inactive) / 1e6
    return {service: round(mb, 1) for service, mb in sorted(used.items())}


def machine_busy(since: tuple | None = None):
    """The CPU counters of /proc/stat (busy, total); with since, the busy share since then."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle, total = ticks[3] + ticks[4], sum(ticks[:8])
    if since is None:
        return total - idle, total
    return (total - idle - since[0]) / max(total - since[1], 1)


def cpu_ms_each(used: Counter, count: int) -> dict[str, float]:
    """CPU milliseconds each service spent per request (or task), from cpu_ns differences."""
    return {service: ns / 1e6 / max(count, 1) for service, ns in sorted(used.items())}


def cpu_ns(stack: str) -> Counter:
    """CPU nanoseconds each service's containers have used so far, from their cgroups."""
    used: Counter = Counter()
    for service, cid in containers(stack):
        if v1 := glob(f"/sys/fs/cgroup/cpu*/docker/{cid}/cpuacct.usage"):
            used[service] += int(Path(v1[0]).read_text())
        elif (v2 := Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")).exists():
            used[service] += 1000 * int(re.search(r"usage_usec (\d+)", v2.read_text())[1])
    return used


def wrk(r: dict) -> dict:
    """wrk leaves requests slower than --timeout out of the latencies and counts them as timeout
    socket errors; it prints the lines on errors only when there were some."""
    threads = min(len(os.sched_getaffinity(0)), r["connections"])  # as many as nproc says
    command = ["wrk", f"-t{threads}", f"-c{r['connections']}", "--timeout", "2s"]
    if r.get("network"):
        # Same arguments, from a container on the stack's network (the Host header is one
        # Django allows; nginx passes it on).
        image = os.environ.get("BENCH_WRK_IMAGE", f"{PREFIX}-wrk")
        volume = f"{BENCH_DIR}:/bench:ro"
        command = ["docker", "run", "--rm", "--network", r["network"], "-v", volume, image]
        command += [f"-t{threads}", f"-c{r['connections']}", "--timeout", "2s"]
        command += ["-H", "Host: localhost"]
    if r.get("script"):
        command += [
            "-s",
            f"/bench/{r['script']}" if r.get("network") else str(BENCH_DIR / r["script"]),
        ]
    command.append(r["url"])
    if r["warmup"]:  # at the same concurrency, so that connections and caches are warm
        run(*command, f"-d{r['warmup']}s")
    before, busy = cpu_ns(r["stack"]), machine_busy()
    text = run(*command[:-1], f"-d{r['duration']}s", "--latency", command[-1])
    used = cpu_ns(r["stack"]) - before
    out = parse_wrk(text)
    # How busy the whole machine was: the stack, the load generator, Docker and the kernel.
    out["machine_busy"] = round(machine_busy(busy), 3)
    out["cpu_ms"] = cpu_ms_each(used, out["requests"])
    cpu, errors = sum(out["cpu_ms"].values()), out["non2xx"] + out["socket_errors"]
    print(
        f"  {r['label']:52} c={r['connections']:<4} {out['rps']:8.1f} req/s  p99 "
        f"{out['p99_ms'] or 0:7.1f} ms  errors {errors}  CPU {cpu:.2f} ms/req",
        file=sys.stderr,
    )
    return out


def parse_wrk(text: str) -> dict:
    def find(pattern: str, *default) -> tuple:
        return match.groups() if (match := re.search(pattern, text, re.MULTILINE)) else default

    out = {"rps": float(find(r"^Requests/sec:\s+([\d.]+)")[0])}
    out["requests"] = int(find(r"(\d+) requests in")[0])
    for pct in (50, 99):
        value, unit = find(rf"^\s+{pct}%\s+([\d.]+)(\w+)", None, None)
        # All slower than the timeout: wrk prints zeros, which are no latency.
        out[f"p{pct}_ms"] = (float(value) * MS[unit] or None) if value else None
    out["non2xx"] = int(find(r"Non-2xx or 3xx responses:\s+(\d+)", 0)[0])
    socket = find(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", 0, 0, 0, 0)
    out["timeouts"], out["socket_errors"] = int(socket[3]), sum(map(int, socket))
    return out


def service_id(stack: str, service: str) -> str:
    return next(cid for name, cid in containers(stack) if name == service)


def celery(r: dict) -> dict:
    """bench/celery_probe.py in the web container: no HTTP, nginx or port proxy measured. The
    CPU counted starts once the probe has set Django up: its own start is not a task's cost."""
    script = (BENCH_DIR / "celery_probe.py").read_text()
    command = ["docker", "exec", "-i", service_id(r["stack"], "web"), "python", "-c", script]
    # Only docker, with arguments from bench/run.sh, like run().
    probe = subprocess.Popen(  # noqa: S603
        [*command, str(r["round_trips"]), str(r["tasks"])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if probe.stdout.readline().strip() != "ready":
        raise RuntimeError(f"celery_probe.py did not start (exit code {probe.wait()})")
    before = cpu_ns(r["stack"])
    text, _ = probe.communicate("go\n")
    if probe.returncode:
        raise RuntimeError(f"celery_probe.py failed (exit code {probe.returncode})")
    used = cpu_ns(r["stack"]) - before
    out = json.loads(text)
    count = 10 + out["round_trips"] + out["tasks"]
    out["cpu_ms"] = cpu_ms_each(used, count)
    print(
        f"  {r['label']:52} p50 {out['rt_p50_ms']:.1f} ms  {out['tasks_per_s']:.0f} tasks/s  "
        f"CPU {sum(out['cpu_ms'].values()):.2f} ms/task",
        file=sys.stderr,
    )
    return out


def postgres_connections(stack: str) -> int:
    query = "select count(*) from pg_stat_activity where datname = current_database()"
    db = service_id(stack, "db")
    return int(run("docker", "exec", db, "psql", "-U", "app", "-d", "app", "-tAc", query))


def redis_memory_mb(stack: str) -> float:
    info = run(
        "docker",
        "exec",
        service_id(stack, "redis"),
        "sh",
        "-c",
        'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" redis-cli info memory',
    )
    return round(int(re.search(r"^used_memory:(\d+)", info, re.MULTILINE)[1]) / 1e6, 2)


def soak(r: dict) -> dict:
    """wrk at about r["rate"] requests a second (bench/soak.lua) in one-minute runs, back to
    back; after each, every container's memory, Postgres' connections and Redis' memory."""
    samples = []
    for minute in range(1, r["minutes"] + 1):
        image = os.environ.get("BENCH_WRK_IMAGE", f"{PREFIX}-wrk")
        env = [
            f"BENCH_RATE={r['rate']}",
            f"BENCH_CONNECTIONS={r['connections']}",
            f"BENCH_TASK={r['task']}",
        ]
        command = [
            "docker",
            "run",
            "--rm",
            "--network",
            r["network"],
            "-v",
            f"{BENCH_DIR}:/bench:ro",
            *(a for e in env for a in ("-e", e)),
            image,
            "-t1",
            f"-c{r['connections']}",
            "--timeout",
            "2s",
            "-d60s",
            "--latency",
            "-H",
            "Host: localhost",
            "-s",
            "/bench/soak.lua",
            r["url"],
        ]
        out = parse_wrk(run(*command))
        sample = {
            "minute": minute,
            "rps": out["rps"],
            "p99_ms": out["p99_ms"],
            "errors": out["non2xx"] + out["socket_errors"],
            "memory_mb": memory_mb(r["stack"]),
            "postgres_connections": postgres_connections(r["stack"]),
            "redis_mb": redis_memory_mb(r["stack"]),
        }
        samples.append(sample)
        print(f"  soak {r['stack']} minute {minute}: {json.dumps(sample)}", file=sys.stderr)
    return {"samples": samples}


def main() -> None:
    kind, record = sys.argv[1], {"kind": sys.argv[1]}
    for key, _, value in (pair.partition("=") for pair in sys.argv[2:]):
        number = kind != "component" and re.fullmatch(r"-?\d+(\.\d+)?", value)  # not versions
        record[key] = json.loads(value) if number else value
    measures = {"wrk": wrk, "celery": celery, "soak": soak}
    measures["memory"] = lambda r: {"mb": memory_mb(r["stack"])}
    measures["timing"] = lambda r: {"seconds": time.time() - r["started"]}
    record |= measures[kind](record) if kind in measures else {}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
