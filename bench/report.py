"""Results of scripts/bench.sh: wrk output parsing, result records, and the report.

    report.py wrk FILE KEY=VALUE...     one JSON line from wrk --latency output, plus the pairs
    report.py record KEY=VALUE... [-]   one JSON line from the pairs (and a JSON object on stdin)
    report.py render RESULTS --markdown FILE [--chart FILE] [--json FILE]
                                        the markdown report (also printed) and a PNG chart

RESULTS holds one JSON object a line, as the first two commands print them. A VALUE is read as
JSON when it parses (numbers, true), as a string otherwise. `wrk` and `record` use the standard
library only; `render` needs matplotlib for the chart (scripts/bench.sh runs it through uv).
"""

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
BASELINE_JSON = "wsgi-nginx"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
METRICS = (
    "rps",
    "p50_ms",
    "p99_ms",
    "requests",
    "non2xx",
    "socket_errors",
    "timeouts",
    "cpu_ms",
    "web_cpu_ms",
    "nginx_cpu_ms",
)


# --- wrk output --------------------------------------------------------------------------------


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * UNITS_MS[match[2]]


def parse_wrk(text: str) -> dict:
    """Requests/s, p50/p99 latency, non-2xx/3xx answers and socket errors from `wrk --latency`.

    wrk leaves requests slower than its --timeout out of the latency figures and counts them as
    timeout socket errors; the two lines on errors are printed only when there were some.
    """
    result: dict = {"non2xx": 0, "connect": 0, "read": 0, "write": 0, "timeouts": 0}
    if match := re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE):
        result["rps"] = float(match[1])
    else:
        raise ValueError("no Requests/sec line: did wrk run?")
    for pct in (50, 99):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.MULTILINE)
        result[f"p{pct}_ms"] = _duration_ms(match[1]) if match else None
    if match := re.search(r"^\s+(\d+) requests in ([\d.]+\w+), ", text, re.MULTILINE):
        result["requests"] = int(match[1])
        result["duration_s"] = round(_duration_ms(match[2]) / 1000, 2)
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        result["non2xx"] = int(match[1])
    pattern = r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
    if match := re.search(pattern, text):
        for key, value in zip(
            ("connect", "read", "write", "timeouts"), match.groups(), strict=True
        ):
            result[key] = int(value)
    if not result.get("requests"):  # nothing answered: wrk prints zeros, not latencies
        result["p50_ms"] = result["p99_ms"] = None
    result["socket_errors"] = sum(result[k] for k in ("connect", "read", "write", "timeouts"))
    result["errors"] = result["non2xx"] + result["socket_errors"]
    return result


def cpu_per_request(record: dict) -> dict:
    """CPU milliseconds the stack's containers spent per answered request (x_*_cpu_ns pairs)."""
    requests = record.get("requests") or 0
    result = {}
    for key, name in (("x_cpu_ns", "cpu_ms"), ("x_web_cpu_ns", "web_cpu_ms")):
        if requests and record.get(key):
            result[name] = round(record[key] / 1e6 / requests, 3)
    if requests and "x_nginx_cpu_ns" in record and "cpu_ms" in result:
        result["nginx_cpu_ms"] = round(record["x_nginx_cpu_ns"] / 1e6 / requests, 3)
    return result


def summary(r: dict) -> str:
    return (
        f"  {r.get('group', ''):6} {r.get('label', ''):40} c={r.get('connections', '?'):<4} "
        f"{r['rps']:9.1f} req/s  p50 {_ms(r['p50_ms']):>6} ms  p99 {_ms(r['p99_ms']):>6} ms  "
        f"errors {r['errors']}  CPU {_ms(r.get('cpu_ms'))} ms/req"
    )


def _instant(text: str) -> datetime:
    """Docker's RFC 3339 times carry nanoseconds; datetime takes microseconds."""
    text = re.sub(r"(\.\d{6})\d*", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text)


def timeline(containers: list[dict], since: float) -> str:
    """When each compose service was done after `since` (epoch s): exited 0, or first healthy."""
    done = []
    for container in containers:
        service = container["Config"]["Labels"].get("com.docker.compose.service", "?")
        state = container["State"]
        health = state.get("Health")
        if health:
            healthy = [p for p in health.get("Log", []) if p.get("ExitCode") == 0]
            if not healthy:
                continue
            at, what = _instant(healthy[0]["End"]), "healthy"
        elif state.get("Status") == "exited":
            at, what = _instant(state["FinishedAt"]), f"exited {state.get('ExitCode')}"
        else:
            at, what = _instant(state["StartedAt"]), "started"
        done.append((at.timestamp() - since, f"{service} {what}"))
    return ", ".join(f"{name} +{seconds:.1f} s" for seconds, name in sorted(done))


# --- records -----------------------------------------------------------------------------------


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def pairs(items: list[str]) -> dict:
    record = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        record[key] = _value(value)
    return record


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- aggregation -------------------------------------------------------------------------------


def aggregate(records: list[dict]) -> dict:
    """Median of each wrk metric over the rounds of one (group, config, connections)."""
    runs = defaultdict(list)
    for record in records:
        if record.get("kind") == "wrk":
            runs[(record["group"], record["config"], record["connections"])].append(record)
    table = defaultdict(list)
    for (group, _, _), rounds in runs.items():
        row = {k: rounds[0][k] for k in ("config", "label", "connections", "path")}
        row["rounds"] = len(rounds)
        for metric in METRICS:
            values = [r[metric] for r in rounds if r.get(metric) is not None]
            row[metric] = statistics.median(values) if values else None
        row["rps_range"] = (min(r["rps"] for r in rounds), max(r["rps"] for r in rounds))
        row["errors"] = (row["non2xx"] or 0) + (row["socket_errors"] or 0)
        row["extra"] = {k: v for k, v in rounds[0].items() if k.startswith("x_")}
        row["statuses"] = _statuses(rounds)
        table[group].append(row)
    return table


def _statuses(rounds: list[dict]) -> dict[str, int]:
    """Non-200 answers nginx logged ("500:3 499:10"), added up over the rounds."""
    counts: dict[str, int] = defaultdict(int)
    for record in rounds:
        for item in str(record.get("x_statuses") or "").split():
            code, _, count = item.partition(":")
            counts[code] += int(count)
    return dict(sorted(counts.items()))


def _by_kind(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r.get("kind") == kind]


def _meta(records: list[dict]) -> dict:
    meta: dict = {}
    for record in _by_kind(records, "meta"):
        meta |= {k: v for k, v in record.items() if k != "kind"}
    return meta


# --- markdown ----------------------------------------------------------------------------------


def _num(value, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _ms(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _rps(row: dict) -> str:
    """Median req/s, with the range over the rounds when there were several."""
    low, high = row["rps_range"]
    if row["rounds"] < 2:
        return _num(row["rps"])
    return f"{_num(row['rps'])} ({_num(low)} to {_num(high)})"


def _cpu(row: dict) -> str:
    """CPU ms a request: the whole stack, then web and nginx."""
    if row.get("cpu_ms") is None:
        return "n/a"
    return (
        f"{row['cpu_ms']:.2f} ({row.get('web_cpu_ms') or 0:.2f} web, "
        f"{row.get('nginx_cpu_ms') or 0:.2f} nginx)"
    )


def _errors(row: dict) -> str:
    """Non-2xx answers and socket errors; for the former, the codes nginx logged (all non-200
    ones, so also 499: a client, here wrk, that gave up waiting)."""
    if not row["errors"]:
        return "0"
    parts = []
    if row["non2xx"]:
        codes = ", ".join(f"{n} x {code}" for code, n in row.get("statuses", {}).items())
        parts.append(f"{_num(row['non2xx'])} non-2xx" + (f" (nginx: {codes})" if codes else ""))
    if row["timeouts"]:
        parts.append(f"{_num(row['timeouts'])} timeouts")
    other = (row["socket_errors"] or 0) - (row["timeouts"] or 0)
    if other:
        parts.append(f"{_num(other)} other socket errors")
    return f"{_num(row['errors'])}: {', '.join(parts)}"


def _header(meta: dict) -> list[str]:
    lines = ["# Benchmark: Django stack on one machine", ""]
    lines.append(
        f"Run {meta.get('date', '?')} on {meta.get('cores', '?')} cores "
        f"({meta.get('cpu', '?')}), {meta.get('memory', '?')} RAM, {meta.get('kernel', '?')}; "
        f"the whole bench took {meta.get('total_seconds', '?')} s."
    )
    lines.append("")
    lines.append("| component | version |")
    lines.append("|-----------|---------|")
    for key in (
        "docker",
        "compose",
        "wrk",
        "python",
        "django",
        "gunicorn",
        "uvicorn",
        "celery",
        "psycopg",
        "nginx",
        "postgres",
        "redis",
        "base_images",
        "workers",
        "commit",
    ):
        if key in meta:
            lines.append(f"| {key.replace('_', ' ')} | {meta[key]} |")
    lines.append("")
    lines.append(
        f"Load: wrk with {meta.get('wrk_threads', '?')} threads, {meta.get('duration', '?')} s a "
        f"run after a {meta.get('warmup', '?')} s warm-up, {meta.get('timeout', '?')} s timeout; "
        f"median of {meta.get('rounds', '?')} round(s) where stated, with the range over the "
        "rounds in brackets. The load generator shares the cores with the stack, and all three "
        "bench stacks run at once (the two not under load idle): the compared configurations ran "
        "interleaved in this one invocation, so compare ratios, not absolute numbers, across "
        "machines. CPU ms/request: CPU time the stack's containers (all of them; web; nginx) "
        "used during a run, from their cgroups, divided by the requests answered: less "
        "sensitive to a noisy machine than req/s; the load generator is not counted, the "
        "stack's background work (healthchecks, beat) is, which weighs on runs with few requests."
    )
    if "load_start" in meta:
        lines += [
            "",
            f"Machine load average (1, 5, 15 min) at the start: {meta['load_start']}, at the end: "
            f"{meta.get('load_end', '?')}; other containers running on it at the start: "
            f"{meta.get('other_containers', '?')}, at the end: "
            f"{meta.get('other_containers_end', '?')}.",
        ]
    lines.append("")
    return lines


def _json_section(rows: list[dict]) -> list[str]:
    base = next((r["rps"] for r in rows if r["config"] == BASELINE_JSON), None)
    first = rows[0]
    lines = [
        f"## 1. JSON view reading Postgres: `GET {re.sub(UUID, '<id>', first['path'])}`",
        "",
        f"{first['connections']} connections; median of {first['rounds']} round(s).",
        "",
        "| configuration | req/s (range) | vs tuned WSGI via nginx | p50 ms | p99 ms | errors "
        "| CPU ms/request |",
        "|---------------|------:|------------------------:|-------:|-------:|-------:"
        "|---------------:|",
    ]
    for row in rows:
        ratio = f"{row['rps'] / base:.2f}x" if base else "n/a"
        lines.append(
            f"| {row['label']} | {_rps(row)} | {ratio} | {_ms(row['p50_ms'])} "
            f"| {_ms(row['p99_ms'])} | {_errors(row)} | {_cpu(row)} |"
        )
    lines.append("")
    return lines


def _wait_section(rows: list[dict]) -> list[str]:
    ms = rows[0]["extra"].get("x_wait_ms", 100)
    lines = [
        f"## 2. Wait-bound view: `GET {rows[0]['path']}`",
        "",
        f"Each request waits {ms} ms, so N connections allow at most N / {ms / 1000:g} s "
        "requests a second (the wait-bound limit). Answered: responses within the run. p50/p99 "
        "cover answered requests only: wrk counts those slower than its timeout as timeout "
        "errors instead, and requests still waiting when the run ends count nowhere.",
        "",
        "| interface | connections | req/s | share of wait-bound limit | answered | p50 ms "
        "| p99 ms | errors | CPU ms/request |",
        "|-----------|------------:|------:|--------------------------:|---------:|-------:"
        "|-------:|-------:|---------------:|",
    ]
    for row in sorted(rows, key=lambda r: (r["connections"], r["config"])):
        limit = row["connections"] / (ms / 1000)
        lines.append(
            f"| {row['label']} | {row['connections']} | {_num(row['rps'])} "
            f"| {row['rps'] / limit:.1%} of {_num(limit)} | {_num(row['requests'])} "
            f"| {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | {_errors(row)} | {_cpu(row)} |"
        )
    lines.append("")
    return lines


def _static_section(rows: list[dict], notes: list[str]) -> list[str]:
    lines = ["## 3. Static file: nginx vs Django", ""]
    if rows:
        base = next((r["rps"] for r in rows if r["config"] == "nginx"), None)
        lines += [
            f"{rows[0]['connections']} connections; median of {rows[0]['rounds']} round(s).",
            "",
            "| served by | path | bytes | req/s (range) | vs nginx | p50 ms | p99 ms | errors "
            "| CPU ms/request |",
            "|-----------|------|------:|------:|---------:|-------:|-------:|-------:"
            "|---------------:|",
        ]
        for row in rows:
            ratio = f"{row['rps'] / base:.2f}x" if base else "n/a"
            lines.append(
                f"| {row['label']} | `{row['path']}` | {row['extra'].get('x_bytes', '?')} "
                f"| {_rps(row)} | {ratio} | {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} "
                f"| {_errors(row)} | {_cpu(row)} |"
            )
        lines.append("")
    lines += [f"- {note}" for note in notes]
    if notes:
        lines.append("")
    return lines


def _celery_section(records: list[dict]) -> list[str]:
    lines = [
        "## 4. Celery: enqueue to result",
        "",
        'Round trip: `POST /api/tasks/ {"seconds": 0}`, then the task\'s SSE stream '
        "(`/api/tasks/<id>/events/`) until its `succeeded` event, one task at a time, through "
        "nginx. Tasks/s: tasks enqueued at once by several clients, divided by the time from "
        "the first POST to the last task's recorded finish.",
        "",
        "| stack | round trips | p50 ms | p99 ms | tasks | tasks/s | enqueue req/s |",
        "|-------|------------:|-------:|-------:|------:|--------:|--------------:|",
    ]
    for r in records:
        lines.append(
            f"| {r['label']} | {r['round_trips']} | {_ms(r['rt_p50_ms'])} | {_ms(r['rt_p99_ms'])} "
            f"| {r['tasks']} ({r['clients']} clients) | {_num(r['tasks_per_s'], 1)} "
            f"| {_num(r['enqueue_per_s'])} |"
        )
    lines.append("")
    return lines


def _lifecycle_section(timings: list[dict], timelines: list[dict], images: list[dict]) -> list[str]:
    lines = [
        "## 5. Start-up, rebuild, images",
        "",
        "Cold: fresh volumes and built images, so `up --wait` generates the secrets, initialises "
        "Postgres and applies the migrations. Rebuild: `docker compose build` of a temporary "
        "copy of the tracked files after appending one line to `app/demo/views.py`, once the "
        "copy as it was had been built.",
        "",
        "| what | seconds |",
        "|------|--------:|",
    ]
    lines += [f"| {t['label']} | {_num(t['seconds'], 1)} |" for t in timings]
    if timelines:
        lines += [
            "",
            "When each service was done (exited 0, or first healthy), after `up` began:",
            "",
        ]
        lines += [f"- {t['label']}: {t['text']}" for t in timelines]
    lines += ["", "| image | size |", "|-------|-----:|"]
    lines += [f"| {i['label']} | {i['bytes'] / 1e6:,.0f} MB |" for i in images]
    lines.append("")
    return lines


def markdown(records: list[dict]) -> str:
    meta = _meta(records)
    table = aggregate(records)
    notes = [r["text"] for r in _by_kind(records, "note")]
    lines = _header(meta)
    if table.get("json"):
        lines += _json_section(table["json"])
    if table.get("wait"):
        lines += _wait_section(table["wait"])
    static_notes = [r["text"] for r in _by_kind(records, "note") if r.get("section") == "static"]
    lines += _static_section(table.get("static", []), static_notes)
    if celery := _by_kind(records, "celery"):
        lines += _celery_section(celery)
    lines += _lifecycle_section(
        _by_kind(records, "timing"), _by_kind(records, "timeline"), _by_kind(records, "image")
    )
    other_notes = [n for n in notes if n not in static_notes]
    if other_notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in other_notes] + [""]
    if meta.get("chart"):
        lines += [f"![benchmark chart]({meta['chart']})", ""]
    return "\n".join(lines)


# --- chart -------------------------------------------------------------------------------------


def _bars(ax, labels, values, title, unit, color="tab:blue", texts=None):
    positions = range(len(labels))
    ax.barh(list(positions), values, color=color)
    ax.set_yticks(list(positions), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(unit, fontsize=8)
    texts = texts or [f"{value:,.0f}" for value in values]
    for position, value, text in zip(positions, values, texts, strict=True):
        ax.text(value, position, f" {text}", va="center", fontsize=7)
    ax.margins(x=0.35)


def _cpu_bars(ax, rows: list[dict], title: str) -> None:
    """Stacked CPU ms a request: web, nginx, and the rest of the stack (Postgres, Redis...)."""
    positions = list(range(len(rows)))
    web = [r.get("web_cpu_ms") or 0 for r in rows]
    nginx = [r.get("nginx_cpu_ms") or 0 for r in rows]
    rest = [max(r["cpu_ms"] - w - n, 0) for r, w, n in zip(rows, web, nginx, strict=True)]
    ax.barh(positions, web, label="web", color="tab:blue")
    ax.barh(positions, nginx, left=web, label="nginx", color="tab:green")
    left = [w + n for w, n in zip(web, nginx, strict=True)]
    ax.barh(positions, rest, left=left, label="db, redis, other", color="tab:gray")
    ax.set_yticks(positions, [r["label"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("CPU ms per request", fontsize=8)
    for position, row in zip(positions, rows, strict=True):
        ax.text(row["cpu_ms"], position, f" {row['cpu_ms']:.2f}", va="center", fontsize=7)
    ax.margins(x=0.35)
    ax.legend(fontsize=7, loc="lower right")


def chart(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = _meta(records)
    table = aggregate(records)
    fig, axes = plt.subplots(2, 4, figsize=(21, 8.5))
    fig.suptitle(
        f"Django stack benchmark, {meta.get('date', '')}: {meta.get('cores', '?')} cores, "
        f"wrk {meta.get('duration', '?')} s runs (higher req/s is better)",
        fontsize=12,
    )
    if rows := table.get("json"):
        _bars(
            axes[0][0],
            [r["label"] for r in rows],
            [r["rps"] for r in rows],
            "1. JSON view reading Postgres",
            "req/s",
        )
    if rows := sorted(table.get("wait", []), key=lambda r: (r["connections"], r["config"])):
        ms = rows[0]["extra"].get("x_wait_ms", 100)
        labels = [f"{r['label']}, {r['connections']} conn" for r in rows]
        shares = [r["rps"] / (r["connections"] / (ms / 1000)) for r in rows]
        _bars(
            axes[0][1],
            labels,
            [r["rps"] for r in rows],
            f"2. /api/wait/?ms={ms}: req/s (share of wait-bound limit)",
            "req/s",
            "tab:orange",
            [f"{r['rps']:,.0f} ({share:.0%})" for r, share in zip(rows, shares, strict=True)],
        )
    if rows := table.get("static"):
        _bars(
            axes[0][2],
            [r["label"] for r in rows],
            [r["rps"] for r in rows],
            "3. Static file",
            "req/s",
            "tab:green",
        )
    else:
        axes[0][2].text(0.5, 0.5, "Django-served static\nnot measured", ha="center")
        axes[0][2].set_axis_off()
    if celery := _by_kind(records, "celery"):
        ax = axes[1][0]
        width = 0.38
        xs = range(len(celery))
        ax.bar([x - width / 2 for x in xs], [c["rt_p50_ms"] for c in celery], width, label="p50")
        ax.bar([x + width / 2 for x in xs], [c["rt_p99_ms"] for c in celery], width, label="p99")
        ax.set_xticks(list(xs), [f"{c['label']}\n{c['tasks_per_s']:.0f} tasks/s" for c in celery])
        ax.set_title("4. Celery round trip (lower is better)", fontsize=10)
        ax.set_ylabel("ms", fontsize=8)
        ax.legend(fontsize=8)
    if timings := _by_kind(records, "timing"):
        _bars(
            axes[1][1],
            [t["label"] for t in timings],
            [t["seconds"] for t in timings],
            "5. Start-up and rebuild (lower is better)",
            "seconds",
            "tab:purple",
        )
    if images := _by_kind(records, "image"):
        _bars(
            axes[1][2],
            [i["label"] for i in images],
            [i["bytes"] / 1e6 for i in images],
            "5. Image sizes",
            "MB",
            "tab:gray",
        )
    if rows := [r for r in table.get("json", []) if r.get("cpu_ms") is not None]:
        _cpu_bars(axes[0][3], rows, "1. JSON view: CPU per request")
    else:
        axes[0][3].set_axis_off()
    if rows := [r for r in table.get("static", []) if r.get("cpu_ms") is not None]:
        _cpu_bars(axes[1][3], rows, "3. Static file: CPU per request")
    else:
        axes[1][3].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# --- command line ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    wrk = commands.add_parser("wrk")
    wrk.add_argument("file", type=Path)
    wrk.add_argument("pairs", nargs="*")
    record = commands.add_parser("record")
    record.add_argument("pairs", nargs="*", help="KEY=VALUE, or - to merge a JSON object on stdin")
    timeline_command = commands.add_parser("timeline", help="`docker inspect` JSON on stdin")
    timeline_command.add_argument("--since", type=float, required=True)
    timeline_command.add_argument("pairs", nargs="*")
    render = commands.add_parser("render")
    render.add_argument("results", type=Path)
    render.add_argument("--markdown", type=Path, required=True)
    render.add_argument("--chart", type=Path)
    render.add_argument("--json", type=Path)
    args = parser.parse_args()

    if args.command == "wrk":
        result = {"kind": "wrk"} | pairs(args.pairs) | parse_wrk(args.file.read_text())
        result |= cpu_per_request(result)
        print(json.dumps(result))
        print(summary(result), file=sys.stderr)
    elif args.command == "timeline":
        text = timeline(json.load(sys.stdin), args.since)
        print(json.dumps({"kind": "timeline"} | pairs(args.pairs) | {"text": text}))
    elif args.command == "record":
        items = [p for p in args.pairs if p != "-"]
        stdin = json.load(sys.stdin) if "-" in args.pairs else {}
        print(json.dumps(pairs(items) | stdin))
    else:
        records = load(args.results)
        if args.chart:
            chart(records, args.chart)
            records.append({"kind": "meta", "chart": args.chart.name})
        text = markdown(records)
        args.markdown.write_text(text)
        if args.json:
            args.json.write_text(json.dumps(records, indent=1) + "\n")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
