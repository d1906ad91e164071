"""Summarize a bench run: parse wrk's and pgbench's output in OUT_DIR and print a table
(also written to bench/results/latest.md).

Usage: report.py OUT_DIR SCENARIO... ; reads OUT_DIR/wrk_<s>.txt, OUT_DIR/pgbench_<s>.txt and
the per-transaction logs OUT_DIR/pgb_<s>.* (pgbench -l), whose percentiles pgbench itself
does not print.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def _find(pattern: str, text: str, default: str | None = None) -> str:
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        if default is not None:
            return default
        raise ValueError(f"not found in tool output: {pattern!r}")
    return found.group(1)


def parse_wrk(text: str) -> dict[str, float | str]:
    socket_errors = _find(r"Socket errors: (.*)$", text, "none")
    return {
        "rps": float(_find(r"^Requests/sec:\s+([\d.]+)", text)),
        "p50": _ms(_find(r"^\s+50%\s+(\S+)", text)),
        "p99": _ms(_find(r"^\s+99%\s+(\S+)", text)),
        "requests": float(_find(r"^\s+(\d+) requests in", text)),
        # Our Lua counts statuses other than the expected one (wrk only counts non-2xx).
        "unexpected": float(_find(r"^BENCH unexpected=(\d+)", text)),
        "statuses": _find(r"^BENCH unexpected=\d+ statuses=(\S*)", text, ""),
        "sample": _find(r"^BENCH first_unexpected=(.*)$", text, ""),
        "socket_errors": socket_errors,
        "non2xx": float(_find(r"Non-2xx or 3xx responses: (\d+)", text, "0")),
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
    return {
        "tps": float(_find(r"^tps = ([\d.]+)", text)),
        "avg": float(_find(r"^latency average = ([\d.]+) ms", text)),
        "failed": float(_find(r"^number of failed transactions: (\d+)", text, "0")),
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
    }


def table(rows: list[tuple[str, dict, dict]]) -> str:
    head = [
        "scenario",
        "app req/s",
        "app p50 ms",
        "app p99 ms",
        "app errors",
        "app CPU ms/req",
        "raw tps",
        "raw avg ms",
        "raw p50 ms",
        "raw p99 ms",
        "app/raw",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, app, raw in rows:
        cells = [
            name.upper(),
            f"{app['rps']:.0f}",
            f"{app['p50']:.1f}",
            f"{app['p99']:.1f}",
            f"{app['unexpected']:.0f}",
            f"{app['cpu_ms']:.1f}" if "cpu_ms" in app else "-",
            f"{raw['tps']:.0f}",
            f"{raw['avg']:.1f}",
            f"{raw['p50']:.1f}",
            f"{raw['p99']:.1f}",
            f"{app['rps'] / raw['tps']:.2f}" if raw["tps"] else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows: list[tuple[str, dict, dict]]) -> list[str]:
    out = []
    for name, app, raw in rows:
        if app["unexpected"]:
            out.append(
                f"- {name.upper()}: {app['unexpected']:.0f} of {app['requests']:.0f} app answers "
                f"were not the expected status ({app['statuses']}); first: {app['sample']}"
            )
        if app["non2xx"]:
            out.append(f"- {name.upper()}: wrk counted {app['non2xx']:.0f} non-2xx answers")
        if app["socket_errors"] != "none":
            out.append(f"- {name.upper()}: wrk socket errors: {app['socket_errors']}")
        if raw["failed"]:
            out.append(f"- {name.upper()}: {raw['failed']:.0f} pgbench transactions failed")
    return out


def main() -> None:
    out, scenarios = Path(sys.argv[1]), sys.argv[2:]
    rows, loads = [], []
    for name in scenarios:
        app = parse_wrk((out / f"wrk_{name}.txt").read_text())
        raw = parse_pgbench(
            (out / f"pgbench_{name}.txt").read_text(), sorted(out.glob(f"pgb_{name}.*"))
        )
        rows.append((name, app, raw))
        cpu = out / f"cpu_{name}.txt"
        if cpu.exists():
            ticks, per_second = (int(x) for x in cpu.read_text().split())
            app["cpu_ms"] = ticks * 1000 / per_second / max(app["requests"], 1)
        load = out / f"load_{name}.txt"
        if load.exists():
            loads.append(f"{name} {load.read_text().strip()}")
    env = os.environ
    header = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; workers={env.get('WORKERS', '?')}, "
        f"guests={env.get('GUESTS', '?')}, duration={env.get('DURATION', '?')}s, "
        f"32 connections (wrk -c 32 -t 2; pgbench -c 32 -j 2 -M prepared), "
        f"redis={'yes' if env.get('REDIS_URL') else 'no'}, cores={os.cpu_count()}; "
        f"1-min load average at start {env.get('LOAD_AT_START', '?')}, "
        f"before each app run: {', '.join(loads) or '?'}"
    )
    body = "\n".join([header, "", table(rows), "", *notes(rows)]).rstrip() + "\n"
    print(body)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text("# MaxLoyalty load benchmark\n\n" + body)


if __name__ == "__main__":
    main()
