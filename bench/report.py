"""The report of bench/run.sh: python3 bench/report.py RESULTS OUTDIR

Reads the JSON lines bench/measure.py printed; writes OUTDIR/results.md (and prints it),
results.json, and results.png when matplotlib can be imported (run.sh runs this through uv).
"""

import json
import re
import statistics
import sys
from pathlib import Path

METRICS = (
    "rps",
    "requests",
    "p50_ms",
    "p99_ms",
    "non2xx",
    "timeouts",
    "socket_errors",
    "machine_busy",
)


def cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "n/a" if value is None else str(value)


def table(header: list[str], rows: list, keys: str = "") -> list[str]:
    """A markdown table; with keys, rows are records and keys (space-separated) their cells."""
    rows = [[row[key] for key in keys.split()] for row in rows] if keys else rows
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return [*lines, *("| " + " | ".join(map(cell, row)) + " |" for row in rows), ""]


def of(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r["kind"] == kind]


def aggregate(records: list[dict]) -> dict[str, list[dict]]:
    """The medians over the rounds of each (group, config, connections), by group."""
    runs: dict[tuple, list[dict]] = {}
    for r in of(records, "wrk"):
        runs.setdefault((r["group"], r["config"], r["connections"]), []).append(r)
    groups: dict[str, list[dict]] = {}
    for (group, *_), rounds in runs.items():
        row = rounds[0] | {
            m: statistics.median(v) if (v := [r[m] for r in rounds if r[m] is not None]) else None
            for m in METRICS
        }
        cpu = row["cpu_ms"]
        row["cpu_ms"] = {s: statistics.median(r["cpu_ms"].get(s, 0) for r in rounds) for s in cpu}
        rps = sorted(r["rps"] for r in rounds)
        row["range"] = f" ({cell(rps[0])} to {cell(rps[-1])})" if len(rps) > 1 else ""
        groups.setdefault(group, []).append(row)
    return groups


def wrk_table(rows: list[dict], vs_title: str, vs) -> list[str]:
    """One row a configuration; vs(row) fills the comparison column. CPU: what the stack's
    containers used during the run (from their cgroups) over the requests answered; the load
    generator is not counted, the stack's healthchecks and beat are."""
    lines = []
    for r in rows:
        errors = f"{r['non2xx']:.0f} non-2xx, {r['timeouts']:.0f} timeouts"
        if other := r["socket_errors"] - r["timeouts"]:
            errors += f", {other:.0f} other socket errors"
        cpu = r["cpu_ms"]
        parts = ", ".join(
            f"{cpu[s]:.2f} {s}"
            for s in ("web", "nginx", "db", "worker", "redis")
            if cpu.get(s, 0) >= 0.005
        )
        lines.append([r["label"], r["connections"], cell(r["rps"]) + r["range"], vs(r)])
        lines[-1] += [r["requests"], r["p50_ms"], r["p99_ms"], errors]
        lines[-1].append(f"{sum(cpu.values()):.2f} ({parts})")
        lines[-1].append(f"{r['machine_busy']:.0%}")
    header = ["configuration", "connections", "req/s (range over rounds)", vs_title, "answered"]
    header += ["p50 ms", "p99 ms", "errors", "CPU ms/request", "machine busy"]
    return table(header, lines)


def by_config(groups: dict, group: str, config: str, connections: int | None = None) -> dict | None:
    rows = [r for r in groups.get(group, []) if r["config"] == config]
    rows = [r for r in rows if connections is None or r["connections"] == connections]
    return rows[0] if rows else None


def total_cpu(row: dict) -> float:
    return sum(row["cpu_ms"].values())


def soak_verdict(soak: dict) -> tuple[bool, str]:
    """0 errors; web and worker memory grow < 10 % (first minute's sample to the last); Postgres
    connections and Redis memory flat: the second half's highest sample no more than 2
    connections, and 10 %, above the first half's (the first minutes include the warm-up:
    connections opened, the minute of finished task states Redis keeps)."""
    samples = soak["samples"]
    first, last, half = samples[0], samples[-1], max(len(samples) // 2, 1)
    errors = sum(s["errors"] for s in samples)
    growth = {
        service: last["memory_mb"][service] / first["memory_mb"][service] - 1
        for service in ("web", "worker")
    }

    def halves(key: str) -> tuple:
        return max(s[key] for s in samples[:half]), max(s[key] for s in samples[half:] or samples)

    connections, redis = halves("postgres_connections"), halves("redis_mb")
    ok = (
        errors == 0
        and all(g < 0.10 for g in growth.values())
        and connections[1] <= connections[0] + 2
        and redis[1] <= redis[0] * 1.10
    )
    text = (
        f"{errors} errors; web {growth['web']:+.1%}, worker {growth['worker']:+.1%}; Postgres "
        f"connections at most {connections[0]}, then {connections[1]}; Redis at most "
        f"{redis[0]:.1f}, then {redis[1]:.1f} MB"
    )
    return ok, text


def targets(records: list[dict]) -> list[list]:
    """Issue 11's table: each target, measured in this run, met or not."""
    groups, rows = aggregate(records), []

    def row(number, measure, goal, measured, met):
        verdict = {True: "met", False: "**not met**", None: "not measured"}.get(met)
        rows.append([number, measure, goal, measured, verdict or "not claimed: too short"])

    wsgi, asgi, naive = (by_config(groups, "json", f"{s}-nginx") for s in ("wsgi", "asgi", "naive"))
    if wsgi and asgi:
        ratio = total_cpu(asgi) / total_cpu(wsgi)
        web = asgi["cpu_ms"].get("web", 0) / wsgi["cpu_ms"].get("web", 1)
        row(
            "T1",
            "ASGI CPU a request, Postgres JSON view, vs WSGI",
            "≤ 1.3x",
            f"{ratio:.2f}x ({total_cpu(asgi):.2f} vs {total_cpu(wsgi):.2f} ms; "
            f"web alone {web:.2f}x)",
            ratio <= 1.3,
        )
    w500, a500 = by_config(groups, "wait", "wsgi", 500), by_config(groups, "wait", "asgi", 500)
    if w500 and a500:
        ratio = a500["rps"] / w500["rps"]
        row(
            "T2",
            "`/api/wait/?ms=100`, 500 connections: ASGI vs WSGI req/s",
            "≥ 10x, 0 timeouts (2 s)",
            f"{ratio:.1f}x ({a500['rps']:,.0f} vs {w500['rps']:,.0f} req/s), "
            f"{a500['timeouts']:.0f} ASGI timeouts",
            ratio >= 10 and a500["timeouts"] == 0,
        )
    nginx, django = by_config(groups, "static", "nginx"), by_config(groups, "static", "django")
    if nginx and django:
        ratio = nginx["rps"] / django["rps"]
        row(
            "T3",
            "hashed static file, nginx vs Django req/s",
            "≥ 20x",
            f"{ratio:.1f}x ({nginx['rps']:,.0f} vs {django['rps']:,.0f} req/s)",
            ratio >= 20,
        )
    for c in of(records, "celery"):
        ok = c["rt_p50_ms"] <= 10 and c["tasks_per_s"] >= 300
        row(
            "T4",
            f"Celery no-op task, enqueue → recorded done, in the network: {c['label']}",
            "p50 ≤ 10 ms; ≥ 300 tasks/s",
            f"p50 {c['rt_p50_ms']:.1f} ms; {c['tasks_per_s']:.0f} tasks/s",
            ok,
        )
    for stack in ("wsgi", "asgi"):
        post, read = by_config(groups, "post", stack), by_config(groups, "json", f"{stack}-nginx")
        if post and read:
            ratio = post["rps"] / read["rps"]
            row(
                "T5",
                f"`POST /api/tasks/` vs the Postgres read, {post['label']}",
                "≥ 0.5x",
                f"{ratio:.2f}x ({post['rps']:,.0f} vs {read['rps']:,.0f} req/s)",
                ratio >= 0.5,
            )
    if wsgi and naive:
        ratio = total_cpu(wsgi) / total_cpu(naive)
        row(
            "T6",
            "tuned WSGI CPU a request vs the naive baseline, DB view",
            "≤ 1.0x",
            f"{ratio:.2f}x ({total_cpu(wsgi):.2f} vs {total_cpu(naive):.2f} ms)",
            ratio <= 1.0,
        )
    for m in of(records, "memory"):
        if m["label"] != "naive baseline":
            total = sum(m["mb"].values())
            row(
                "T7",
                f"idle memory, all containers: {m['label']}",
                "≤ 450 MB",
                f"{total:.0f} MB (web {m['mb'].get('web', 0):.0f}, "
                f"worker {m['mb'].get('worker', 0):.0f})",
                total <= 450,
            )
    for image in of(records, "image"):
        if image.get("over_base"):
            row(
                "T7",
                "app image over its Python base",
                "≤ 80 MB",
                f"{image['mb']} MB",
                image["mb"] <= 80,
            )
    soaks = of(records, "soak")
    for soak in soaks:
        ok, text = soak_verdict(soak)
        minutes = len(soak["samples"])
        if minutes < 30:
            text += f" (a {minutes}-minute soak, not the 30 minutes the target asks for)"
            ok = "short" if ok else False
        row(
            "T8",
            f"soak at half capacity ({soak['rate']} req/s), {soak['label']}",
            "30 min: 0 errors; web, worker memory < +10 %; Postgres connections, Redis memory flat",
            text,
            ok,
        )
    if not soaks:
        row(
            "T8",
            "30-minute soak at half capacity",
            "0 errors, memory flat",
            "not run (bench/run.sh --soak 30)",
            None,
        )
    return rows


def bounds(records: list[dict]) -> list[str]:
    """For each target missed in this run: what the measurements say bounds it here."""
    groups, lines = aggregate(records), []
    cores = records[0]["cores"]

    def cpu_parts(cpu: dict) -> str:
        return ", ".join(
            f"{k} {v:.2f}" for k, v in sorted(cpu.items(), key=lambda i: -i[1]) if v >= 0.01
        )

    nginx, django = by_config(groups, "static", "nginx"), by_config(groups, "static", "django")
    if nginx and django and nginx["rps"] / django["rps"] < 20:
        lines.append(
            f"T3: nginx used {total_cpu(nginx):.2f} ms of the stack's CPU a request, Django "
            f"{total_cpu(django):.2f} ms ({total_cpu(django) / total_cpu(nginx):.0f}x as much); "
            f"the machine was {nginx['machine_busy']:.0%} busy during nginx's run: the load "
            "generator, Docker's bridge and the kernel's TCP path, on the same cores, take most of "
            f"it. At its own cost nginx alone would answer about "
            f"{cores * 1000 / total_cpu(nginx):,.0f} requests a second on {cores} cores; this "
            "machine cannot generate that load beside it."
        )
    for c in of(records, "celery"):
        if c["tasks_per_s"] < 300:
            cpu = sum(c["cpu_ms"].values())
            lines.append(
                f"T4 ({c['label']}): each task cost {cpu:.2f} ms of CPU over the stack's "
                f"containers ({cpu_parts(c['cpu_ms'])}; web is the probe enqueueing, from 8 "
                f"threads of one Python process), so {cores} cores allow at most about "
                f"{cores * 1000 / cpu:.0f} tasks a second if nothing else ran. The worker's part "
                "is Celery's prefork pool (the parent receives, dispatches and acknowledges each "
                "task late; the child runs it: 3 queries, the health check, the read and the "
                "one write, and one Redis round trip for its progress message)."
            )
    for stack in ("wsgi", "asgi"):
        post, read = by_config(groups, "post", stack), by_config(groups, "json", f"{stack}-nginx")
        if post and read and post["rps"] / read["rps"] < 0.5:
            lines.append(
                f"T5 ({post['label']}): a POST cost {total_cpu(post):.2f} ms of CPU "
                f"({cpu_parts(post['cpu_ms'])}), the read {total_cpu(read):.2f} ms: each POST "
                "also makes the worker run a task on the same cores. The CPU ratio, "
                f"{total_cpu(read) / total_cpu(post):.2f}, bounds the req/s ratio; the machine was "
                f"{post['machine_busy']:.0%} busy."
            )
    wsgi, naive = by_config(groups, "json", "wsgi-nginx"), by_config(groups, "json", "naive-nginx")
    if wsgi and naive and total_cpu(wsgi) > total_cpu(naive):
        lines.append(
            f"T6: tuned {cpu_parts(wsgi['cpu_ms'])}; naive {cpu_parts(naive['cpu_ms'])} (ms a "
            "request). The difference is within the spread between rounds: five sync worker "
            "processes instead of one share the same two cores with the load generator."
        )
    for m in of(records, "memory"):
        if m["label"] != "naive baseline" and sum(m["mb"].values()) > 450:
            lines.append(f"T7 ({m['label']}): {cpu_parts(m['mb'])} MB.")
    return lines


def markdown(records: list[dict]) -> str:
    meta = {key: value for r in of(records, "meta") for key, value in r.items()}
    groups, sections = aggregate(records), []
    if rows := groups.get("json"):
        path = re.sub(r"[0-9a-f-]{36}", "<id>", rows[0]["path"])
        sections += [
            f"## 1. JSON view reading Postgres: `GET {path}`",
            "",
            "Via nginx and direct to gunicorn: wrk in a container on the stack's frontend network. "
            "Published port: wrk on the host, through Docker's port proxy, which runs on the same "
            "cores (its CPU is not in the stack's containers, so not in the CPU column).",
            "",
        ]
        sections += wrk_table(
            rows, "vs tuned WSGI via nginx", lambda r: f"{r['rps'] / rows[0]['rps']:.2f}x"
        )
    if rows := groups.get("wait"):
        sections += [
            f"## 2. Wait-bound view: `GET {rows[0]['path']}`",
            "",
            "Each request waits 100 ms, so N connections allow at most N / 0.1 s requests a "
            "second (the wait-bound limit). Answered: responses within the run; p50/p99 cover "
            "them only (wrk counts those slower than its timeout as timeouts instead).",
            "",
            *wrk_table(rows, "share of limit", lambda r: f"{r['rps'] / r['connections'] / 10:.1%}"),
        ]
    if rows := groups.get("post"):
        sections += [
            "## 3. Enqueueing: `POST /api/tasks/`",
            "",
            "Each request inserts a row (committed) and publishes a Celery message; the worker "
            "runs the no-op tasks meanwhile, on the same cores (its CPU is in the worker column).",
            "",
            *wrk_table(
                rows,
                "vs the JSON read of the same stack",
                lambda r: (
                    f"{r['rps'] / by_config(groups, 'json', r['config'] + '-nginx')['rps']:.2f}x"
                ),
            ),
        ]
    celery_rows = [
        c
        | {
            "cpu": f"{sum(c['cpu_ms'].values()):.2f} ("
            + ", ".join(
                f"{v:.2f} {k}"
                for k, v in c["cpu_ms"].items()
                if k in ("web", "worker", "db", "redis")
            )
            + ")"
        }
        for c in of(records, "celery")
    ]
    sections += [
        "## 4. Celery: enqueue to recorded done, from inside the network",
        "",
        "bench/celery_probe.py in the web container: what the view does to enqueue (insert and "
        "commit the row, publish the message), then the task's `succeeded` event, which the "
        "worker publishes once it has recorded the run as done; one task at a time. Tasks/s: "
        "tasks enqueued at once by 8 threads, from the first enqueue to the last task's "
        "recorded finish. CPU: all the stack's containers over every task of the probe, counted "
        "from its first task (the probe's own start, in the web container, is left out).",
        "",
        *table(
            [
                "stack",
                "round trips",
                "p50 ms",
                "p99 ms",
                "tasks",
                "tasks/s",
                "enqueue/s",
                "CPU ms/task",
            ],
            celery_rows,
            "label round_trips rt_p50_ms rt_p99_ms tasks tasks_per_s enqueue_per_s cpu",
        ),
    ]
    if rows := groups.get("static"):
        sections += [
            "## 5. Static file: nginx vs Django",
            "",
            f"`{rows[0]['path']}`, {rows[0]['bytes']} bytes.",
            "",
        ]
        sections += wrk_table(rows, "vs nginx", lambda r: f"{r['rps'] / rows[0]['rps']:.2f}x")
    memory = of(records, "memory")
    services = list(dict.fromkeys(s for m in memory for s in m["mb"]))
    sections += [
        "## 6. Idle memory, start-up, rebuild, images",
        "",
        "Idle: each container's memory as `docker stats` counts it, 20 s after the stacks were "
        "healthy, before any load.",
        "",
        *table(
            ["stack", *services, "total"],
            [
                [m["label"], *(m["mb"].get(s, 0.0) for s in services), sum(m["mb"].values())]
                for m in memory
            ],
        ),
        "Cold: fresh volumes, so `up --wait` generates the secrets, initialises Postgres and "
        "applies the migrations. Rebuild: `docker compose build` of a copy of the tracked files "
        "with one line added to `app/demo/views.py`.",
        "",
        *table(["what", "seconds"], of(records, "timing"), "label seconds"),
        *table(["image", "MB"], of(records, "image"), "label mb"),
    ]
    for soak in of(records, "soak"):
        _, verdict = soak_verdict(soak)
        sections += [
            f"## Soak: {soak['label']}, {len(soak['samples'])} minute(s) at {soak['rate']} req/s",
            "",
            f"Half the {soak['capacity']:,.0f} req/s the JSON view reached via nginx in part 1; "
            "wrk "
            f"in the network, {soak['connections']} connections, each waiting between requests "
            "(bench/soak.lua); one request in ten enqueues a no-op task. Sampled after each "
            f"minute. {verdict}.",
            "",
            *table(
                [
                    "minute",
                    "req/s",
                    "p99 ms",
                    "errors",
                    "web MB",
                    "worker MB",
                    "db MB",
                    "redis MB",
                    "nginx MB",
                    "Postgres connections",
                    "Redis used MB",
                ],
                [
                    [
                        s["minute"],
                        s["rps"],
                        s["p99_ms"],
                        s["errors"],
                        *(
                            s["memory_mb"].get(k, 0.0)
                            for k in ("web", "worker", "db", "redis", "nginx")
                        ),
                        s["postgres_connections"],
                        s["redis_mb"],
                    ]
                    for s in soak["samples"]
                ],
            ),
        ]
    lines = [
        "# Benchmark: Django stack on one machine",
        "",
        f"Run {meta['date']} on {meta['cores']} cores ({meta['cpu']}), {meta['memory']} RAM, "
        f"{meta['kernel']}; the whole bench took {meta['total_seconds']} s, in one invocation of "
        "`bench/run.sh`.",
        "",
        "## Targets (issue 11), measured in this run",
        "",
        *table(["#", "measure", "target", "measured", ""], targets(records)),
        *(
            ["What bounds the targets not met, from this run's measurements:", ""]
            if bounds(records)
            else []
        ),
        *(f"- {line}" for line in bounds(records)),
        "",
        f"Load: wrk with {meta['cores']} threads, {meta['duration']} s a run after a "
        f"{meta['warmup']} s warm-up, 2 s timeout, from a container on each stack's frontend "
        f'network unless a row says "published port"; median of {meta["rounds"]} round(s) where '
        "a range is given. The load generator shares the cores with the stacks, and all three "
        "bench stacks run at once (the two not under load idle): compare ratios, not absolute "
        "numbers, across machines; CPU ms/request (the stack's containers, from their cgroups, "
        "over the requests answered; healthchecks and beat included, the load generator not) is "
        "less sensitive to a noisy machine than req/s. Machine busy: the share of both cores in "
        "use during a run, by anything (the stack, the load generator, Docker, the kernel, other "
        "work on the machine): near 100 %, the cores bound the run. Load average (1, 5, 15 "
        "min) at the start "
        f"{meta['load_start']}, at the end {meta['load_end']}; other containers running at the "
        f"start {meta['others_start']}, at the end {meta['others_end']}.",
        "",
        *table(
            ["component", "version or setting"],
            [(k, v) for c in of(records, "component") for k, v in c.items() if k != "kind"],
        ),
        *sections,
    ]
    if notes := of(records, "note"):
        lines += ["## Notes", "", *(f"- {n['text']}" for n in notes), ""]
    return "\n".join(lines)


def chart(records: list[dict], path: Path) -> None:
    """One panel a measurement: horizontal bars, stacked by service for CPU and memory; and,
    after a soak, a second figure of its samples over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def bars(rows: list[dict], value) -> list[tuple]:
        """(label, number or {part: number}) a bar; the wait-bound runs differ in connections."""
        wait = [f", c={r['connections']}" if r.get("group") == "wait" else "" for r in rows]
        return [(r["label"] + w, value(r)) for r, w in zip(rows, wait, strict=True)]

    groups, celery = aggregate(records), of(records, "celery")
    json_rows = groups.get("json", [])
    panels = {
        "1. Postgres JSON view, req/s": bars(json_rows, lambda r: r["rps"]),
        "1. JSON view, CPU ms/request by service": bars(json_rows, lambda r: r["cpu_ms"]),
        "2. /api/wait/?ms=100, req/s": bars(groups.get("wait", []), lambda r: r["rps"]),
        "3. POST /api/tasks/, req/s": bars(groups.get("post", []), lambda r: r["rps"]),
        "4. Celery enqueue to done, p50 and p99 ms": bars(
            celery, lambda c: {"p50": c["rt_p50_ms"], "to p99": c["rt_p99_ms"] - c["rt_p50_ms"]}
        ),
        "4. Celery, tasks/s": bars(celery, lambda c: c["tasks_per_s"]),
        "5. Static file, req/s": bars(groups.get("static", []), lambda r: r["rps"]),
        "6. Idle memory by service, MB": bars(of(records, "memory"), lambda m: m["mb"]),
    }
    fig, axes = plt.subplots(2, 4, figsize=(24, 10))
    fig.suptitle(f"Django stack benchmark, {records[0]['date']}, {records[0]['cores']} cores")
    for ax, (title, items) in zip(axes.flat, panels.items(), strict=True):
        ax.set_title(title, fontsize=10)
        if not items:
            continue
        stacks = [value if isinstance(value, dict) else {"": value} for _, value in items]
        left = [0.0] * len(items)
        for part in dict.fromkeys(key for stack in stacks for key in stack):
            widths = [stack.get(part, 0) for stack in stacks]
            ax.barh([label for label, _ in items], widths, left=left, label=part)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for y, total in enumerate(left):
            ax.text(total, y, f" {cell(total)}", va="center", fontsize=7)
        if len(stacks[0]) > 1:
            ax.legend(fontsize=7)
        ax.invert_yaxis()
        ax.margins(x=0.3)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    if soaks := of(records, "soak"):
        fig, axes = plt.subplots(1, 3, figsize=(18, 5))
        fig.suptitle("Soak at half capacity: one sample a minute")
        for soak in soaks:
            minutes = [s["minute"] for s in soak["samples"]]
            for service in ("web", "worker", "db"):
                axes[0].plot(
                    minutes,
                    [s["memory_mb"].get(service, 0) for s in soak["samples"]],
                    marker=".",
                    label=f"{soak['label']}: {service}",
                )
            axes[1].plot(
                minutes,
                [s["postgres_connections"] for s in soak["samples"]],
                marker=".",
                label=soak["label"],
            )
            axes[2].plot(
                minutes, [s["redis_mb"] for s in soak["samples"]], marker=".", label=soak["label"]
            )
        for ax, title in zip(
            axes, ("memory, MB", "Postgres connections", "Redis used memory, MB"), strict=True
        ):
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("minute")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path.with_name("results-soak.png"), dpi=100)


def main() -> None:
    results, out = Path(sys.argv[1]), Path(sys.argv[2])
    records = [json.loads(line) for line in results.read_text().splitlines()]
    text = markdown(records)
    try:
        chart(records, out / "results.png")
        text += "\n![benchmark chart](results.png)\n"
        if of(records, "soak"):
            text += "\n![soak chart](results-soak.png)\n"
    except ImportError:
        print("matplotlib not importable: no chart", file=sys.stderr)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(records, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
