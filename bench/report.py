"""Summarize a bench run: parse wrk's and pgbench's output of each measured run in
OUT_DIR/run<N>/ and print the table, the median of the runs for every figure (also
written to bench/results/latest.md, with each run's own figures below it).

Usage: report.py OUT_DIR. A run directory holds wrk_<s>.txt, cpu_<s>.txt (server CPU ticks
and ticks per second) and load_<s>.txt for the wrk scenarios (the app's and the floor's),
pgbench_<s>.txt and the per-transaction logs pgb_<s>.* (pgbench -l, whose percentiles
pgbench itself does not print) for the raw ones; OUT_DIR/verify.txt is the ledger check.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Figures = dict[str, Any]  # one scenario of one run, as parsed
Row = dict[str, float | str]  # one line of a table

RESULTS = Path(__file__).resolve().parent / "results"
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}

# Each hot path: its app scenario (wrk, and the same name raw with pgbench) and the floor
# call it is held against (bench/floor_app.py).
HOT_PATHS = (
    ("identify", "floor_identify"),
    ("sale", "floor_accrue"),
    ("pos_commit", "floor_accrue"),
)
FLOORS = (("floor_identify", "lookup", None), ("floor_accrue", "accrual", "accrue"))
RAW_FLOOR = "accrue"  # sql/accrue.sql: the floor's accrual sent raw


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found.group(1)) * _UNITS_MS[found.group(2)]


def _find(pattern: str, text: str, default: str | None = None) -> str:
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        if default is not None:
            return default
        raise ValueError(f"not found in tool output: {pattern!r}")
    return found.group(1)


def parse_wrk(text: str) -> Row:
    socket_errors = _find(r"Socket errors: (.*)$", text, "none")
    unexpected = float(_find(r"^BENCH unexpected=(\d+)", text))
    non2xx = float(_find(r"Non-2xx or 3xx responses: (\d+)", text, "0"))
    return {
        "rps": float(_find(r"^Requests/sec:\s+([\d.]+)", text)),
        "p50": _ms(_find(r"^\s+50%\s+(\S+)", text)),
        "p99": _ms(_find(r"^\s+99%\s+(\S+)", text)),
        "requests": float(_find(r"^\s+(\d+) requests in", text)),
        # Our Lua counts statuses other than the expected one (wrk only counts non-2xx).
        "unexpected": unexpected,
        "statuses": _find(r"^BENCH unexpected=\d+ statuses=(\S*)", text, ""),
        "sample": _find(r"^BENCH first_unexpected=(.*)$", text, ""),
        "socket_errors": socket_errors,
        "non2xx": non2xx,
        # Every request that did not get its expected answer: a wrong status (non-2xx ones
        # among them) or a connect/read/write error or timeout.
        "errors": max(unexpected, non2xx) + sum(int(n) for n in re.findall(r"\d+", socket_errors)),
    }


def _percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(share * len(sorted_values)) - 1))
    return sorted_values[rank]


def parse_pgbench(text: str, logs: list[Path]) -> dict[str, float]:
    # Log line: client_id transaction_no time_us script_no epoch epoch_us ("failed" if so).
    latencies = sorted(
        int(fields[2]) / 1000
        for log in logs
        for fields in (line.split() for line in log.read_text().splitlines())
        if len(fields) >= 3 and fields[2].isdigit()
    )
    failed = float(_find(r"^number of failed transactions: (\d+)", text, "0"))
    return {
        "tps": float(_find(r"^tps = ([\d.]+)", text)),
        "avg": float(_find(r"^latency average = ([\d.]+) ms", text)),
        "failed": failed,
        "errors": failed,
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
    }


def read_run(run: Path) -> dict[str, Figures]:
    """Every scenario measured in one run, by name."""
    wrk_names = {app for app, _ in HOT_PATHS} | {floor for floor, _, _ in FLOORS}
    raw_names = {app for app, _ in HOT_PATHS} | {RAW_FLOOR}
    found: dict[str, Figures] = {}
    for name in sorted(wrk_names):
        figures = parse_wrk((run / f"wrk_{name}.txt").read_text())
        ticks, per_second = (int(x) for x in (run / f"cpu_{name}.txt").read_text().split())
        figures["cpu_ms"] = ticks * 1000 / per_second / max(float(figures["requests"]), 1)
        figures["load"] = (run / f"load_{name}.txt").read_text().strip()
        found[name] = figures
    for name in sorted(raw_names):
        found[f"raw_{name}"] = parse_pgbench(
            (run / f"pgbench_{name}.txt").read_text(), sorted(run.glob(f"pgb_{name}.*"))
        )
    return found


def _ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom else float("nan")


def hot_path_rows(run: dict[str, Figures]) -> list[Row]:
    rows: list[Row] = []
    for name, floor_name in HOT_PATHS:
        app, raw, floor = run[name], run[f"raw_{name}"], run[floor_name]
        raw_floor = run[f"raw_{RAW_FLOOR}"]
        rows.append(
            {
                "name": name.upper(),
                "floor": {f: label for f, label, _ in FLOORS}[floor_name],
                **{f"app_{k}": app[k] for k in ("rps", "p50", "p99", "cpu_ms", "errors")},
                **{f"raw_{k}": raw[k] for k in ("tps", "p50", "p99", "errors")},
                **{f"floor_{k}": floor[k] for k in ("rps", "p50", "p99", "cpu_ms", "errors")},
                "app_raw": _ratio(app["rps"], raw["tps"]),
                "app_floor": _ratio(app["rps"], floor["rps"]),
                # The raw floor is an accrual: a lookup has none to be held against.
                "raw_raw_floor": (
                    _ratio(raw["tps"], raw_floor["tps"]) if floor_name == "floor_accrue" else ""
                ),
            }
        )
    return rows


def floor_rows(run: dict[str, Figures]) -> list[Row]:
    rows: list[Row] = []
    for name, label, raw_name in FLOORS:
        floor = run[name]
        raw = run[f"raw_{raw_name}"] if raw_name else {}
        rows.append(
            {
                "name": f"FLOOR {label.upper()}",
                **{k: floor[k] for k in ("rps", "p50", "p99", "cpu_ms", "errors")},
                **{f"raw_{k}": raw.get(k, "") for k in ("tps", "avg", "p50", "p99", "errors")},
                "floor_raw": _ratio(floor["rps"], raw["tps"]) if raw else "",
            }
        )
    return rows


def median_rows(runs: list[list[Row]]) -> list[Row]:
    """Row by row, the median of every figure over the runs (ratios: the median of each
    run's ratio, app and floor being measured minutes apart), errors added up."""
    out: list[Row] = []
    for rows in zip(*runs, strict=True):
        merged: Row = {}
        for key, first in rows[0].items():
            values = [row[key] for row in rows]
            if isinstance(first, str):
                merged[key] = first
            elif key.endswith("errors"):
                merged[key] = sum(float(v) for v in values)
            else:
                merged[key] = statistics.median(float(v) for v in values)
        out.append(merged)
    return out


def _num(digits: int) -> Callable[[float | str], str]:
    return lambda v: "-" if v == "" else f"{float(v):.{digits}f}"


def _errors(*keys: str) -> Callable[[Row], str]:
    return lambda row: "/".join("-" if row[k] == "" else f"{float(row[k]):.0f}" for k in keys)


_ONE = _num(1)
HOT_COLUMNS: list[tuple[str, Callable[[Row], str]]] = [
    ("scenario", lambda r: str(r["name"])),
    ("app req/s", lambda r: _num(0)(r["app_rps"])),
    ("app p50 ms", lambda r: _ONE(r["app_p50"])),
    ("app p99 ms", lambda r: _ONE(r["app_p99"])),
    ("app CPU ms/req", lambda r: _ONE(r["app_cpu_ms"])),
    ("raw tps", lambda r: _num(0)(r["raw_tps"])),
    ("raw p50 ms", lambda r: _ONE(r["raw_p50"])),
    ("raw p99 ms", lambda r: _ONE(r["raw_p99"])),
    ("floor", lambda r: str(r["floor"])),
    ("floor req/s", lambda r: _num(0)(r["floor_rps"])),
    ("floor p50 ms", lambda r: _ONE(r["floor_p50"])),
    ("floor p99 ms", lambda r: _ONE(r["floor_p99"])),
    ("floor CPU ms/req", lambda r: _ONE(r["floor_cpu_ms"])),
    ("errors app/raw/floor", _errors("app_errors", "raw_errors", "floor_errors")),
    ("app/raw", lambda r: _num(2)(r["app_raw"])),
    ("app/floor", lambda r: _num(2)(r["app_floor"])),
    ("raw/raw accrual", lambda r: _num(2)(r["raw_raw_floor"])),
]
FLOOR_COLUMNS: list[tuple[str, Callable[[Row], str]]] = [
    ("floor", lambda r: str(r["name"])),
    ("req/s", lambda r: _num(0)(r["rps"])),
    ("p50 ms", lambda r: _ONE(r["p50"])),
    ("p99 ms", lambda r: _ONE(r["p99"])),
    ("CPU ms/req", lambda r: _ONE(r["cpu_ms"])),
    ("raw tps", lambda r: _num(0)(r["raw_tps"])),
    ("raw avg ms", lambda r: _ONE(r["raw_avg"])),
    ("raw p50 ms", lambda r: _ONE(r["raw_p50"])),
    ("raw p99 ms", lambda r: _ONE(r["raw_p99"])),
    ("errors floor/raw", _errors("errors", "raw_errors")),
    ("floor/raw", lambda r: _num(2)(r["floor_raw"])),
]


def table(columns: list[tuple[str, Callable[[Row], str]]], rows: list[Row]) -> str:
    lines = [
        "| " + " | ".join(head for head, _ in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(cell(row) for _, cell in columns) + " |" for row in rows]
    return "\n".join(lines)


def notes(run_no: int, run: dict[str, Figures]) -> list[str]:
    out = []
    for name, figures in run.items():
        label = f"run {run_no} {name.upper()}"
        if name.startswith("raw_"):
            if figures["failed"]:
                out.append(f"- {label}: {figures['failed']:.0f} pgbench transactions failed")
            continue
        if figures["unexpected"]:
            out.append(
                f"- {label}: {figures['unexpected']:.0f} of {figures['requests']:.0f} answers "
                f"were not the expected status ({figures['statuses']}); "
                f"first: {figures['sample']}"
            )
        if figures["non2xx"]:
            out.append(f"- {label}: wrk counted {figures['non2xx']:.0f} non-2xx answers")
        if figures["socket_errors"] != "none":
            out.append(f"- {label}: wrk socket errors: {figures['socket_errors']}")
    return out


def loads(run: dict[str, Figures]) -> str:
    """The machine's load before each HTTP measurement, in the order they ran."""
    order = ("identify", "floor_identify", "sale", "floor_accrue", "pos_commit")
    return ", ".join(f"{name} {run[name]['load']}" for name in order)


def main() -> None:
    out = Path(sys.argv[1])
    run_dirs = sorted(out.glob("run*"), key=lambda p: int(p.name.removeprefix("run")))
    if not run_dirs:
        sys.exit(f"report: no run directories in {out}")
    runs = [read_run(d) for d in run_dirs]
    hot = [hot_path_rows(r) for r in runs]
    floors = [floor_rows(r) for r in runs]
    env = os.environ
    header = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; workers={env.get('WORKERS', '?')}, "
        f"guests={env.get('GUESTS', '?')}, duration={env.get('DURATION', '?')}s "
        f"(warm-up {env.get('WARMUP', '?')}s), 32 connections (wrk -c 32 -t 2; "
        f"pgbench -c 32 -j 2 -M prepared), redis={'yes' if env.get('REDIS_URL') else 'no'}, "
        f"cores={os.cpu_count()}; 1-min load average at start {env.get('LOAD_AT_START', '?')}"
    )
    what = (
        f"The median of {len(runs)} runs for every figure (ratios: of each run's); errors are "
        "the total over the runs."
        if len(runs) > 1
        else "One run."
    )
    verify_file = out / "verify.txt"
    verify = verify_file.read_text().strip() if verify_file.exists() else "not run"
    summary = [
        header,
        "",
        what,
        "",
        table(HOT_COLUMNS, median_rows(hot)),
        "",
        table(FLOOR_COLUMNS, median_rows(floors)),
        "",
        *[note for n, run in enumerate(runs, 1) for note in notes(n, run)],
        f"- ledger verify: {verify}",
    ]
    summary += [
        f"- {f'run {n}: ' if len(runs) > 1 else ''}1-min load average before each wrk run: "
        f"{loads(run)}"
        for n, run in enumerate(runs, 1)
    ]
    body = "\n".join(summary).rstrip() + "\n"
    print(body)
    per_run = []
    if len(runs) > 1:
        for n in range(len(runs)):
            per_run += [f"## Run {n + 1}", "", table(HOT_COLUMNS, hot[n]), ""]
            per_run += [table(FLOOR_COLUMNS, floors[n]), ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(
        "# MaxLoyalty load benchmark\n\n" + body + "\n" + "\n".join(per_run).rstrip() + "\n"
    )


if __name__ == "__main__":
    main()
