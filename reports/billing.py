"""Gold billing report for finance: `GoldBillingReport` -> HTML -> PDF bytes (issue 4).

Same rendering rules as the customer PDF (`reports.render`): the one Jinja environment
(autoescape for every template, StrictUndefined), WeasyPrint through `html_to_pdf` with the
confined `TemplateOnlyFetcher` (only files under reports/templates and data: URIs), fixed PDF
metadata (created = modified = the data's cut-off, no PDF identifier), so the same view model
always gives the same bytes. English only.

Money goes through the one formatter, `reports.format.money` (from `Decimal`, never float):
`EUR 17,988.00`, `EUR -1,499.00`. The helpers are passed to the template in its context (the
shared environment is not changed). Sections are linked by their `anchor` (generated, never
the customer id, which is data).
"""

from __future__ import annotations

import os
from pathlib import Path

from reports.format import money
from reports.render import TemplateOnlyFetcher, environment, html_to_pdf
from sla.files import write_bytes_atomic
from sla.report_data.models import GoldBillingReport

TEMPLATE = "gold_billing.html"
MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: badge class per reconciliation status (colours in static/billing.css)
STATUS_CLASS = {
    "ok": "st-ok",
    "under_billed": "st-bad",
    "over_billed": "st-bad",
    "not_gold": "st-bad",
    "overlap": "st-bad",
    "not_invoiced": "st-open",
    "credit_note": "st-open",
}


def month_abbr(month: str) -> str:
    """'2026-03' -> 'Mar'."""
    return MONTH_ABBR[int(month[5:7]) - 1]


def billing_context(vm: GoldBillingReport) -> dict:
    return {
        "vm": vm,
        "lang": "en",
        "tz": vm.timezone,
        "money": lambda amount: money(amount, "en", vm.currency),
        "sections": {c.customer_id: c for c in vm.customers},
        "runs": [x for c in vm.customers for x in c.unbilled],
        "quota_by_month": lambda section: {q.month: q for q in section.quota},
        "month_abbr": month_abbr,
        "status_class": lambda status: STATUS_CLASS.get(status, "st-bad"),
    }


def render_billing_html(vm: GoldBillingReport) -> str:
    return environment().get_template(TEMPLATE).render(**billing_context(vm))


def render_billing_pdf(vm: GoldBillingReport, *, fetcher: TemplateOnlyFetcher | None = None) -> bytes:
    return html_to_pdf(render_billing_html(vm), created=vm.cutoff, fetcher=fetcher)


def write_billing_pdf(vm: GoldBillingReport, path: str | os.PathLike) -> Path:
    """Render and write atomically (temporary file, fsync, rename)."""
    return write_bytes_atomic(render_billing_pdf(vm), path)


def report_paths(out_dir: str | os.PathLike, year: int) -> tuple[Path, Path, Path]:
    """`<out>/billing/`: `gold-billing-<YYYY>.pdf`, `gold-reconciliation-<YYYY>.csv` and `.xlsx`."""
    folder = Path(out_dir) / "billing"
    return (folder / f"gold-billing-{year:04d}.pdf", folder / f"gold-reconciliation-{year:04d}.csv",
            folder / f"gold-reconciliation-{year:04d}.xlsx")
