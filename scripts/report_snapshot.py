"""Render the sample report and write its page images (pdftoppm) to a folder.

    python -m scripts.report_snapshot docs/report-snapshot [--language de] [--dpi 60]
    python -m scripts.report_snapshot docs/report-snapshot --db w.duckdb --month 2026-11 \
        --customer C0016 --prefix customer-report-professional --language en   # a Professional customer of the demo

Only the page images `<prefix>-<page>.png` are kept (small, reviewable,
commit-ready). Needs poppler-utils (pdftoppm) and chromium (for the charts).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from reports.render import render_customer_pdf
from tests.fixtures.sample_report import sample_report


def warehouse_report(db: str, month: str, customer: str, language: str):
    """The view model of one customer of a warehouse (e.g. the demo's), in `language`."""
    from dataclasses import replace

    import duckdb

    from sla.policy import load_policy
    from sla.report_data.customer import build_customer_reports

    with duckdb.connect(db, read_only=True) as con:
        (vm,) = build_customer_reports(con, load_policy(), month, customer)
    return replace(vm, customer=replace(vm.customer, language=language))


def write_snapshot(outdir: Path, *, language: str = "en", dpi: int = 60,
                   prefix: str | None = None, vm=None) -> list[Path]:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        raise SystemExit("pdftoppm not found: install poppler-utils")
    prefix = prefix or f"customer-report-{language}"
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.glob(f"{prefix}-*.png"):
        old.unlink()
    pdf = render_customer_pdf(vm if vm is not None else sample_report(language))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "report.pdf"
        src.write_bytes(pdf)
        subprocess.run([pdftoppm, "-r", str(dpi), "-png", str(src), str(outdir / prefix)],
                       check=True)
    return sorted(outdir.glob(f"{prefix}-*.png"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--language", choices=("en", "de"), action="append")
    ap.add_argument("--dpi", type=int, default=60)
    ap.add_argument("--db", help="render a customer of this warehouse instead of the sample")
    ap.add_argument("--month")
    ap.add_argument("--customer")
    ap.add_argument("--prefix", help="file prefix (the language is appended)")
    args = ap.parse_args(argv)
    for lang in args.language or ["en", "de"]:
        vm = warehouse_report(args.db, args.month, args.customer, lang) if args.db else None
        prefix = f"{args.prefix}-{lang}" if args.prefix else None
        for path in write_snapshot(args.outdir, language=lang, dpi=args.dpi, prefix=prefix, vm=vm):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
