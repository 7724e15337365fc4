"""The report of bench/run.sh: python3 bench/report.py RESULTS OUTDIR

Reads the JSON lines bench/measure.py printed; writes OUTDIR/results.md (and prints it),
results.json, and results.png when matplotlib can be imported (run.sh runs this through uv).
"""

import json
import re
import statistics
import sys
from pathlib import Path

METRICS = ("rps", "requests", "p50_ms", "p99_ms", "non2xx", "timeouts", "socket_errors")


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
        parts = ", ".join(f"{cpu.get(s, 0):.2f} {s}" for s in ("web", "nginx", "db"))
        lines.append([r["label"], r["connections"], cell(r["rps"]) + r["range"], vs(r)])
        lines[-1] += [r["requests"], r["p50_ms"], r["p99_ms"], errors]
        lines[-1].append(f"{sum(cpu.values()):.2f} ({parts})")
    header = ["configuration", "connections", "req/s (range over rounds)", vs_title, "answered"]
    return table([*header, "p50 ms", "p99 ms", "errors", "CPU ms/request"], lines)


def markdown(records: list[dict]) -> str:
    meta = {key: value for r in of(records, "meta") for key, value in r.items()}
    groups, sections = aggregate(records), []
    if rows := groups.get("json"):
        path = re.sub(r"[0-9a-f-]{36}", "<id>", rows[0]["path"])
        sections += [f"## 1. JSON view reading Postgres: `GET {path}`", ""]
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
    if rows := groups.get("static"):
        files = ", ".join(f"`{r['path']}` ({r['bytes']} bytes) from {r['config']}" for r in rows)
        sections += ["## 3. Static file: nginx vs Django", "", f"{files}.", ""]
        sections += wrk_table(rows, "vs nginx", lambda r: f"{r['rps'] / rows[0]['rps']:.2f}x")
    lines = [
        "# Benchmark: Django stack on one machine",
        "",
        f"Run {meta['date']} on {meta['cores']} cores ({meta['cpu']}), {meta['memory']} RAM, "
        f"{meta['kernel']}; the whole bench took {meta['total_seconds']} s. Load: wrk with "
        f"{meta['cores']} threads, {meta['duration']} s a run after a {meta['warmup']} s "
        f"warm-up, 2 s timeout; median of {meta['rounds']} round(s) where a range is given. The "
        "load generator shares the cores with the stacks, and all three bench stacks run at once "
        "(the two not under load idle): compare ratios, not absolute numbers, across machines; "
        "CPU ms/request is less sensitive to a noisy machine than req/s. Load average (1, 5, 15 "
        f"min) at the start {meta['load_start']}, at the end {meta['load_end']}; other "
        f"containers running at the start {meta['others_start']}, at the end {meta['others_end']}.",
        "",
        *table(
            ["component", "version or setting"],
            [(k, v) for c in of(records, "component") for k, v in c.items() if k != "kind"],
        ),
        *sections,
        "## 4. Celery: enqueue to result",
        "",
        'Round trip: `POST /api/tasks/ {"seconds": 0}`, then the task\'s event stream until its '
        "`succeeded` event, reconnecting after the `retry` a stream that ends asks for, as a "
        "browser does (under WSGI a stream is one event: the browser polls every second); one "
        "task at a time, through nginx. Tasks/s: tasks enqueued at once by 8 clients, over the "
        "time from the first POST to the last task's recorded finish.",
        "",
        *table(
            ["stack", "round trips", "p50 ms", "p99 ms", "tasks", "tasks/s", "enqueue/s"],
            of(records, "celery"),
            "label round_trips rt_p50_ms rt_p99_ms tasks tasks_per_s enqueue_per_s",
        ),
        "## 5. Start-up, rebuild, images",
        "",
        "Cold: fresh volumes, so `up --wait` generates the secrets, initialises Postgres and "
        "applies the migrations. Rebuild: `docker compose build` of a copy of the tracked files "
        "with one line added to `app/demo/views.py`.",
        "",
        *table(["what", "seconds"], of(records, "timing"), "label seconds"),
        *table(["image", "MB"], of(records, "image"), "label mb"),
    ]
    if notes := of(records, "note"):
        lines += ["## Notes", "", *(f"- {n['text']}" for n in notes), ""]
    return "\n".join(lines)


def chart(records: list[dict], path: Path) -> None:
    """One panel a measurement: horizontal bars, stacked by service for CPU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def bars(rows: list[dict], value) -> list[tuple]:
        """(label, number or {part: number}) a bar; the wait-bound runs differ in connections."""
        wait = [f", c={r['connections']}" if r.get("group") == "wait" else "" for r in rows]
        return [(r["label"] + w, value(r)) for r, w in zip(rows, wait, strict=True)]

    groups, celery = aggregate(records), of(records, "celery")
    titles = {"json": "1. JSON view", "wait": "2. /api/wait/?ms=100", "static": "3. Static file"}
    panels = {f"{t}, req/s": bars(groups.get(g, []), lambda r: r["rps"]) for g, t in titles.items()}
    cpu_rows = groups.get("json", []) + groups.get("static", [])
    panels["1 and 3. CPU ms/request by service"] = bars(cpu_rows, lambda r: r["cpu_ms"])
    panels["4. Celery round trip p50 and p99, ms"] = bars(
        celery, lambda c: {"p50": c["rt_p50_ms"], "to p99": c["rt_p99_ms"] - c["rt_p50_ms"]}
    )
    panels["4. Celery, tasks/s"] = bars(celery, lambda c: c["tasks_per_s"])
    panels["5. Start-up and rebuild, s"] = bars(of(records, "timing"), lambda t: t["seconds"])
    panels["5. Image sizes, MB"] = bars(of(records, "image"), lambda i: i["mb"])
    fig, axes = plt.subplots(2, 4, figsize=(22, 9))
    fig.suptitle(f"Django stack benchmark, {records[0]['date']}, {records[0]['cores']} cores")
    for ax, (title, items) in zip(axes.flat, panels.items(), strict=True):
        ax.set_title(title, fontsize=10)
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


def main() -> None:
    results, out = Path(sys.argv[1]), Path(sys.argv[2])
    records = [json.loads(line) for line in results.read_text().splitlines()]
    text = markdown(records)
    try:
        chart(records, out / "results.png")
        text += "\n![benchmark chart](results.png)\n"
    except ImportError:
        print("matplotlib not importable: no chart", file=sys.stderr)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(records, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
