"""Benchmark: the monthly customer compliance PDFs of 1,000 customers, one month, 2 cores.

    python benchmarks/customer_pdfs.py [--customers 1000] [--months 12] [--cores 2]
                                        [--workers N] [--out DIR] [--json PATH]
    python benchmarks/customer_pdfs.py --cpu-per-pdf [--runs 5] [--code DIR] [--json PATH]

Builds a seeded demo export (customers x months of history, so every report has a full
12-month trend), runs the domain pipeline into a fresh DuckDB file, builds the view models
(`sla.report_data.customer.build_customer_reports`) and renders every customer of the last
complete month with `reports.batch.write_customer_reports` (the code the
`customer_reports` asset runs): a process pool, one long-lived kaleido/chromium per worker.

Measured: total wall time (view models + rendering + writing), per-report time (median,
p90), the share of the per-report time spent in kaleido (charts), Jinja (HTML) and
WeasyPrint (layout + PDF), timed with time.perf_counter around each stage in the workers,
and peak memory: the largest sum of PSS (proportional set size, so shared pages count
once) over this process and all its descendants (workers and their chromium processes),
sampled every 0.2 s from /proc, with the CPU seconds of the whole tree split into python
(main + workers) and chromium (kaleido), each report's worker and chromium CPU seconds (from
the workers), and the 1-minute load average sampled every second during the run (other
work on the machine slows the wall time, not the CPU seconds). The process is pinned to
`--cores` CPUs (sched_setaffinity, inherited by the workers and chromium). Results go to benchmarks/results/customer_pdfs.json.

`--cpu-per-pdf` (issue 18) measures CPU seconds per PDF instead, on a load-independent basis:
the same export, 12 customers at fixed quantiles of report size (incidents + carried over +
explanations: the smallest, the 10th ... 90th percentile, the 97th and the largest), each
rendered `--runs` times in this one process pinned to one CPU, after a warm-up, exactly as a
batch worker renders (`reports.batch.render_pdf_timed`); per PDF its process CPU seconds and
its chromium's (from /proc), median per customer over the runs. `--code DIR` imports
`reports` and `sla` from another checkout (e.g. `git worktree add /tmp/before <commit>`), so
the same script measures before and after on the same customers; run both at once on two
CPUs (`--cpu N`) to expose them to the same machine load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import demo_month_reports  # noqa: E402


# --------------------------------------------------------------------------- memory sampling
def _children(pid: int) -> list[int]:
    """Children of every thread of `pid` (chromium is started from a worker's thread)."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(p) for p in fh.read().split()]
        except OSError:
            pass
    return out


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (its own threads, not its children)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


class PeakMemory:
    """Peak of sum(PSS) over the process tree, and the tree's CPU seconds, sampled in a thread.

    CPU: the last value seen per process, summed (a process that ends between two samples
    loses at most one interval). CPU seconds / cores = the wall time on an idle machine.
    """

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak_kib = 0
        self.peak_processes = 0
        self.cpu: dict[int, float] = {}
        self.kind: dict[int, str] = {}  # pid -> 'chromium' or 'python'
        self.load: list[float] = []  # 1-minute load average, sampled every second
        self._base_cpu = _cpu_s(os.getpid())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        ticks = 0
        while not self._stop.is_set():
            pids = _tree(me)
            for p in pids:
                self.cpu[p] = max(self.cpu.get(p, 0.0), _cpu_s(p))
                if p not in self.kind:
                    self.kind[p] = _kind(p)
            if ticks % max(1, round(1 / self.interval)) == 0:
                self.load.append(os.getloadavg()[0])
            ticks += 1
            total = sum(_pss_kib(p) for p in pids)
            if total > self.peak_kib:
                self.peak_kib, self.peak_processes = total, len(pids)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.cpu[os.getpid()] = _cpu_s(os.getpid())

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values()) - self._base_cpu

    def cpu_seconds_of(self, kind: str) -> float:
        own = self._base_cpu if kind == "python" else 0.0
        return sum(v for p, v in self.cpu.items() if self.kind.get(p, "python") == kind) - own


def _kind(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            exe = fh.read().split(b"\0", 1)[0]
    except OSError:
        return "python"
    return "chromium" if b"chrom" in exe else "python"


# --------------------------------------------------------------------------- benchmark
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--cores", type=int, default=2, help="CPUs to pin the benchmark to")
    ap.add_argument("--workers", type=int, default=None, help="render processes (default: cores)")
    ap.add_argument("--out", type=Path, default=None, help="PDF folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "customer_pdfs.json")
    ap.add_argument("--cpu-per-pdf", action="store_true",
                    help="CPU seconds per PDF for 12 sample customers (see the docstring)")
    ap.add_argument("--runs", type=int, default=5, help="--cpu-per-pdf: renders per customer")
    ap.add_argument("--cpu", type=int, default=None, help="--cpu-per-pdf: the CPU to pin to")
    ap.add_argument("--code", type=Path, default=None,
                    help="--cpu-per-pdf: import reports/sla from this checkout")
    args = ap.parse_args(argv)
    if args.cpu_per_pdf:
        return cpu_per_pdf(args)

    available = sorted(os.sched_getaffinity(0))
    cores = available[: args.cores]
    os.sched_setaffinity(0, cores)  # inherited by the workers and their chromium processes
    workers = args.workers or len(cores)

    from connectors.csv_export import CsvExportSource
    from connectors.demo_export import write_demo_export
    from reports.batch import write_customer_reports
    from sla import warehouse
    from sla.months import last_complete_month
    from sla.policy import load_policy
    from sla.report_data.customer import build_customer_reports
    from sla.steps import compute_metrics, compute_month, import_source

    as_of = dt.datetime(2026, 4, 1, 6, 0, tzinfo=dt.timezone.utc)
    policy = load_policy()
    month = last_complete_month(as_of, policy.calendar.tz)
    with tempfile.TemporaryDirectory(prefix="bench-customer-pdfs-") as tmp:
        tmp = Path(tmp)
        out = args.out or tmp / "out"
        t = time.perf_counter()
        counts = write_demo_export(tmp / "export", customers=args.customers, months=args.months,
                                   as_of=as_of)
        con = warehouse.connect(tmp / "warehouse.duckdb")
        import_source(con, CsvExportSource(tmp / "export"), policy)
        compute_metrics(con, policy, as_of)
        compute_month(con, month)
        setup_s = time.perf_counter() - t
        print(f"setup (demo export + warehouse): {setup_s:.1f}s, {counts}", file=sys.stderr)

        load_before = os.getloadavg()
        with PeakMemory() as mem:
            started = time.perf_counter()
            reports = build_customer_reports(con, policy, month)
            con.close()
            viewmodels_s = time.perf_counter() - started

            def progress(done: int, total: int) -> None:
                if done % 100 == 0 or done == total:
                    print(f"  {done}/{total} PDFs, {time.perf_counter() - started:.0f}s",
                          file=sys.stderr)

            written = write_customer_reports(reports, out, month, workers=workers,
                                             progress=progress)
            total_s = time.perf_counter() - started

        r = written.rendered
        per_report = [x.total_s for x in r]
        stages = {"kaleido": sum(x.charts_s for x in r), "jinja": sum(x.html_s for x in r),
                  "weasyprint": sum(x.pdf_s for x in r)}
        busy = sum(stages.values())
        incidents = sum(len(vm.incidents) for vm in reports)
        pages_sample = None
        try:
            from pypdf import PdfReader
            pages_sample = statistics.median(len(PdfReader(p).pages) for p in written.paths[:50])
        except Exception:  # pypdf is a test extra
            pass
        result = {
            "benchmark": "customer_pdfs",
            "date": dt.date.today().isoformat(),
            "machine": {"cpus_used": len(cores), "cpus_available": len(available),
                        "python": platform.python_version(), "platform": platform.platform()},
            "input": {"customers": args.customers, "months_of_history": args.months,
                      "month": month, "as_of": as_of.isoformat(),
                      "reports": len(reports), "incidents_in_month": incidents,
                      "median_pages_first_50": pages_sample},
            "workers": workers,
            "wall_s": {"total": round(total_s, 1), "view_models": round(viewmodels_s, 2),
                       "render_and_write": round(written.wall_s, 1),
                       "setup_not_counted": round(setup_s, 1)},
            "per_report_s": {
                "median": round(statistics.median(per_report), 3),
                "p90": round(sorted(per_report)[int(0.9 * (len(per_report) - 1))], 3),
                "max": round(max(per_report), 3),
                "median_kaleido": round(statistics.median(x.charts_s for x in r), 3),
                "median_jinja": round(statistics.median(x.html_s for x in r), 4),
                "median_weasyprint": round(statistics.median(x.pdf_s for x in r), 3),
            },
            "throughput_reports_per_s": round(len(r) / total_s, 2),
            "share_of_render_time": {k: round(v / busy, 3) for k, v in stages.items()},
            "stage_seconds_summed_over_workers": {k: round(v, 1) for k, v in stages.items()},
            "cpu_seconds_process_tree": round(mem.cpu_seconds, 1),
            "cpu_seconds_by_process": {"python (main + workers)": round(mem.cpu_seconds_of("python"), 1),
                                       "chromium (kaleido)": round(mem.cpu_seconds_of("chromium"), 1)},
            "cpu_per_report_s": {
                "mean_total": round(mem.cpu_seconds / max(1, len(r)), 3),
                "median_worker_python": round(statistics.median(x.cpu_s for x in r), 3),
                "median_chromium": round(statistics.median(x.chromium_cpu_s for x in r), 3),
            },
            "share_of_worker_cpu": {
                "kaleido (chromium)": round(sum(x.chromium_cpu_s for x in r)
                                            / max(1e-9, sum(x.cpu_s + x.chromium_cpu_s for x in r)), 3),
                "python (WeasyPrint, Jinja, plotly, writing)": round(
                    sum(x.cpu_s for x in r) / max(1e-9, sum(x.cpu_s + x.chromium_cpu_s for x in r)), 3),
            },
            "idle_machine_estimate_s": round(mem.cpu_seconds / len(cores), 1),
            "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "load_average_during": {"mean": round(statistics.fmean(mem.load), 2) if mem.load else None,
                                    "max": round(max(mem.load), 2) if mem.load else None},
            "peak_memory_mib": round(mem.peak_kib / 1024),
            "peak_memory_processes": mem.peak_processes,
            "pdf_bytes_median": int(statistics.median(x.bytes for x in r)),
            "pdf_bytes_total": sum(x.bytes for x in r),
            "target_total_s": 600,
            "meets_target": total_s < 600,
        }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


def _pages(pdf: bytes) -> int | None:
    try:
        import io

        from pypdf import PdfReader
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except Exception:  # noqa: BLE001 - pypdf is a test extra
        return None


def size_quantile_picks(customers: int, months: int, tmp: Path):
    """The 12 customers `--cpu-per-pdf` renders: a seeded demo export (`customers` x `months`)
    computed into a DuckDB file under `tmp`, its customer reports of the last complete month
    ordered by size (incidents + carried over + explanations), picked at fixed quantiles (the
    smallest, the 10th ... 90th percentile, the 97th and the largest). Returns (picks, size)."""
    from sla.months import last_complete_month
    from sla.policy import load_policy

    as_of = dt.datetime(2026, 4, 1, 6, 0, tzinfo=dt.timezone.utc)
    month = last_complete_month(as_of, load_policy().calendar.tz)
    reports = demo_month_reports(tmp, month, as_of=as_of, customers=customers, months=months)

    def size(vm):
        return len(vm.incidents) + len(vm.carried_over) + len(vm.explanations)

    ordered = sorted(reports, key=lambda vm: (size(vm), vm.customer.id))
    quantiles = (0, .1, .2, .3, .4, .5, .6, .7, .8, .9, .97, 1)
    return [ordered[int(q * (len(ordered) - 1))] for q in quantiles], size


def cpu_per_pdf(args) -> int:
    if args.code:
        sys.path.insert(0, str(args.code.resolve()))
    cpu = args.cpu if args.cpu is not None else sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, [cpu])  # chromium inherits it

    from reports import batch, charts, render

    with tempfile.TemporaryDirectory(prefix="bench-cpu-per-pdf-") as tmp:
        picks, size = size_quantile_picks(args.customers, args.months, Path(tmp))
    charts._ensure_server()  # noqa: SLF001 - as a batch worker's initializer does
    render.report_style()
    for vm in picks[:3]:
        batch.render_pdf_timed(vm)
    load_before = os.getloadavg()[0]
    runs: dict[str, list] = {vm.customer.id: [] for vm in picks}
    pages: dict[str, int] = {}
    for k in range(args.runs):
        for vm in picks:
            cpu0, chromium0 = time.process_time(), batch.children_cpu_s()
            pdf, *_ = batch.render_pdf_timed(vm)
            cpu1, chromium1 = time.process_time(), batch.children_cpu_s()
            runs[vm.customer.id].append((cpu1 - cpu0, max(0.0, chromium1 - chromium0)))
            if k == 0:
                pages[vm.customer.id] = _pages(pdf)
    per = {}
    for vm in picks:
        r = runs[vm.customer.id]
        per[vm.customer.id] = {
            "report_size": size(vm), "pages": pages[vm.customer.id],
            "worker_cpu_s": round(statistics.median(x[0] for x in r), 3),
            "chromium_cpu_s": round(statistics.median(x[1] for x in r), 3),
            "total_cpu_s": round(statistics.median(x[0] + x[1] for x in r), 3),
        }
    totals = [d["total_cpu_s"] for d in per.values()]
    result = {
        "benchmark": "customer_pdfs --cpu-per-pdf",
        "date": dt.date.today().isoformat(),
        "code": str(args.code or ROOT),
        "python": {"executable": sys.executable, "version": platform.python_version()},
        "cpu": cpu, "runs": args.runs,
        "customers": per,
        "median_total_cpu_s": round(statistics.median(totals), 3),
        "mean_total_cpu_s": round(statistics.fmean(totals), 3),
        "mean_worker_cpu_s": round(statistics.fmean(d["worker_cpu_s"] for d in per.values()), 3),
        "mean_chromium_cpu_s": round(statistics.fmean(d["chromium_cpu_s"] for d in per.values()), 3),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    charts._stop_server()  # noqa: SLF001
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
