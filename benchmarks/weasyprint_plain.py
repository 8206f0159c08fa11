"""Benchmark (issue 18): WeasyPrint's CPU per report on an interpreter the project does not run on.

    python benchmarks/weasyprint_cpu.py --write-html /tmp/reports-html        # the project's venv
    taskset -c 1 /tmp/pypy-venv/bin/python benchmarks/weasyprint_plain.py /tmp/reports-html \
        --passes 6 --json benchmarks/results/weasyprint_plain_pypy.json
    taskset -c 1 /tmp/cpython-venv/bin/python benchmarks/weasyprint_plain.py /tmp/reports-html \
        --passes 6 --json benchmarks/results/weasyprint_plain_cpython.json

Imports nothing of the project, so that it runs under any Python that has WeasyPrint (PyPy,
another CPython, another WeasyPrint release): it renders the customer reports' HTML that
`weasyprint_cpu.py --write-html` wrote, with report.css and its fonts, through WeasyPrint's
public API (one FontConfiguration and one parsed stylesheet for all reports, as a batch worker
has). It renders all reports several times ("passes") and records each pass's CPU seconds per
report, because a JIT (PyPy's) is slow in the first pass and the worker of a fan-out batch renders
about 200 reports. Not the product's render path (no lean user-agent stylesheet, no methodology
overlay), so compare interpreters with it, not with `weasyprint_cpu.py`'s figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "reports" / "templates"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html_dir", type=Path, help="the *.html files weasyprint_cpu.py --write-html wrote")
    ap.add_argument("--passes", type=int, default=6)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import weasyprint
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    documents = [p.read_text(encoding="utf-8") for p in sorted(args.html_dir.glob("*.html"))]
    if not documents:
        ap.error(f"no .html files in {args.html_dir}")
    base_url = str(TEMPLATES) + "/"
    font_config = FontConfiguration()
    stylesheet = CSS(filename=str(TEMPLATES / "static" / "report.css"), font_config=font_config)
    passes = []
    for number in range(args.passes):
        sizes = hashlib.sha256()
        started = time.process_time()
        for html in documents:
            pdf = HTML(string=html, base_url=base_url).write_pdf(stylesheets=[stylesheet],
                                                                font_config=font_config)
            sizes.update(len(pdf).to_bytes(8, "big"))
        cpu = (time.process_time() - started) / len(documents)
        passes.append(round(cpu, 4))
        print(f"{platform.python_implementation()} {platform.python_version()}, WeasyPrint "
              f"{weasyprint.__version__}: pass {number + 1}, {cpu:.3f} CPU-s per report", flush=True)
    result = {
        "benchmark": "weasyprint_plain",
        "python": {"implementation": platform.python_implementation(),
                   "version": platform.python_version(), "executable": sys.executable,
                   "build": " ".join(platform.python_build())},
        "weasyprint": weasyprint.__version__,
        "reports": len(documents),
        "cpu_s_per_report_by_pass": passes,
        "pdf_sizes_sha256": sizes.hexdigest(),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
