"""Render the sample report and write its page images (pdftoppm) to a folder.

    python -m scripts.report_snapshot docs/report-snapshot [--language de] [--dpi 60]

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


def write_snapshot(outdir: Path, *, language: str = "en", dpi: int = 60,
                   prefix: str | None = None) -> list[Path]:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        raise SystemExit("pdftoppm not found: install poppler-utils")
    prefix = prefix or f"customer-report-{language}"
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.glob(f"{prefix}-*.png"):
        old.unlink()
    pdf = render_customer_pdf(sample_report(language))
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
    args = ap.parse_args(argv)
    for lang in args.language or ["en", "de"]:
        for path in write_snapshot(args.outdir, language=lang, dpi=args.dpi):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
