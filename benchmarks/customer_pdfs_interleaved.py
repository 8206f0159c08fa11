"""Benchmark: CPU seconds per customer PDF, before against after, interleaved PDF by PDF.

    python benchmarks/customer_pdfs_interleaved.py --before DIR [--rounds 5] [--json PATH]

The same 12 customers as `customer_pdfs.py --cpu-per-pdf` (the benchmark's 1,000-customer
export, fixed quantiles of report size), rendered by two versions of `reports` in ONE process
pinned to one CPU, taking turns PDF by PDF (before, after; the order alternates by round), each
exactly as a batch worker renders (`batch.render_pdf_timed`). `--before DIR` is a checkout of
the older code (e.g. `git archive <commit> | tar -x -C DIR`); its `reports` package is copied to
a temporary folder as `reports_before` (imports rewritten) and `sla` is shared, so only use it
for commits whose `sla` is unchanged.

Why: on a shared machine another session's work inflates the CPU seconds of a process (the two
cores are shared), by 30 % and more within minutes; two runs of `--cpu-per-pdf` one after the
other measured the same code 40 % apart. Taking turns PDF by PDF exposes both versions to the
same load; per customer the median over the rounds (and the minimum) is reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from customer_pdfs import size_quantile_picks  # noqa: E402  (the same 12 customers as --cpu-per-pdf)


def _import_before(before: Path, tmp: Path):
    """`reports` of the checkout `before`, imported as `reports_before`."""
    target = tmp / "reports_before"
    shutil.copytree(before / "reports", target)
    for path in target.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\bfrom reports(\.| import)", r"from reports_before\1", text)
        text = re.sub(r"\bimport reports\.", "import reports_before.", text)
        path.write_text(text, encoding="utf-8")
    sys.path.insert(0, str(tmp))
    from reports_before import batch, charts, render
    return batch, charts, render


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--cpu", type=int, default=None)
    ap.add_argument("--json", type=Path,
                    default=ROOT / "benchmarks" / "results" / "customer_pdfs_interleaved.json")
    args = ap.parse_args(argv)
    cpu = args.cpu if args.cpu is not None else sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, [cpu])  # both chromiums inherit it

    from reports import batch, charts, render
    with tempfile.TemporaryDirectory(prefix="bench-interleaved-") as tmp:
        tmp = Path(tmp)
        bbatch, bcharts, brender = _import_before(args.before.resolve(), tmp)
        picks, size = size_quantile_picks(args.customers, args.months, tmp)
        versions = {"before": (bbatch, bcharts, brender), "after": (batch, charts, render)}
        for b, c, r in versions.values():
            c._ensure_server()  # noqa: SLF001 - as a batch worker's initializer does
            r.report_style()
            for vm in picks[:3]:
                b.render_pdf_timed(vm)
        runs = {name: {vm.customer.id: [] for vm in picks} for name in versions}
        loads = [os.getloadavg()[0]]
        for k in range(args.rounds):
            order = list(versions) if k % 2 == 0 else list(reversed(versions))
            for vm in picks:
                for name in order:
                    cpu0, chromium0 = time.process_time(), batch.children_cpu_s()
                    versions[name][0].render_pdf_timed(vm)
                    runs[name][vm.customer.id].append(
                        (time.process_time() - cpu0, max(0.0, batch.children_cpu_s() - chromium0)))
            loads.append(os.getloadavg()[0])
        for _, c, _ in versions.values():
            c._stop_server()  # noqa: SLF001
        sys.path.remove(str(tmp))

    result = {"benchmark": "customer_pdfs_interleaved", "date": dt.date.today().isoformat(),
              "before": str(args.before), "after": str(ROOT), "cpu": cpu, "rounds": args.rounds,
              "load_average_per_round": [round(x, 2) for x in loads]}
    for name, per in runs.items():
        customers = {}
        for vm in picks:
            r = per[vm.customer.id]
            customers[vm.customer.id] = {
                "report_size": size(vm),
                "worker_cpu_s": round(statistics.median(x[0] for x in r), 3),
                "chromium_cpu_s": round(statistics.median(x[1] for x in r), 3),
                "total_cpu_s": round(statistics.median(x[0] + x[1] for x in r), 3),
                "min_total_cpu_s": round(min(x[0] + x[1] for x in r), 3),
            }
        totals = [d["total_cpu_s"] for d in customers.values()]
        result[name] = {
            "customers": customers,
            "median_total_cpu_s": round(statistics.median(totals), 3),
            "mean_total_cpu_s": round(statistics.fmean(totals), 3),
            "mean_worker_cpu_s": round(statistics.fmean(
                d["worker_cpu_s"] for d in customers.values()), 3),
            "mean_chromium_cpu_s": round(statistics.fmean(
                d["chromium_cpu_s"] for d in customers.values()), 3),
            "mean_min_total_cpu_s": round(statistics.fmean(
                d["min_total_cpu_s"] for d in customers.values()), 3),
        }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name in versions:
        print(name, {k: v for k, v in result[name].items() if k != "customers"})
    print("load average per round", result["load_average_per_round"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
