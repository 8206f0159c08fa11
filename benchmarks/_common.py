"""Shared helpers for the benchmark scripts (timing, machine description, JSON results)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"

if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` from the repo root or anywhere
    sys.path.insert(0, str(REPO))


def median(values):
    return statistics.median(values) if values else None


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cmd(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict:
    import duckdb
    import numpy
    import pandas
    import polars

    lscpu = {}
    for line in _cmd(["lscpu"]).splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache", "Hypervisor vendor"):
            lscpu[key.strip()] = value.strip()
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        from importlib.metadata import version

        import businesstimedelta  # noqa: F401

        btd = version("businesstimedelta")
    except Exception:  # pragma: no cover - optional
        btd = None
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": lscpu,
        "nproc": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "businesstimedelta": btd,
    }


def demo_month_reports(folder: Path, month: str, *, as_of: dt.datetime, own_policy: bool = False,
                       **export_args) -> list:
    """The customer view models of `month` from a seeded demo export written under `folder`
    (`write_demo_export(**export_args)`), imported and computed into folder/warehouse.duckdb.
    The policy is the default one, or with `own_policy` the export's sla-policy.yaml."""
    from connectors.csv_export import CsvExportSource
    from connectors.demo_export import write_demo_export
    from sla import warehouse
    from sla.policy import load_policy
    from sla.report_data.customer import build_customer_reports
    from sla.steps import compute_metrics, compute_month, import_source

    write_demo_export(folder / "export", as_of=as_of, **export_args)
    policy = load_policy(folder / "export" / "sla-policy.yaml") if own_policy else load_policy()
    con = warehouse.connect(folder / "warehouse.duckdb")
    try:
        import_source(con, CsvExportSource(folder / "export"), policy)
        compute_metrics(con, policy, as_of)
        compute_month(con, month)
        return build_customer_reports(con, policy, month)
    finally:
        con.close()


def save_results(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"
