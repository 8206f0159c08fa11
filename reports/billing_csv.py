"""The Gold reconciliation as a spreadsheet-safe CSV for finance."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from decimal import Decimal

from sla.files import write_bytes_atomic

CSV_COLUMNS = ("customer_id", "customer_name", "invoice_id", "issued_on", "period_start", "period_end",
               "owed_eur", "invoiced_eur", "difference_eur", "status")

# ---- CSV export --------------------------------------------------------------------------------
#: A text cell starting with one of these is read as a formula (or, for TAB / CR / LF, can be
#: trimmed into one) by Excel, LibreOffice and Google Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise_cell(text: str) -> str:
    """Spreadsheet-formula neutralisation (OWASP "CSV injection"): prefix a `'`.

    Applied to EVERY text cell (ids, names, statuses). A spreadsheet then shows the text
    literally (`'=HYPERLINK(...)` is displayed as `=HYPERLINK(...)`); a program reading the
    CSV sees the leading `'` and must strip it. Numbers and dates are written by us in a fixed
    format (`-1499.00`, `2026-03-01`) and stay numbers, so amounts remain summable.
    """
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return neutralise_cell(str(value))


def write_reconciliation_csv(rows, path: str | os.PathLike) -> int:
    """Write the year's reconciliation lines (the PDF's selection) as CSV; returns the line count.

    UTF-8 with a byte order mark (so Excel detects the encoding), comma-separated, CRLF, one
    header row (`CSV_COLUMNS`). Written to a temporary file beside `path`, fsynced, then
    renamed over it (`os.replace`): readers see the old file or the new one, never half of one.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
    write_bytes_atomic(buffer.getvalue().encode("utf-8-sig"), path)
    return len(rows)

