"""File connector: stage a canonical CSV export (data-contract.md part A) into DuckDB.

Staging keeps every record as text, exactly as received, with the physical line number it
starts on (the header is line 1), so that validation (`sla.ingest`) can reject a row with a
reason that points into the file. Records DuckDB's CSV reader cannot parse at all (wrong
number of fields, invalid UTF-8) become `malformed` rows with DuckDB's own message.

Line numbers are exact even with quoted multi-line fields, CRLF, BOM and blank lines: the file
is read a second time as physical lines; a line starts a record when the number of quote
characters before it is even. DuckDB numbers records the same way (blank lines count, a
multi-line record counts once), which lets us pair each parsed record with its first line.

Fast path (benchmarks/README.md, F3 and issue 18): one pass over the file's bytes (numpy, no
table) finds the lines that start a record exactly as the general code does: a line starts a
record when the number of quote characters before it is even. If no line is ended by a lone CR
and no line that starts a record is blank, data record k (0-based) starts on the (k + 2)-th of
those lines (record k on line k + 2 when every line starts one), so the records are read once and
numbered as they stream in, and nothing else is kept: rejected rows are quoted at the end by
re-reading only their lines (`rejected_rows_sql`). If the check fails, or the CSV reader refuses a
record, or the counts disagree, the file is staged by the general code above (the fallback), which
gives the same result wherever both apply. `_csv_line_sources` records, per staged table, the file
and which path staged it.
"""

from __future__ import annotations

import bisect
import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

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
#: temp table: per fast-path staged table, (line, byte offset) marks for `read_lines`
LINE_INDEX = "_csv_line_index"


def _physical_lines(file: str, store_rejects: bool) -> str:
    """read_csv of a file's physical lines: no quoting, a delimiter that never occurs in text, one column."""
    rejects = (", store_rejects = true, rejects_table = '_line_rejects', rejects_scan = '_line_scans'"
               if store_rejects else "")
    return (f"read_csv({file}, header = false, auto_detect = false, columns = {{'text': 'VARCHAR'}}, "
            f"delim = '\x1e\x1f', quote = '', escape = '', strict_mode = false{rejects}, parallel = false)")


def _csv_records(file: str, columns: str, parallel: bool = False) -> str:
    """read_csv of a file's records (rows DuckDB cannot parse go to `_csv_rejects`), in file order."""
    return (f"read_csv({file}, header = true, auto_detect = false, columns = {columns}, "
            f"delim = ',', quote = '\"', escape = '\"', strict_mode = true, "
            f"store_rejects = true, rejects_table = '_csv_rejects', rejects_scan = '_csv_scans', "
            f"parallel = {'true' if parallel else 'false'})")


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


def _records_of(stg: str) -> str:
    return f"_records_{stg}"


def drop_staged(con: duckdb.DuckDBPyConnection, stg: str) -> None:
    """Drop the staged records `stg`: a table, or the fast path's view and the table under it."""
    if scalar(con, "SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND temporary", [stg]):
        con.execute(f"DROP VIEW {stg}")
    con.execute(f"DROP TABLE IF EXISTS {stg}")
    con.execute(f"DROP TABLE IF EXISTS {_records_of(stg)}")


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
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {LINE_INDEX} (stg VARCHAR, line BIGINT, byte_offset BIGINT)")
    con.execute(f"DELETE FROM {LINE_INDEX} WHERE stg = ?", [f"stg_{spec.table}"])
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
    drop_staged(con, stg)  # a view of an earlier import on this connection would refuse CREATE OR REPLACE TABLE

    try:
        records = None
        if fast_path:
            try:
                records = _read_records_fast(con, path, file, columns, wanted, stg)
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


@dataclass(frozen=True)
class LineScan:
    """What `scan_lines` found: the number of physical lines (as DuckDB's line reader counts them)
    and the lines that start a record, header included (None: every line starts one)."""

    lines: int
    starts: np.ndarray | None
    index: tuple[tuple[int, int], ...] = ()  # (line, byte offset it starts at), one per chunk: for read_lines

    @property
    def records(self) -> int:
        """Data records the file must hold (the header is the first record)."""
        return (self.lines if self.starts is None else len(self.starts)) - 1


def scan_lines(path: Path, chunk: int = 1 << 24) -> LineScan | None:
    """Record starts by quote parity, in one pass over the bytes; None if the file needs the general path.

    The general path reads every line as text and sums quote characters in a window over all of
    them; here numpy finds the newline and quote bytes of each chunk and the quote count before
    each newline (quotes are one byte in UTF-8 and no other character contains that byte).
    None unless the line ends are all LF or all CRLF (DuckDB's line reader ends a line at a lone CR,
    and at both bytes of a CRLF in a file of LF lines: we would count differently), or when a line
    that starts a record is empty or only a CR (the CSV reader skips it: the general path numbers
    around it).
    """
    quotes = 0  # quote bytes before the current chunk
    crs = 0  # CR bytes (each one followed by LF)
    newlines = 0  # newline bytes before the current chunk
    last_nl = -1  # absolute position of the last newline seen, and whether the line after it starts a record
    last_starts = True
    prev_byte = -1
    starts_parts: list[np.ndarray] = []  # record-start line numbers, once a line has been found that does not start one
    index: list[tuple[int, int]] = []
    every_line = True
    offset = 0
    buf = bytearray(chunk)
    with path.open("rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            a = np.frombuffer(buf, dtype=np.uint8, count=n)
            if prev_byte == 13 and a[0] != 10:
                return None  # a lone CR across the chunk boundary
            cr = np.flatnonzero(a == 13)
            if len(cr):
                inner = cr[cr < n - 1]
                if len(inner) and not np.all(a[inner + 1] == 10):
                    return None  # a lone CR
                crs += len(cr)
            nl = np.flatnonzero(a == 10)
            q = np.flatnonzero(a == 34)
            if len(nl):
                even = (quotes + np.searchsorted(q, nl)) % 2 == 0  # the line after this newline starts a record
                # empty lines (or a lone "\r" line) right after a newline that starts a record: blank record start
                pos = np.concatenate(([last_nl], nl + offset))
                starts_before = np.concatenate(([last_starts], even[:-1]))
                gap = np.diff(pos)
                blank = (gap == 1) | ((gap == 2) & (_byte_at(a, offset, pos[:-1] + 1, prev_byte) == 13))
                if np.any(blank & starts_before):
                    return None
                if every_line and not np.all(even):
                    every_line = False
                    # lines 1 (header) .. this chunk's first line all started a record
                    starts_parts.append(np.arange(1, newlines + 2, dtype=np.int64))
                if not every_line:
                    starts_parts.append(newlines + 2 + np.flatnonzero(even).astype(np.int64))
                last_nl, last_starts = int(nl[-1]) + offset, bool(even[-1])
                index.append((newlines + 2, offset + int(nl[0]) + 1))  # the line after the chunk's first newline
                newlines += len(nl)
            quotes += len(q)
            prev_byte = int(a[-1])
            offset += n
    if prev_byte == 13 or crs not in (0, newlines):
        return None  # the file ends with a lone CR, or has LF and CRLF line ends
    ends_with_newline = prev_byte == 10
    lines = newlines + (0 if ends_with_newline else 1)
    if offset == 0:
        return None
    if every_line:
        return LineScan(lines, None, tuple(index))
    starts = np.concatenate(starts_parts)
    if ends_with_newline and len(starts) and starts[-1] == newlines + 1:
        starts = starts[:-1]  # the position after the final newline is the end of the file, not a line
    return LineScan(lines, starts, tuple(index))


def _byte_at(a: np.ndarray, offset: int, positions: np.ndarray, prev_byte: int) -> np.ndarray:
    """Bytes at absolute `positions` (each in this chunk, or the last byte of the chunk before)."""
    rel = positions - offset
    out = np.full(len(rel), prev_byte, dtype=np.int64)
    inside = (rel >= 0) & (rel < len(a))
    out[inside] = a[rel[inside]]
    out[rel >= len(a)] = -1  # beyond this chunk: only a newline there, never blank-by-CR here
    return out


def _drop_reader_rejects(con) -> None:
    for t in ("_csv_rejects", "_csv_scans", "_line_rejects", "_line_scans"):
        con.execute(f"DROP TABLE IF EXISTS {t}")


def _read_records_fast(con, path: Path, file: str, columns: str, wanted: list[str], stg: str) -> int | None:
    """Stage `stg` with line numbers from `scan_lines` (F3, issue 18); None: use the general path.

    A lone CR, a blank line where a record starts or a record the CSV reader refuses (wrong
    number of fields, invalid UTF-8, an unterminated quote) need the general bookkeeping. Without
    them the general path would number the lines, find the same record starts, none blank, none
    malformed, and pair data record k with the (k + 2)-th start: exactly what is staged here.
    """
    if not scalar(con, "SELECT current_setting('preserve_insertion_order')"):
        return None  # the scan below numbers records in file order only while order is kept
    scan = scan_lines(path)
    if scan is None:
        return None
    _drop_reader_rejects(con)
    cols = ", ".join(f'r."{c}"' for c in wanted)
    if scan.starts is None:
        # every line is one record, so record k (from 0) is on line k + 2. The records are read on
        # every core into a table that keeps the file's order (insertion order is preserved, checked
        # above), whose rowid is then k; `stg` is a view adding the line. Numbering them in the read
        # instead (row_number() OVER (), a streaming window) kept the whole read on one core: 34-44
        # CPU-s at 10M incidents, the largest single-threaded part of the import (issue 18).
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {_records_of(stg)} AS
            SELECT {cols} FROM {_csv_records(file, columns, parallel=True)} r
            """)
        con.execute(f"CREATE TEMP VIEW {stg} AS SELECT *, rowid + 2 AS line FROM {_records_of(stg)}")
        # every row is a record with a line number here: only the count needs checking, and
        # count(*) reads no column (the check below read all 67.8M rows back: 5.8 CPU-s at 10M)
        records, padded = scalar(con, f"SELECT count(*) FROM {stg}"), 0
    else:
        # record k <-> the (k + 2)-th start, side by side with the single-threaded scan (a positional
        # join pads the shorter side with NULLs: `_record` / `line` tell a count mismatch)
        record_lines = pa.table({"line": scan.starts[1:]})  # noqa: F841 - read by name in the SQL
        con.register("_record_lines", record_lines)
        try:
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE {stg} AS
                SELECT {cols}, u.line, r._record
                FROM (SELECT *, true AS _record FROM {_csv_records(file, columns)}) r POSITIONAL JOIN _record_lines u
                """)
        finally:
            con.unregister("_record_lines")
        records, padded = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE _record IS NULL OR line IS NULL) FROM {stg}").fetchall()[0]
    if padded or records != scan.records or scalar(con, "SELECT count(*) FROM _csv_rejects"):
        drop_staged(con, stg)
        return None
    if scan.starts is not None:
        con.execute(f"ALTER TABLE {stg} DROP COLUMN _record")
    # same shapes as the general path leaves; `_units` holds the record starts and the line after
    # the last one when a record spans lines (to quote a rejected one whole), else nothing
    con.execute(f"CREATE OR REPLACE TEMP TABLE {stg}_malformed (line BIGINT, reason VARCHAR, raw VARCHAR)")
    con.execute("CREATE OR REPLACE TEMP TABLE _lines (line_no HUGEINT, text VARCHAR)")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _units (record_no BIGINT, line_no HUGEINT, blank BOOLEAN, next_line_no HUGEINT)"
    )
    con.executemany(f"INSERT INTO {LINE_INDEX} VALUES (?, ?, ?)", [(stg, line, off) for line, off in scan.index])
    if scan.starts is not None:
        starts = pa.table({"line_no": np.append(scan.starts, scan.lines + 1)})  # noqa: F841 - read by name in the SQL
        con.register("_record_starts", starts)
        try:
            con.execute("INSERT INTO _units (line_no) SELECT line_no FROM _record_starts")
        finally:
            con.unregister("_record_starts")
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
        SELECT {", ".join(f'r."{c}"' for c in wanted)}, CAST(s.line_no AS BIGINT) AS line
        FROM (SELECT rowid AS k, * FROM _records) r JOIN starts s USING (k)
        ORDER BY line
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {stg}_malformed AS
        SELECT CAST(u.line_no AS BIGINT) AS line, m.message AS reason,
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
    # fast path: read the file once more, keeping only the rejected records' lines: a record runs
    # to the line before the next record's start (`_units_stg_<stg>`, kept when a record spans lines,
    # ends with the line after the file's last) or, with every line a record, is its one line
    # (row_number() OVER () in a single-threaded scan: no table, so no rowid inside the transaction)
    path = fast[0][0]
    spans = (f"SELECT s.line, s.reason, (SELECT CAST(min(u.line_no) AS BIGINT) FROM _units_{stg} u "
             f"WHERE u.line_no > s.line) AS next_line FROM {rejected} s"
             if scalar(con, f"SELECT count(*) > 0 FROM _units_{stg}") else
             f"SELECT line, reason, line + 1 AS next_line FROM {rejected}")
    # the lines' text from the bytes (numpy finds their offsets; DuckDB's line reader took ~2 s per
    # GB for a handful of lines), as DuckDB's line reader gives it: an empty line is NULL and drops
    # out of the record's text
    spans_rows = con.execute(f"SELECT line, next_line FROM ({spans})").fetchall()
    index = con.execute(f"SELECT line, byte_offset FROM {LINE_INDEX} WHERE stg = ?", [stg]).fetchall()
    texts = read_lines(Path(path), sorted({n for line, end in spans_rows for n in range(line, end)}), index=index)
    if texts is not None:
        raws = [(line, "\n".join(t for t in (texts.get(n) for n in range(line, end)) if t) or None)
                for line, end in spans_rows]
        raw_table = pa.table({"line": pa.array([r[0] for r in raws], pa.int64()),  # noqa: F841 - read by name
                              "raw": pa.array([r[1] for r in raws], pa.string())})
        con.execute("CREATE OR REPLACE TEMP TABLE _rejected_raw AS SELECT * FROM raw_table")
        return f"SELECT s.line, s.reason, r.raw FROM {rejected} s LEFT JOIN _rejected_raw r USING (line)"
    lines = _physical_lines(_sql_str(path), store_rejects=False)
    return f"""
        WITH spans AS ({spans}),
        wanted AS (
            SELECT line_no, text
            FROM (SELECT row_number() OVER () AS line_no, text FROM {lines})
            WHERE line_no IN (SELECT unnest(range(line, next_line)) FROM spans)
        )
        SELECT s.line, s.reason, (SELECT string_agg(l.text, chr(10) ORDER BY l.line_no) FROM wanted l
                                  WHERE l.line_no >= s.line AND l.line_no < s.next_line) AS raw
        FROM spans s"""


def read_lines(path: Path, wanted: list[int], chunk: int = 1 << 24,
               index: list[tuple[int, int]] | None = None) -> dict[int, str] | None:
    """Text of the physical lines `wanted` (sorted line numbers, 1 = the first), without the line end;
    "" for an empty one. Only for files `scan_lines` accepted (LF or CRLF ends, no lone CR). None if
    a line is not UTF-8 (the caller then asks DuckDB). `index` ((line, byte offset where it starts),
    from `scan_lines`) lets it start near each wanted line instead of at the top of the file."""
    out: dict[int, bytes] = {}
    if not wanted:
        return {}
    marks = sorted({(1, 0), *(index or ())})
    starts = [m[0] for m in marks]
    groups: dict[int, list[int]] = {}  # the last mark at or before each wanted line -> those lines
    for n in wanted:
        groups.setdefault(bisect.bisect_right(starts, n) - 1, []).append(n)
    buf = bytearray(chunk)
    with path.open("rb", buffering=0) as fh:
        for mark, lines in sorted(groups.items()):
            line, offset = marks[mark]
            fh.seek(offset)
            _read_from(fh, buf, line, offset, lines, out)
    try:
        return {k: v.removesuffix(b"\r").decode("utf-8") for k, v in out.items()}
    except UnicodeDecodeError:
        return None


def _read_from(fh, buf: bytearray, line: int, offset: int, wanted: list[int], out: dict[int, bytes]) -> None:
    """Scan from `offset` (where line `line` starts) until the wanted lines have been read."""
    want = np.asarray(wanted, dtype=np.int64)
    want_set = set(wanted)
    last = int(want[-1])
    start = offset  # absolute offset of the current line's first byte
    pending = b""  # bytes of a wanted line that runs into the next chunk
    while line <= last:
        n = fh.readinto(buf)
        if not n:
            break
        a = np.frombuffer(buf, dtype=np.uint8, count=n)
        nl = np.flatnonzero(a == 10)
        # lines ending in this chunk: line + i ends at nl[i]
        ends = line + np.arange(len(nl))
        for i in np.flatnonzero(np.isin(ends, want)):
            s0 = start - offset if i == 0 else int(nl[i - 1]) + 1
            out[int(ends[i])] = (pending if i == 0 else b"") + bytes(a[max(s0, 0):int(nl[i])])
        if line + len(nl) in want_set:  # the line after the chunk's last newline is wanted: keep its bytes
            s0 = int(nl[-1]) + 1 if len(nl) else max(start - offset, 0)
            pending = (pending if not len(nl) else b"") + bytes(a[s0:n])
        else:
            pending = b""
        if len(nl):
            start = offset + int(nl[-1]) + 1
        line += len(nl)
        offset += n
    if pending and line in want_set:
        out[line] = pending  # the last line, without a line end


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
            drop_staged(con, f"stg_{spec.table}")
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
