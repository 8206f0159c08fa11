"""The Gold reconciliation for spreadsheets: a formula-safe CSV (English or German dialect) and an
.xlsx beside it with amounts as numbers in a EUR number format (issue 14).

Rows (`sla.report_data.billing.reconciliation_rows`): the year's lines (the PDF's: invoices issued
in the year, unbilled runs touching it) plus every line causing an open item of any year
(`open_item_years` names those years). Status in plain words, the same as in the PDF.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import zipfile
from decimal import Decimal
from typing import Literal

from sla.files import write_bytes_atomic

CSV_COLUMNS = ("customer_id", "customer_name", "account_manager", "invoice_id", "issued_on", "period_start",
               "period_end", "days", "owed_eur", "invoiced_eur", "difference_eur", "status", "open_item_years")
MONEY_COLUMNS = ("owed_eur", "invoiced_eur", "difference_eur")
OPEN_ITEM_COLUMNS = ("customer_id", "customer_name", "account_manager", "year", "owed_eur", "invoiced_eur",
                     "to_invoice_eur", "to_credit_eur")
CsvLocale = Literal["en", "de"]
#: (delimiter, decimal separator) per dialect: German-locale Excel splits on ';' and reads '1499,00'
DIALECTS: dict[str, tuple[str, str]] = {"en": (",", "."), "de": (";", ",")}
#: EUR number format of the .xlsx amounts (shown with the reader's own separators)
EUR_FORMAT = '#,##0.00 "EUR";-#,##0.00 "EUR"'
DATE_FORMAT = "yyyy-mm-dd"

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


def _dialect(locale: str) -> tuple[str, str]:
    if locale not in DIALECTS:
        raise ValueError(f"csv locale must be one of {', '.join(DIALECTS)}, got {locale!r}")
    return DIALECTS[locale]


def _csv_cell(value, decimal_sep: str = ".") -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}".replace(".", decimal_sep)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return neutralise_cell(str(value))


def write_reconciliation_csv(rows, path: str | os.PathLike, locale: CsvLocale = "en") -> int:
    """Write the reconciliation rows (`CSV_COLUMNS`) as CSV; returns the line count.

    UTF-8 with a byte order mark (so Excel detects the encoding), CRLF, one header row.
    `en`: comma-separated, decimal point (`-1499.00`); `de`: semicolon-separated, decimal comma
    (`-1499,00`), as German-locale Excel opens it on a double-click. No thousands separator.
    Written to a temporary file beside `path`, fsynced, then renamed over it (`os.replace`):
    readers see the old file or the new one, never half of one.
    """
    delimiter, decimal_sep = _dialect(locale)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(v, decimal_sep) for v in row])
    write_bytes_atomic(buffer.getvalue().encode("utf-8-sig"), path)
    return len(rows)


# ---- xlsx export -------------------------------------------------------------------------------
def _xlsx_sheet(ws, columns, rows, money_columns, widths) -> None:
    from openpyxl.styles import Font

    ws.append(list(columns))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r, row in enumerate(rows, start=2):
        for c, (name, value) in enumerate(zip(columns, row), start=1):
            cell = ws.cell(row=r, column=c)
            if value is None:
                continue
            if isinstance(value, Decimal):
                cell.value = value  # a number, exact to the cent
                cell.number_format = EUR_FORMAT
            elif isinstance(value, (dt.date, int)) and not isinstance(value, bool):
                cell.value = value
                if isinstance(value, dt.date):
                    cell.number_format = DATE_FORMAT
            else:
                # text: neutralised like the CSV, and stored as a string, never as a formula
                cell.value = neutralise_cell(str(value))
                cell.data_type = "s"
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[ws.cell(row=1, column=c).column_letter].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions


def write_reconciliation_xlsx(rows, path: str | os.PathLike, open_items=(), *,
                              created: dt.datetime | None = None) -> int:
    """The same rows as an .xlsx (sheet "Reconciliation"; sheet "Open items" with `OPEN_ITEM_COLUMNS`).

    Amounts are numbers with the EUR number format `EUR_FORMAT`, dates are dates, text cells
    are neutralised as in the CSV and stored as strings. Written atomically; returns the line count.
    """
    from openpyxl import Workbook  # imported here: only the export needs it

    wb = Workbook()
    ws = wb.active
    ws.title = "Reconciliation"
    _xlsx_sheet(ws, CSV_COLUMNS, rows, MONEY_COLUMNS,
                (11, 32, 26, 16, 11, 11, 11, 6, 15, 15, 15, 14, 14))
    _xlsx_sheet(wb.create_sheet("Open items"), OPEN_ITEM_COLUMNS, list(open_items),
                ("owed_eur", "invoiced_eur", "to_invoice_eur", "to_credit_eur"), (11, 32, 26, 7, 15, 15, 15, 15))
    if created is not None:
        stamp = created.astimezone(dt.timezone.utc).replace(tzinfo=None)
        wb.properties.created = wb.properties.modified = stamp
    buffer = io.BytesIO()
    wb.save(buffer)
    write_bytes_atomic(_reproducible_xlsx(buffer.getvalue(), created), path)
    return len(rows)


def _reproducible_xlsx(data: bytes, created: dt.datetime | None) -> bytes:
    """The same workbook with the same bytes on every run: openpyxl stamps each zip entry and the
    `modified` property with the time of saving; both become the report's cut-off (`created`)."""
    when = (created or dt.datetime(1980, 1, 1, tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    stamp = max(when.replace(tzinfo=None), dt.datetime(1980, 1, 1))  # zip dates start in 1980
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                                 rb"\g<1>" + stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode() + rb"\g<2>", content)
            entry = zipfile.ZipInfo(info.filename, date_time=stamp.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            dst.writestr(entry, content)
    return out.getvalue()
