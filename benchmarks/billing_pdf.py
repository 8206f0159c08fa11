"""Benchmark: the yearly Gold billing PDF (finance) at 1,000 Gold customers (issue 14).

    python benchmarks/billing_pdf.py [--customers 1000] [--year 2026] [--out DIR] [--json PATH]

Builds a seeded export of N Gold customers (contracts and annual invoices only, no incidents:
the PDF's size comes from the billing sections), about 5 % of them with a billing anomaly
(over-billed, under-billed, a double-billed quarter, a credit note, a contract ending mid-year,
unbilled days), imports it and computes `gold_reconciliation` as `sla run` does, then times
`build_billing_report` (DuckDB -> view model) and `render_billing_pdf` (Jinja + WeasyPrint), and
counts the PDF's pages and the pages before the customer sections (page 1 + open items).
Results: benchmarks/results/billing_pdf.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def make_export(folder: Path, customers: int, seed: int = 7) -> Path:
    from tests.helpers import write_export

    rng = random.Random(seed)
    fee = Decimal("1499.00")
    contracts, invoices = [], []
    seq = 0
    for i in range(customers):
        cid = f"G{i:05d}"
        start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(0, 700))
        end = ""
        kind = rng.random()
        if kind < 0.01:
            end = (start + dt.timedelta(days=rng.randrange(200, 500))).isoformat()
        contracts.append((cid, f"Customer {i} GmbH", "gold", start.isoformat(), end, f"am{i % 7}@vendor.example"))
        ps = start
        while ps <= dt.date(2026, 12, 1):
            pe = ps.replace(year=ps.year + 1) - dt.timedelta(days=1) if not (ps.month == 2 and ps.day == 29) \
                else dt.date(ps.year + 1, 2, 28)
            seq += 1
            amount = fee * 12
            if 0.01 <= kind < 0.02:
                amount -= fee  # under-billed
            elif 0.02 <= kind < 0.03:
                amount += fee  # over-billed
            if not (0.03 <= kind < 0.04 and ps.year == 2026):  # unbilled
                invoices.append((f"INV-{ps.year}-{seq:05d}", cid, ps.isoformat(), ps.isoformat(), pe.isoformat(),
                                 f"{amount:.2f}"))
            if 0.04 <= kind < 0.05 and ps.year == 2025:  # a double-billed quarter and a credit note
                q = ps + dt.timedelta(days=90)
                invoices.append((f"DUP-{seq:05d}", cid, q.isoformat(), q.isoformat(),
                                 (q + dt.timedelta(days=89)).isoformat(), "4497.00"))
                invoices.append((f"CN-{seq:05d}", cid, (q + dt.timedelta(days=30)).isoformat(), q.isoformat(),
                                 (q + dt.timedelta(days=89)).isoformat(), "-4497.00"))
            ps = pe + dt.timedelta(days=1)
    return write_export(folder, (), (), contracts, invoices=invoices)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument("--out", default=None, help="keep the PDF here (default: a temporary folder)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "billing_pdf.json"))
    args = parser.parse_args(argv)

    import pypdf

    from reports.billing import render_billing_pdf
    from sla.billing import compute_gold_reconciliation
    from sla.policy import load_policy
    from sla.report_data.billing import build_billing_report
    from tests.helpers import run_domain

    as_of = dt.datetime(2026, 12, 1, 23, tzinfo=dt.timezone.utc)
    policy = load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        export = make_export(Path(tmp) / "export", args.customers)
        con, _ = run_domain(export, as_of, policy)
        compute_gold_reconciliation(con, policy, as_of)
        t0 = time.perf_counter()
        vm = build_billing_report(con, policy, args.year, as_of)
        t1 = time.perf_counter()
        c1 = time.process_time()
        pdf = render_billing_pdf(vm)
        t2 = time.perf_counter()
        c2 = time.process_time()
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    texts = [p.extract_text() or "" for p in reader.pages]
    summary_pages = next((i for i, t in enumerate(texts) if "Invoices issued in" in t.split("\n", 3)[-1]), len(texts))
    result = {
        "customers": args.customers, "sections": len(vm.customers), "open_items": len(vm.open_items),
        "open_customers": len(vm.open_customers), "pages": len(reader.pages),
        "pages_before_invoices_issued": summary_pages, "view_model_s": round(t1 - t0, 2),
        "render_s": round(t2 - t1, 2), "render_cpu_s": round(c2 - c1, 2), "pdf_mb": round(len(pdf) / 1e6, 2),
        "load_avg_1m": os.getloadavg()[0], "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"gold-billing-{args.year}-{args.customers}.pdf").write_bytes(pdf)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print("| Gold customers | sections | open items | pages | summary pages | view model | render (CPU) | PDF |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.customers:,} | {result['sections']:,} | {result['open_items']} ({result['open_customers']} customers) "
          f"| {result['pages']} | {summary_pages} | {result['view_model_s']} s "
          f"| {result['render_s']} s ({result['render_cpu_s']} s) "
          f"| {result['pdf_mb']} MB |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
