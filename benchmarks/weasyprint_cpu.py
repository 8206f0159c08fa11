"""Benchmark (issue 18): WeasyPrint's CPU seconds per customer PDF under this interpreter.

    python benchmarks/weasyprint_cpu.py [--reports 40] [--cpu 1] [--json PATH]
    python benchmarks/weasyprint_cpu.py --write-html DIR    # the same reports' HTML, for weasyprint_plain.py

For comparing interpreters and builds of WeasyPrint on the same reports, not code changes
(`customer_pdfs.py --cpu-per-pdf --code` does those). Run it once per interpreter (or with
`PYTHONPATH` pointing at another build of WeasyPrint), alternating, on the same CPU:

    for r in 1 2 3; do for py in .venv/bin/python /tmp/other-venv/bin/python; do
        $py benchmarks/weasyprint_cpu.py --json /tmp/weasyprint_cpu_${r}_$(basename $(dirname $(dirname $py))).json
    done; done

The reports are those of the fan-out benchmark's density (section 8: 100 customers, 20,000
incidents over 24 months, month 2026-10, ~9 incidents, ~8 carried over and ~10 explanations per
report); the export, warehouse and view models are built once and cached under
benchmarks/data/weasyprint_cpu/ (not timed). The charts and HTML are made before the clock starts;
timed is `render.html_to_pdf` alone (WeasyPrint: parsing, styles, layout, drawing, writing), as
the process's CPU seconds per report, after one warm-up render. The SHA-256 over all PDFs shows
whether two runs wrote the same bytes. Results: the JSON named by --json (default
benchmarks/results/weasyprint_cpu.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import pickle
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, demo_month_reports  # noqa: E402

DATA = REPO / "benchmarks" / "data" / "weasyprint_cpu"
AS_OF = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.timezone.utc)  # reporting month 2026-10


def view_models(customers: int, incidents: int) -> list:
    cache = DATA / f"view_models_{customers}_{incidents}.pickle"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    reports = demo_month_reports(DATA / f"work_{customers}_{incidents}", "2026-10", as_of=AS_OF,
                                 own_policy=True, customers=customers, months=24,
                                 incidents=incidents, seed=7)
    cache.write_bytes(pickle.dumps(reports))
    return reports


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100)
    ap.add_argument("--incidents", type=int, default=20_000)
    ap.add_argument("--reports", type=int, default=40, help="the first N customers' reports")
    ap.add_argument("--cpu", type=int, default=None, help="the CPU to pin to (default: the last)")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "weasyprint_cpu.json")
    ap.add_argument("--write-html", type=Path, default=None, metavar="DIR",
                    help="write the reports' HTML to DIR for weasyprint_plain.py, and stop")
    args = ap.parse_args(argv)
    cpu = args.cpu if args.cpu is not None else sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, [cpu])

    import weasyprint

    from reports import charts, render

    DATA.mkdir(parents=True, exist_ok=True)
    reports = view_models(args.customers, args.incidents)[: args.reports]
    prepared = []
    for vm in reports:
        html, overlays = render.customer_html_and_overlays(render.customer_context(vm))
        prepared.append((vm, html, overlays))
    charts._stop_server()  # noqa: SLF001 - no chromium while WeasyPrint is timed
    if args.write_html:
        args.write_html.mkdir(parents=True, exist_ok=True)
        for number, (_, html, _) in enumerate(prepared):
            (args.write_html / f"report_{number:03d}.html").write_text(html, encoding="utf-8")
        print(f"wrote {len(prepared)} reports' HTML to {args.write_html}")
        return 0
    first = prepared[0]
    render.html_to_pdf(first[1], created=first[0].cutoff, report_css=True, overlays=first[2])

    load_before = os.getloadavg()[0]
    digest, per_report = hashlib.sha256(), []
    for vm, html, overlays in prepared:
        t = time.process_time()
        pdf = render.html_to_pdf(html, created=vm.cutoff, report_css=True, overlays=overlays)
        per_report.append(time.process_time() - t)
        digest.update(pdf)
    layout_module = sys.modules["weasyprint.layout.block"].__file__
    result = {
        "benchmark": "weasyprint_cpu",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": {"executable": sys.executable, "version": platform.python_version()},
        "weasyprint": {"version": weasyprint.__version__, "compiled": not layout_module.endswith(".py"),
                       "layout module": layout_module},
        "cpu": cpu, "reports": len(prepared),
        "cpu_s_per_report": {"mean": round(statistics.fmean(per_report), 3),
                             "median": round(statistics.median(per_report), 3),
                             "total": round(sum(per_report), 2)},
        "pdf_sha256": digest.hexdigest(),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{sys.executable} ({platform.python_version()}, WeasyPrint "
          f"{'compiled' if result['weasyprint']['compiled'] else 'as shipped'}): "
          f"mean {result['cpu_s_per_report']['mean']:.3f}, median {result['cpu_s_per_report']['median']:.3f} "
          f"CPU-s per report over {len(prepared)}, PDFs sha256 {digest.hexdigest()[:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
