"""File connector: stage a canonical CSV export (data-contract.md part A) into DuckDB.

Staging keeps every record as text, exactly as received, with the physical line number it
starts on (the header is line 1), so that validation (`sla.ingest`) can reject a row with a
reason that points into the file. Records DuckDB's CSV reader cannot parse at all (wrong
number of fields, invalid UTF-8) become `malformed` rows with DuckDB's own message.

Line numbers are exact even with quoted multi-line fields, CRLF, BOM and blank lines: the file
is read a second time as physical lines; a line starts a record when the number of quote
characters before it is even. DuckDB numbers records the same way (blank lines count, a
multi-line record counts once), which lets us pair each parsed record with its first line.

Fast path (benchmarks/README.md, F3): one streaming pass over the physical lines first checks
that every line has an even number of quote characters and none is blank (and that the line
reader refused none). Then every physical line after the header is exactly one record, in
order, so record k (0-based) is on line k + 2 and nothing has to be kept or numbered; rejected
rows are quoted at the end by re-reading only their lines (`rejected_rows_sql`). If the check
fails, or the CSV reader refuses a record, or the counts disagree, the file is staged by the
general code above (the fallback), which gives the same result wherever both apply.
`_csv_line_sources` records, per staged table, the file and which path staged it.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sla.db import scalar
from sla.db import sql_literal as _sql_str
from sla.sources import ExportError, TicketSource


@dataclass(frozen=True)
class FileSpec:
    name: str  # file name in the export folder, also the `source` of its rejects
    table: str  # staging table suffix
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    must_exist: bool = True


EXPORT_FILES = (
    FileSpec("tickets.csv", "tickets", ("ticket_id", "customer_id", "subject", "severity", "created_at", "channel")),
    FileSpec("ticket_events.csv", "ticket_events", ("ticket_id", "occurred_at", "kind", "actor", "value")),
    FileSpec(
        "contracts.csv",
        "contracts",
        ("customer_id", "customer_name", "tier", "valid_from", "valid_to", "account_manager"),
        optional=("language", "terms", "account_manager_name"),
    ),
    FileSpec(
        "invoices.csv",
        "invoices",
        ("invoice_id", "customer_id", "issued_on", "period_start", "period_end", "amount_eur"),
        must_exist=False,
    ),
    # approved SLA exclusions (data-contract.md, sla-semantics.md section 6)
    FileSpec("exclusions.csv", "exclusions", ("ticket_id", "metric", "reason", "approved_by", "approved_at"),
             must_exist=False),
)



log = logging.getLogger(__name__)

#: temp table: per staged table (`stg`), the file it was staged from and whether the fast path did it
LINE_SOURCES = "_csv_line_sources"


def _physical_lines(file: str, store_rejects: bool) -> str:
    """read_csv of a file's physical lines: no quoting, a delimiter that never occurs in text, one column."""
    rejects = (", store_rejects = true, rejects_table = '_line_rejects', rejects_scan = '_line_scans'"
               if store_rejects else "")
    return (f"read_csv({file}, header = false, auto_detect = false, columns = {{'text': 'VARCHAR'}}, "
            f"delim = '\x1e\x1f', quote = '', escape = '', strict_mode = false{rejects}, parallel = false)")


def _csv_records(file: str, columns: str) -> str:
    """read_csv of a file's records (rows DuckDB cannot parse go to `_csv_rejects`), in file order."""
    return (f"read_csv({file}, header = true, auto_detect = false, columns = {columns}, "
            f"delim = ',', quote = '\"', escape = '\"', strict_mode = true, "
            f"store_rejects = true, rejects_table = '_csv_rejects', rejects_scan = '_csv_scans', parallel = false)")


def read_header(path: Path) -> list[str]:
    with path.open("rb") as fh:
        first = fh.readline(1 << 20)
    if not first.strip():
        raise ExportError(f"{path.name} is empty: expected a header row")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExportError(f"{path.name}: the header row is not UTF-8 text") from None
    if "\r" in text.rstrip("\r\n"):
        # old Mac line ends: DuckDB's reader and ours would disagree on every line number
        raise ExportError(f"{path.name}: lines end with a lone CR (old Mac format); save it with LF or CRLF line ends")
    try:
        return next(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ExportError(f"{path.name}: the header row cannot be read as CSV ({exc})") from None


def stage_file(con: duckdb.DuckDBPyConnection, export_dir: Path, spec: FileSpec, *,
               fast_path: bool = True) -> int | None:
    """Create `stg_<table>` (text columns + line) and `stg_<table>_malformed` (line, reason, raw).

    Returns the number of data records in the file, or None if an optional file is absent.
    Also leaves `_lines` (line_no, text) and `_units` (record starts) for quoting rejected rows
    (both empty when the fast path staged the file) and a row in `_csv_line_sources`.
    `fast_path=False` forces the general line bookkeeping (tests compare the two).
    """
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {LINE_SOURCES} (stg VARCHAR, file VARCHAR, fast BOOLEAN)")
    con.execute(f"DELETE FROM {LINE_SOURCES} WHERE stg = ?", [f"stg_{spec.table}"])
    path = export_dir / spec.name
    if not path.is_file():
        if spec.must_exist:
            raise ExportError(f"{spec.name} not found in {export_dir}")
        return None
    header = read_header(path)
    missing = [c for c in spec.required if c not in header]
    if missing:
        raise ExportError(f"{spec.name}: missing column(s) {', '.join(missing)} (header has: {', '.join(header)})")
    if len(set(header)) != len(header):
        raise ExportError(f"{spec.name}: duplicate column names in the header: {', '.join(header)}")
    wanted = [c for c in (*spec.required, *spec.optional) if c in header]
    columns = "{" + ", ".join(f"{_sql_str(h)}: 'VARCHAR'" for h in header) + "}"
    file = _sql_str(str(path))
    stg = f"stg_{spec.table}"

    try:
        records = None
        if fast_path:
            try:
                records = _read_records_fast(con, file, columns, wanted, stg)
            except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException):
                records = None  # the general path reads it again and words any error as always
        fast = records is not None
        if not fast:
            _drop_reader_rejects(con)
            records = _read_records(con, spec, file, columns, wanted, stg)
    except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException) as exc:
        # e.g. NUL bytes or an unterminated quote: the file is not CSV we can pair with lines
        reason = str(exc).splitlines()[0].removeprefix("Invalid Input Error: ")
        raise ExportError(f"{spec.name}: cannot be read as CSV ({reason})") from None
    con.execute(f"INSERT INTO {LINE_SOURCES} VALUES (?, ?, ?)", [stg, str(path), fast])
    log.debug("%s: %d records, line numbers by the %s", spec.name, records, "fast path" if fast else "general path")
    return records


def _drop_reader_rejects(con) -> None:
    for t in ("_csv_rejects", "_csv_scans", "_line_rejects", "_line_scans"):
        con.execute(f"DROP TABLE IF EXISTS {t}")


def _read_records_fast(con, file: str, columns: str, wanted: list[str], stg: str) -> int | None:
    """Stage `stg` when every physical line is one record (F3); None: use the general path.

    A line with an odd number of quote characters (a quoted field goes on, or an unbalanced
    quote), a blank line (the CSV reader skips it but counts it), a line the line reader refuses
    (invalid UTF-8) or a record the CSV reader refuses all need the general bookkeeping. Without
    any of them the general path would number the lines 1..n, find every line to start a record,
    none blank, none malformed, and pair record k with line k + 2: exactly what is staged here.
    """
    if not scalar(con, "SELECT current_setting('preserve_insertion_order')"):
        return None  # row_number() OVER () below numbers rows in file order only while order is kept
    _drop_reader_rejects(con)
    # quote characters are one byte in UTF-8, so byte lengths count them; blank = only CRs (or nothing)
    odd, blank, lines = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE contains(text, '"') AND (strlen(text) - strlen(replace(text, '"', ''))) % 2 = 1),
               count(*) FILTER (WHERE text IS NULL OR ltrim(text, chr(13)) = ''),
               count(*)
        FROM {_physical_lines(file, store_rejects=True)}
        """
    ).fetchall()[0]
    if odd or blank or scalar(con, "SELECT count(*) FROM _line_rejects"):
        return None
    # row_number() OVER () numbers the single-threaded (parallel = false) scan in file order
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {stg} AS
        SELECT {", ".join(f'"{c}"' for c in wanted)}, CAST(row_number() OVER () + 1 AS HUGEINT) AS line
        FROM {_csv_records(file, columns)}
        """
    )
    records = scalar(con, f"SELECT count(*) FROM {stg}")
    if scalar(con, "SELECT count(*) FROM _csv_rejects") or records != lines - 1:
        con.execute(f"DROP TABLE {stg}")
        return None
    # same shapes (and types: `line` is HUGEINT there) as the general path leaves, all empty
    con.execute(f"CREATE OR REPLACE TEMP TABLE {stg}_malformed (line HUGEINT, reason VARCHAR, raw VARCHAR)")
    con.execute("CREATE OR REPLACE TEMP TABLE _lines (line_no HUGEINT, text VARCHAR)")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _units (record_no BIGINT, line_no HUGEINT, blank BOOLEAN, next_line_no HUGEINT)"
    )
    return records


def _read_records(con, spec: FileSpec, file: str, columns: str, wanted: list[str], stg: str) -> int:
    con.execute(f"CREATE OR REPLACE TEMP TABLE _records AS SELECT * FROM {_csv_records(file, columns)}")
    # Physical lines: no quoting, a delimiter that never occurs in text, one column.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _lines_raw AS SELECT text FROM {_physical_lines(file, store_rejects=True)}"
    )
    # Lines the line reader itself refused (invalid UTF-8) are re-inserted by number.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _lines AS
        WITH refused AS (
            SELECT DISTINCT line AS line_no, ltrim(csv_line, chr(10)) AS text FROM _line_rejects
        ), refused_ranked AS (
            SELECT line_no, text, line_no - row_number() OVER (ORDER BY line_no) AS kept_before FROM refused
        ), kept AS (
            SELECT rowid AS k, text FROM _lines_raw
        )
        SELECT k + 1 + coalesce((SELECT count(*) FROM refused_ranked r WHERE r.kept_before <= kept.k), 0) AS line_no,
               text
        FROM kept
        UNION ALL
        SELECT line_no, text FROM refused
        """
    )
    # A line starts a record when the quotes before it are balanced; blank ones are skipped
    # by the CSV reader but still counted in its record numbers.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _units AS
        WITH q AS (
            SELECT line_no, text,
                   coalesce(sum(length(text) - length(replace(text, '"', ''))) OVER (
                       ORDER BY line_no ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS quotes_before
            FROM _lines
        )
        SELECT row_number() OVER (ORDER BY line_no) AS record_no, line_no,
               coalesce(trim(text, chr(13)), '') = '' AS blank,
               lead(line_no) OVER (ORDER BY line_no) AS next_line_no
        FROM q WHERE quotes_before % 2 = 0
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _malformed_records AS
        SELECT line AS record_no, any_value(error_message) AS message FROM _csv_rejects GROUP BY line
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {stg} AS
        WITH starts AS (
            SELECT u.line_no, row_number() OVER (ORDER BY u.record_no) - 1 AS k
            FROM _units u
            WHERE u.record_no > 1 AND NOT u.blank
              AND u.record_no NOT IN (SELECT record_no FROM _malformed_records)
        )
        SELECT {", ".join(f'r."{c}"' for c in wanted)}, s.line_no AS line
        FROM (SELECT rowid AS k, * FROM _records) r JOIN starts s USING (k)
        ORDER BY line
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {stg}_malformed AS
        SELECT u.line_no AS line, m.message AS reason,
               (SELECT string_agg(l.text, chr(10) ORDER BY l.line_no) FROM _lines l
                 WHERE l.line_no >= u.line_no AND (u.next_line_no IS NULL OR l.line_no < u.next_line_no)) AS raw
        FROM _malformed_records m JOIN _units u USING (record_no)
        """
    )
    parsed = scalar(con, f"SELECT count(*) FROM {stg}")
    staged = scalar(con, f"SELECT count(*) FROM {stg}_malformed")
    records = scalar(con, "SELECT count(*) FROM _units WHERE record_no > 1 AND NOT blank")
    if parsed + staged != records:  # the pairing above is wrong somewhere: never load a shifted file
        raise ExportError(
            f"{spec.name}: could not pair {records} records with line numbers ({parsed} parsed, {staged} malformed)"
        )
    return records


def raw_lines_sql(stg: str) -> str:
    """SQL expression (correlated) giving the raw text of a staged row `s` of table `stg`: its lines
    up to the next record's start, or to the end of the file for the last record."""
    return (
        "(SELECT string_agg(l.text, chr(10) ORDER BY l.line_no) FROM _lines_" + stg + " l "
        "WHERE l.line_no >= s.line AND l.line_no < coalesce((SELECT min(u.line_no) FROM _units_" + stg +
        " u WHERE u.line_no > s.line), (SELECT max(e.line_no) + 1 FROM _lines_" + stg + " e)))"
    )


def line_numbering(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """How each file staged on this connection got its line numbers: {"tickets": "fast" | "general", ...}."""
    if not scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [LINE_SOURCES]):
        return {}
    rows = con.execute(f"SELECT stg, fast FROM {LINE_SOURCES} ORDER BY stg").fetchall()
    return {stg.removeprefix("stg_"): "fast" if fast else "general" for stg, fast in rows}


def rejected_rows_sql(con: duckdb.DuckDBPyConnection, stg: str, rejected: str) -> str:
    """SELECT line, reason, raw for `rejected`, a table of (line, reason) of rows staged as `stg`
    that validation rejected; raw = the record's physical line(s) as received."""
    fast = None
    if scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [LINE_SOURCES]):
        fast = con.execute(f"SELECT file FROM {LINE_SOURCES} WHERE stg = ? AND fast", [stg]).fetchall()
    if not fast:  # the general path kept the file's lines and record starts
        return f"SELECT s.line, s.reason, {raw_lines_sql(stg)} AS raw FROM {rejected} s"
    # fast path: every record is its one line; read the file once more, keeping only those lines
    # (row_number() OVER () in a single-threaded scan: no table, so no rowid inside the transaction)
    lines = _physical_lines(_sql_str(fast[0][0]), store_rejects=False)
    return f"""
        SELECT s.line, s.reason, l.text AS raw
        FROM {rejected} s LEFT JOIN (
            SELECT line_no, text
            FROM (SELECT row_number() OVER () AS line_no, text FROM {lines})
            WHERE line_no IN (SELECT line FROM {rejected})
        ) l ON l.line_no = s.line"""


def stage_export(con: duckdb.DuckDBPyConnection, export_dir: str | Path, *, fast_path: bool = True) -> dict[str, int]:
    """Stage all files of a canonical export; returns records per staged table (absent optional files omitted)."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise ExportError(f"export folder not found: {export_dir}")
    counts: dict[str, int] = {}
    for spec in EXPORT_FILES:
        n = stage_file(con, export_dir, spec, fast_path=fast_path)
        if n is not None:
            counts[spec.table] = n
            # keep the physical lines and record starts to quote rejected rows as received
            # (empty after the fast path: its rejected rows are re-read from the file)
            con.execute(f"DROP TABLE IF EXISTS _lines_stg_{spec.table}")
            con.execute(f"ALTER TABLE _lines RENAME TO _lines_stg_{spec.table}")
            con.execute(f"CREATE OR REPLACE TEMP TABLE _units_stg_{spec.table} AS SELECT line_no FROM _units")
        else:
            con.execute(f"DROP TABLE IF EXISTS stg_{spec.table}")
            con.execute(f"DROP TABLE IF EXISTS stg_{spec.table}_malformed")
    for t in ("_records", "_lines_raw", "_lines", "_units", "_malformed_records"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return counts


class CsvExportSource(TicketSource):
    """The canonical CSV export folder (data-contract.md part A)."""

    name = "csv"

    def __init__(self, export_dir: str | Path, *, fast_path: bool = True):
        self.export_dir = Path(export_dir)
        self.fast_path = fast_path  # False: always the general line bookkeeping (for comparisons)

    def stage(self, con) -> dict[str, int]:
        return stage_export(con, self.export_dir, fast_path=self.fast_path)

    def rejected_rows_sql(self, con, stg: str, rejected: str) -> str:
        return rejected_rows_sql(con, stg, rejected)
