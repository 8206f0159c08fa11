"""Benchmark: the whole pipeline at scale, the way `sla run` runs it (Dagster, in process).

    python benchmarks/pipeline_scale.py [--customers 5000] [--incidents 1000000] [--months 24]
                                         [--keep DIR] [--json PATH]

Writes a seeded demo export (by default 1M incidents over 5,000 customers and 24 months; not
timed), then calls `pipelines.orchestrate.run_all` — the code behind `sla run` — for the last
complete month and its year: import, `incident_sla`, `gold_reconciliation`, `monthly_sla`, every
customer PDF of the month, the Gold billing report of the year and the dashboard, each step a
Dagster materialization with its asset checks. Recorded per step (from the progress lines the
command prints): wall time, CPU seconds of the process tree (this process, the PDF workers and
their chromium processes; other work on the machine slows the wall time, not these) and peak
memory as the largest sum of PSS over the tree, sampled every second from /proc (so pages shared
between workers count once). The 1-minute load average is recorded too: the machine is shared.
Results go to benchmarks/results/pipeline_scale.json; the table is in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.customer_pdfs import _cpu_s, _pss_kib, _tree  # noqa: E402  (same /proc sampling)

AS_OF = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.timezone.utc)  # month 2026-10, billing year 2026
STEP = re.compile(r"^\[(\d+)/(\d+)\] (.*?)(: done in [\d.]+s(?: \(rendered \d+, reused \d+\))?| \.\.\.)$")


class StageSampler:
    """Peak PSS and CPU seconds of the process tree, attributed to the stage that is running.

    Reading smaps_rollup of ~25 processes is not free: at 0.2 s the sampler thread took ~20 % of
    one core during the PDF stage (measured in the first 5,000-customer run), hence 1 s."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.stage: str | None = None
        self.peak_kib: dict[str, int] = {}
        self.cpu_seen: dict[int, float] = {}
        self.load: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def tree_cpu_s(self) -> float:
        """CPU seconds of every process of the tree seen so far (ended ones keep their last value)."""
        for pid in _tree(os.getpid()):
            self.cpu_seen[pid] = max(self.cpu_seen.get(pid, 0.0), _cpu_s(pid))
        return sum(self.cpu_seen.values())

    def _run(self) -> None:
        ticks = 0
        while not self._stop.is_set():
            stage = self.stage
            pids = _tree(os.getpid())
            total = sum(_pss_kib(p) for p in pids)
            for pid in pids:
                self.cpu_seen[pid] = max(self.cpu_seen.get(pid, 0.0), _cpu_s(pid))
            if stage is not None:
                self.peak_kib[stage] = max(self.peak_kib.get(stage, 0), total)
                if ticks % max(1, round(1 / self.interval)) == 0:
                    self.load.setdefault(stage, []).append(os.getloadavg()[0])
            ticks += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--incidents", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "pipeline_scale.json")
    args = ap.parse_args(argv)

    from connectors.demo_export import write_demo_export
    from pipelines.orchestrate import run_all

    work = (args.keep or Path(tempfile.mkdtemp(prefix="bench-pipeline-scale-"))).resolve()
    if work.exists() and args.keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(work / "dagster")  # a throwaway instance, as `sla run` uses
    (work / "dagster").mkdir()
    shutil.copy(ROOT / "dagster.yaml", work / "dagster" / "dagster.yaml")
    try:
        t = time.perf_counter()
        counts = write_demo_export(work / "export", customers=args.customers, months=args.months,
                                   incidents=args.incidents, as_of=AS_OF, seed=2026)
        export_s = time.perf_counter() - t
        export_bytes = sum(p.stat().st_size for p in (work / "export").iterdir())
        print(f"demo export: {export_s:.0f}s, {counts}", file=sys.stderr)

        stages: dict[str, dict] = {}
        with StageSampler() as sampler:
            state = {"t": None, "cpu": None}

            def progress(line: str) -> None:
                print(f"  {time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)
                m = STEP.match(line)
                if not m:
                    return
                title = m.group(3)
                if m.group(4) == " ...":
                    state["t"], state["cpu"] = time.perf_counter(), sampler.tree_cpu_s()
                    sampler.stage = title
                else:
                    sampler.stage = None
                    stages[title] = {"wall_s": round(time.perf_counter() - state["t"], 1),
                                     "cpu_s": round(sampler.tree_cpu_s() - state["cpu"], 1)}

            started = time.perf_counter()
            outcome = run_all(export_dir=str(work / "export"), db_path=str(work / "warehouse.duckdb"),
                              out_dir=str(work / "out"), as_of=AS_OF, month=None, progress=progress)
            total_s = time.perf_counter() - started
        for title, row in stages.items():
            row["peak_memory_mib"] = round(sampler.peak_kib.get(title, 0) / 1024)
            loads = sampler.load.get(title) or [os.getloadavg()[0]]
            row["load_avg_mean"] = round(statistics.fmean(loads), 2)

        month = outcome.month
        pdfs = list((work / "out" / month / "customers").glob("*.pdf"))
        result = {
            "benchmark": "pipeline_scale",
            "date": dt.date.today().isoformat(),
            "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "input": {"customers": args.customers, "months_of_history": args.months,
                      "rows": counts, "export_mib": round(export_bytes / 2**20),
                      "as_of": AS_OF.isoformat(), "month": month},
            "demo_export_s_not_counted": round(export_s, 1),
            "stages": stages,
            "total_wall_s": round(total_s, 1),
            "peak_memory_mib": round(max(sampler.peak_kib.values(), default=0) / 1024),
            "customer_pdfs": len(pdfs),
            "summary": outcome.summary,
            "warnings": outcome.warnings[:5],
            "failed_checks": outcome.failed_checks,
            "warehouse_mib": round((work / "warehouse.duckdb").stat().st_size / 2**20),
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
