"""Validate staged records into accepted tables and `rejects`, set-based in DuckDB.

Rules (sla-semantics.md section 3, data-contract.md): every staged record is either accepted
or lands in `rejects` with a reason naming the field and the value. Identical duplicate rows
count once (they are accepted and collapsed); rows that share a ticket id (invoice id) but
differ are all rejected. `import_log` keeps, per source, rows in = accepted + rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa

from sla.db import scalar
from sla.db import sql_list as _list
from sla.db import sql_literal as _lit
from sla.policy import Policy, term_set_names

TS_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)$"
TS_LOCAL_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
AMOUNT_PATTERN = r"^-?\d{1,10}(\.\d{1,2})?$"
EVENT_KINDS = ("reply", "status", "severity")
REPLY_ACTORS = ("agent", "customer", "system")
LANGUAGES = ("en", "de")






def _shown(values) -> str:
    return ", ".join(str(v) for v in values)


def _q(col: str) -> str:
    """SQL expression quoting a field's value for a reason text."""
    return f"'''' || {col} || ''''"


def _required(col: str) -> str:
    return f"CASE WHEN {col} IS NULL OR trim({col}) = '' THEN '{col} is empty' END"


def _timestamp_check(col: str) -> str:
    return f"""CASE
        WHEN {col} IS NULL OR trim({col}) = '' THEN '{col} is empty'
        WHEN regexp_full_match({col}, '{TS_LOCAL_PATTERN}') THEN '{col} ' || {_q(col)} || ' has no UTC offset (timezone unknown)'
        WHEN NOT regexp_full_match({col}, '{TS_PATTERN}') OR try_cast({col} AS TIMESTAMPTZ) IS NULL
            THEN '{col} ' || {_q(col)} || ' is not an ISO 8601 timestamp'
    END"""


def _date_check(col: str, optional: bool = False) -> str:
    empty = "NULL" if optional else f"'{col} is empty'"
    return f"""CASE
        WHEN {col} IS NULL OR trim({col}) = '' THEN {empty}
        WHEN NOT regexp_full_match({col}, '{DATE_PATTERN}') OR try_cast({col} AS DATE) IS NULL
            THEN '{col} ' || {_q(col)} || ' is not a date (YYYY-MM-DD)'
    END"""


def _in_check(col: str, allowed, label: str | None = None) -> str:
    return (
        f"CASE WHEN {col} IS NULL OR trim({col}) = '' THEN '{label or col} is empty (expected one of {_shown(allowed)})' "
        f"WHEN {col} NOT IN {_list(allowed)} THEN '{label or col} ' || {_q(col)} || ' is not one of {_shown(allowed)}' END"
    )


def _reasons(*checks: str, valid: str | None = None) -> str:
    """The reason text of a row (NULL = accepted). `valid`, if given, is a cheap condition that implies
    every check passes: rows meeting it skip the checks and their string building (issue 18: the
    checks of 67.8M events cost more than reading them). It only has to be sufficient, not necessary,
    because a row that does not meet it gets the full checks."""
    full = "nullif(concat_ws('; ', " + ", ".join(checks) + "), '')"
    return f"CASE WHEN {valid} THEN NULL ELSE {full} END" if valid else full


def _to_second(col: str) -> str:
    """`date_trunc('second', CAST(col AS TIMESTAMPTZ))`, at a quarter of its cost (issue 18).

    date_trunc on a TIMESTAMPTZ goes through ICU in the session's time zone: 1.4 CPU-s per million
    values against 0.3 for flooring the microseconds since the epoch. Both floor to the whole second
    (every zone offset is a whole number of seconds), so the values are the same, also before 1970
    (the `%` below is C-style, negative for a negative dividend, hence the + 1000000).
    """
    us = f"epoch_us(CAST({col} AS TIMESTAMPTZ))"
    return f"make_timestamptz({us} - (({us} % 1000000) + 1000000) % 1000000)"


def _valid_timestamp(col: str) -> str:
    """Implies `_timestamp_check(col)` passes: an offset pattern (so neither empty nor local) that casts."""
    return f"(regexp_full_match({col}, '{TS_PATTERN}') AND try_cast({col} AS TIMESTAMPTZ) IS NOT NULL)"


@dataclass(frozen=True)
class LoadCounts:
    source: str
    rows_in: int
    accepted: int
    rejected: int
    duplicates_collapsed: int


def _row_key(columns: tuple[str, ...], alias: str | None = None) -> str:
    """The values that make two rows identical copies (NULL and chr(0) compare alike, as always)."""
    return ", ".join(f"coalesce({alias + '.' if alias else ''}{c}, chr(0))" for c in columns)


def _copy_columns(columns: tuple[str, ...], alias: str = "s") -> str:
    """Columns for a `_<table>_checked` CREATE ... AS SELECT: `_row_hash` for `_mark_copies`, `is_copy` = false."""
    return f"hash({_row_key(columns, alias)}) AS _row_hash, false AS is_copy"


def _mark_copies(con, table: str, columns: tuple[str, ...], staged: str | None = None) -> None:
    """Set `is_copy` on every row identical to an earlier one (by line); the first is kept.

    Benchmarks F4: numbering all rows in a window (or UPDATE-ing all of them) costs as much as
    validating them. Identical rows have identical hashes, so only the rows whose hash occurs more
    than once (duplicates and rare collisions, a few per million) are compared exactly, on the
    values as staged: `staged` (the stg table, `line` is unique there) when `table` keeps only typed
    values of some columns.
    """
    source = staged or table
    repeated = pa.table({"h": _repeated_hashes(con, table)})  # noqa: F841 - read by name in the SQL
    con.register("_repeated_hashes", repeated)
    try:
        con.execute(
            f"""
            UPDATE {table} SET is_copy = true WHERE line IN ({_later_copies_sql(
                source, columns, f"SELECT line FROM {table} WHERE _row_hash IN (SELECT h FROM _repeated_hashes)")})
            """
        )
    finally:
        con.unregister("_repeated_hashes")


def _repeats(values: np.ndarray) -> np.ndarray:
    """The distinct values occurring more than once in `values` (sorted in place: neighbours)."""
    values.sort()
    return np.unique(values[1:][values[1:] == values[:-1]])


def _later_copies_sql(source: str, columns: tuple[str, ...], candidate_lines: str) -> str:
    """The lines among `candidate_lines` (a query of lines) of `source` whose row is identical to a
    row on an earlier line: compared exactly, on the values as staged, the first one kept."""
    return f"""
        SELECT line FROM (
            SELECT line, row_number() OVER (PARTITION BY {_row_key(columns)} ORDER BY line) AS n
            FROM {source} WHERE line IN ({candidate_lines})
        ) WHERE n > 1"""


def _repeated_hashes(con, table: str, part_rows: int = 16_000_000) -> np.ndarray:
    """The `_row_hash` values that occur more than once in `table`.

    A GROUP BY over 67.8M distinct hashes (10M incidents) spilled and cost 36-50 CPU-s; sorting the
    hashes with numpy costs a few. Done in parts by hash residue (the same hash is always in the same
    part), each at most `part_rows` hashes (~130 MB), so the arrays stay small beside DuckDB's memory.
    """
    rows = scalar(con, f"SELECT count(*) FROM {table}")
    parts = max(1, -(-rows // part_rows))
    found = [np.empty(0, dtype=np.uint64)]
    for k in range(parts):
        where = f"WHERE _row_hash % {parts} = {k}" if parts > 1 else ""
        h = con.execute(f"SELECT _row_hash FROM {table} {where}").fetchnumpy()["_row_hash"]
        found.append(_repeats(np.asarray(h, dtype=np.uint64)))
        del h
    return np.concatenate(found)


def _repeated_in(hashes: np.ndarray, parts: int = 4, chunk: int = 1 << 23) -> np.ndarray:
    """The values occurring more than once in `hashes` (sorted), without reordering it: sorted in
    parts by the low bits (the same value is always in the same part), so only a quarter is copied."""
    found = []
    for k in range(parts):
        part = np.concatenate([c[(c & np.uint64(parts - 1)) == k] for c in
                               (hashes[i:i + chunk] for i in range(0, len(hashes), chunk))] or
                              [np.empty(0, dtype=np.uint64)])
        found.append(_repeats(part))
    return np.sort(np.concatenate(found))


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """values[i] in sorted_set, elementwise (sorted_set small: a binary search each)."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[idx] == values


def _check_streamed(con, table: str, staged: str, columns: tuple[str, ...], select: str,
                    batch_rows: int = 1 << 20) -> None:
    """`table` (line, reason, is_copy) of the rows of `select` (line, reason, _row_hash over `staged`)
    that are rejected or identical copies of an earlier row; accepted rows are the others.

    For the events (67.8M rows at 10M incidents) a checked table with a row per staged row (line,
    reason, hash: ~2.2 GB uncompressed) no longer fit beside the staged text under the 4 GB limit: it
    spilled, and so did every pass over it (issue 18). Here the rows stream past once: numpy keeps the
    hashes (8 bytes a row; the repeated ones found by sorting them in parts, as `_repeated_hashes`
    does) and the few rejected rows; copies are then decided exactly among the rows whose hash
    repeats, on the staged text, as in `_mark_copies`.
    """
    rows = scalar(con, f"SELECT count(*) FROM {staged}")
    hashes = np.empty(rows, dtype=np.uint64)
    # each row's line, to find the rows of a repeated hash without hashing the staged rows again
    # (that cost 17-25 CPU-s at 10M); 4 bytes a line while they fit (the query's rows do not come in
    # line order: the join may build on the staged side)
    lines = np.empty(rows, dtype=np.uint32)
    rejected: list[pa.RecordBatch] = []
    n = 0
    for batch in con.sql(select).to_arrow_reader(batch_rows):
        k = batch.num_rows
        if n + k > len(hashes):  # more rows than staged (cannot happen with unique ticket ids): grow
            hashes = np.resize(hashes, max(n + k, 2 * len(hashes)))
            lines = np.resize(lines, len(hashes))
        hashes[n:n + k] = batch.column("_row_hash").to_numpy(zero_copy_only=False)
        batch_lines = batch.column("line").to_numpy(zero_copy_only=False)
        if k and lines.dtype == np.uint32 and (batch_lines.max() > np.iinfo(np.uint32).max or batch_lines.min() < 0):
            lines = lines.astype(np.int64)
        lines[n:n + k] = batch_lines
        n += k
        reasons = batch.column("reason")
        if reasons.null_count < k:
            rejected.append(batch.select(["line", "reason"]).filter(reasons.is_valid()))
    hashes, lines = hashes[:n], lines[:n]
    schema = pa.schema([("line", pa.int64()), ("reason", pa.string())])
    bad = pa.Table.from_batches([b.cast(schema) for b in rejected], schema=schema)  # noqa: F841 - read by name
    con.register("_rejected_rows", bad)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT line, reason, false AS is_copy FROM _rejected_rows")
    finally:
        con.unregister("_rejected_rows")
    repeated = _repeated_in(hashes)
    wanted = [lines[i:i + (1 << 23)][_member(hashes[i:i + (1 << 23)], repeated)] for i in range(0, n, 1 << 23)]
    del hashes, lines
    candidates = pa.table({"line": np.concatenate(wanted or [np.empty(0)]).astype(np.int64)})  # noqa: F841 - read by name
    con.register("_candidate_lines", candidates)
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _copies AS
            {_later_copies_sql(staged, columns, "SELECT line FROM _candidate_lines")}
            """
        )
    finally:
        con.unregister("_candidate_lines")
    con.execute(f"UPDATE {table} SET is_copy = true WHERE line IN (SELECT line FROM _copies)")
    con.execute(f"INSERT INTO {table} SELECT line, NULL, true FROM _copies WHERE line NOT IN (SELECT line FROM {table})")
    con.execute("DROP TABLE _copies")


TICKET_COLUMNS = ("ticket_id", "customer_id", "subject", "severity", "created_at", "channel")
EVENT_COLUMNS = ("ticket_id", "occurred_at", "kind", "actor", "value")
CONTRACT_COLUMNS = ("customer_id", "customer_name", "tier", "valid_from", "valid_to", "account_manager")
INVOICE_COLUMNS = ("invoice_id", "customer_id", "issued_on", "period_start", "period_end", "amount_eur")
EXCLUSION_COLUMNS = ("ticket_id", "metric", "reason", "approved_by", "approved_at")
EXCLUSION_METRICS = ("first_response", "resolution", "both")


#: `rejects.source` of each staged table when it comes from the canonical CSV export
CSV_LABELS = {"tickets": "tickets.csv", "ticket_events": "ticket_events.csv",
              "contracts": "contracts.csv", "invoices": "invoices.csv", "exclusions": "exclusions.csv"}


def validate(con, policy: Policy, staged: dict[str, int], labels: dict[str, str] | None = None,
             quote_rejected: Callable[[object, str, str], str] | None = None) -> list[LoadCounts]:
    """Turn `stg_*` tables into `tickets`, `ticket_events`, `contracts`, `invoices` and `rejects`.

    `staged` holds the input records per staged table. File sources stage `line` (the line in the
    file) and are quoted from the file; API sources stage `source_ref` (the object, e.g.
    `ticket/42`) and `raw` (the record as received), and their rejects have no line.
    `quote_rejected` is the file source's `TicketSource.rejected_rows_sql`.
    """
    labels = {**CSV_LABELS, **(labels or {})}
    severities = [str(s) for s in policy.severities]
    con.execute(
        "CREATE OR REPLACE TABLE rejects (source VARCHAR, line BIGINT, reason VARCHAR, raw VARCHAR)"
    )

    def reject_malformed(table: str) -> None:
        if scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [f"stg_{table}_malformed"]):
            con.execute(
                f"INSERT INTO rejects SELECT {_lit(labels[table])}, line, 'malformed CSV record: ' || reason, raw "
                f"FROM stg_{table}_malformed ORDER BY line"  # in line order, as every other reject
            )

    def reject_checked(table: str, checked: str) -> None:
        # in line order (the fast path's raw text comes from a join)
        columns = {r[0] for r in con.execute(f"DESCRIBE stg_{table}").fetchall()}
        if "source_ref" in columns:  # an API source staged the record as received (the checked table may not keep it)
            con.execute(f"INSERT INTO rejects SELECT {_lit(labels[table])} || ':' || s.source_ref, NULL, c.reason, s.raw "
                        f"FROM {checked} c JOIN stg_{table} s USING (line) WHERE c.reason IS NOT NULL ORDER BY line")
            return
        if quote_rejected is None:
            raise ValueError(f"{labels[table]}: rejected rows without `raw` need the source's quote_rejected")
        # the few rejected rows once, so that quoting them does not scan the whole table again
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rejected AS "
                    f"SELECT line, reason FROM {checked} WHERE reason IS NOT NULL")
        if scalar(con, "SELECT count(*) FROM _rejected"):
            con.execute(f"INSERT INTO rejects SELECT {_lit(labels[table])}, line, reason, raw "
                        f"FROM ({quote_rejected(con, f'stg_{table}', '_rejected')}) ORDER BY line")
        con.execute("DROP TABLE _rejected")

    # ---- tickets -----------------------------------------------------------------------
    reject_malformed("tickets")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _tickets_checked AS
        SELECT s.*, {_reasons(_required("ticket_id"), _required("customer_id"),
                              _in_check("severity", severities), _timestamp_check("created_at"),
                              valid=f"trim(ticket_id) <> '' AND trim(customer_id) <> '' AND severity IN {_list(severities)} "
                                    f"AND {_valid_timestamp('created_at')}")} AS reason,
               {_copy_columns(TICKET_COLUMNS)}
        FROM stg_tickets s
        """
    )
    _mark_copies(con, "_tickets_checked", TICKET_COLUMNS)
    _reject_conflicts(con, "_tickets_checked", "ticket_id")
    reject_checked("tickets", "_tickets_checked")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE tickets AS
        SELECT ticket_id, customer_id, subject, CAST(severity AS INTEGER) AS severity,
               {_to_second("created_at")} AS created_at, channel, line
        FROM _tickets_checked WHERE reason IS NULL AND NOT is_copy
        ORDER BY created_at, ticket_id
        """
    )
    # the checked tickets (every column, 10M rows: ~1.3 GB uncompressed) are no longer needed: their
    # counts for import_log now, and the memory to the events, which spilled beside them (issue 18)
    counted = {"tickets": _accepted_counts(con, "tickets")}
    con.execute("DROP TABLE _tickets_checked")

    # ---- events --------------------------------------------------------------------------
    reject_malformed("ticket_events")
    statuses = policy.statuses.known
    # accepted for sure: an accepted ticket (so a non-empty id), a time with offset not before its
    # creation, a known kind with a known actor or value
    events_valid = (f"t.ticket_id IS NOT NULL AND regexp_full_match(occurred_at, '{TS_PATTERN}') "
                    f"AND try_cast(occurred_at AS TIMESTAMPTZ) >= t.created_at "
                    f"AND CASE kind WHEN 'reply' THEN actor IN {_list(REPLY_ACTORS)} "
                    f"WHEN 'status' THEN value IN {_list(statuses)} WHEN 'severity' THEN value IN {_list(severities)} "
                    f"ELSE false END")
    # One pass over the staged events; `_events_checked` keeps only the rejected rows and the identical
    # copies (compared exactly on the staged text), the accepted events are then read from the staged
    # ones, in staged order (readers order them).
    _check_streamed(con, "_events_checked", "stg_ticket_events", EVENT_COLUMNS, f"""
        SELECT s.line,
               {_reasons(
            f"CASE WHEN s.ticket_id IS NULL OR trim(s.ticket_id) = '' THEN 'ticket_id is empty' "
            f"WHEN t.ticket_id IS NULL THEN 'ticket_id ' || {_q('s.ticket_id')} || "
            f"' is not an accepted ticket (unknown, or rejected in {labels['tickets']})' END",
            _timestamp_check("occurred_at"),
            _in_check("kind", EVENT_KINDS),
            f"CASE WHEN kind = 'reply' THEN {_in_check('actor', REPLY_ACTORS, 'reply actor')} END",
            f"CASE WHEN kind = 'status' THEN {_in_check('value', statuses, 'status value')} END",
            f"CASE WHEN kind = 'severity' THEN {_in_check('value', severities, 'severity value')} END",
            f"CASE WHEN try_cast(occurred_at AS TIMESTAMPTZ) < t.created_at AND regexp_full_match(occurred_at, '{TS_PATTERN}') "
            f"THEN 'occurred_at ' || {_q('occurred_at')} || ' is before the ticket''s created_at ' || "
            f"strftime(t.created_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') END",
            valid=events_valid,
        )} AS reason,
               hash({_row_key(EVENT_COLUMNS, "s")}) AS _row_hash
        FROM stg_ticket_events s LEFT JOIN tickets t ON t.ticket_id = s.ticket_id
        """)
    reject_checked("ticket_events", "_events_checked")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE ticket_events AS
        SELECT ticket_id, {_to_second("occurred_at")} AS occurred_at, kind, actor,
               nullif(value, '') AS value, line
        FROM stg_ticket_events s
        ANTI JOIN (SELECT line FROM _events_checked WHERE reason IS NOT NULL OR is_copy) d USING (line)
        """
    )

    # ---- contracts -------------------------------------------------------------------------
    reject_malformed("contracts")
    stg_cols = {r[0] for r in con.execute("DESCRIBE stg_contracts").fetchall()}
    has_language = "language" in stg_cols
    has_terms = "terms" in stg_cols
    language = "language" if has_language else "NULL"
    terms = "nullif(trim(terms), '')" if has_terms else "CAST(NULL AS VARCHAR)"
    # optional: the account manager's name, shown beside the address in the customer report
    am_name = "nullif(trim(account_manager_name), '')" if "account_manager_name" in stg_cols else "CAST(NULL AS VARCHAR)"
    cols = CONTRACT_COLUMNS + (("language",) if has_language else ()) + (("terms",) if has_terms else ())
    known_terms = term_set_names(policy)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _contracts_checked AS
        SELECT s.*, {language} AS lang, {terms} AS terms_name, {am_name} AS am_name, {_reasons(
            _required("customer_id"),
            _in_check("tier", list(policy.tiers)),
            _date_check("valid_from"),
            _date_check("valid_to", optional=True),
            "CASE WHEN try_cast(valid_to AS DATE) < try_cast(valid_from AS DATE) THEN 'valid_to ' || "
            + _q("valid_to") + " || ' is before valid_from ' || " + _q("valid_from") + " END",
            (f"CASE WHEN nullif(trim(language), '') IS NOT NULL AND language NOT IN {_list(LANGUAGES)} "
             f"THEN 'language ' || {_q('language')} || ' is not one of {_shown(LANGUAGES)}' END") if has_language else "NULL",
            (f"CASE WHEN nullif(trim(terms), '') IS NOT NULL AND trim(terms) NOT IN {_list(known_terms or [chr(0)])} "
             f"THEN 'terms ' || {_q('terms')} || ' is not a term set of the policy ("
             f"{_shown(known_terms) if known_terms else 'it defines none'})' END") if has_terms else "NULL",
        )} AS reason,
               {_copy_columns(cols)}
        FROM stg_contracts s
        """
    )
    _mark_copies(con, "_contracts_checked", cols)
    # Overlapping contracts of one customer: all of them are rejected (which one is right?).
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _contract_overlaps AS
        SELECT a.line, string_agg(CAST(b.line AS VARCHAR), ', ' ORDER BY b.line) AS other_lines
        FROM _contracts_checked a JOIN _contracts_checked b
          ON a.customer_id = b.customer_id AND a.line <> b.line
         AND a.reason IS NULL AND b.reason IS NULL AND NOT a.is_copy AND NOT b.is_copy
         AND CAST(a.valid_from AS DATE) <= coalesce(try_cast(b.valid_to AS DATE), DATE '9999-12-31')
         AND CAST(b.valid_from AS DATE) <= coalesce(try_cast(a.valid_to AS DATE), DATE '9999-12-31')
        GROUP BY a.line
        """
    )
    con.execute(
        """
        UPDATE _contracts_checked c SET reason = 'contract of customer_id ''' || c.customer_id ||
            ''' overlaps the contract(s) on line ' || o.other_lines
        FROM _contract_overlaps o WHERE o.line = c.line
        """
    )
    reject_checked("contracts", "_contracts_checked")
    con.execute(
        """
        CREATE OR REPLACE TABLE contracts AS
        SELECT customer_id, customer_name, tier, CAST(valid_from AS DATE) AS valid_from,
               CAST(nullif(trim(valid_to), '') AS DATE) AS valid_to, account_manager,
               coalesce(nullif(trim(lang), ''), 'en') AS language, line, terms_name AS terms,
               am_name AS account_manager_name
        FROM _contracts_checked WHERE reason IS NULL AND NOT is_copy
        ORDER BY customer_id, valid_from
        """
    )

    # ---- invoices (optional) ----------------------------------------------------------------
    con.execute(
        """CREATE OR REPLACE TABLE invoices (invoice_id VARCHAR, customer_id VARCHAR, issued_on DATE,
           period_start DATE, period_end DATE, amount_eur DECIMAL(12,2), line BIGINT)"""
    )
    if "invoices" in staged:
        reject_malformed("invoices")
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _invoices_checked AS
            SELECT s.*, {_reasons(
                _required("invoice_id"), _required("customer_id"), _date_check("issued_on"),
                _date_check("period_start"), _date_check("period_end"),
                "CASE WHEN try_cast(period_end AS DATE) < try_cast(period_start AS DATE) THEN 'period_end ' || "
                + _q("period_end") + " || ' is before period_start ' || " + _q("period_start") + " END",
                f"CASE WHEN amount_eur IS NULL OR NOT regexp_full_match(trim(amount_eur), '{AMOUNT_PATTERN}') "
                f"THEN 'amount_eur ' || coalesce({_q('amount_eur')}, 'empty') || ' is not a decimal amount like 17988.00' END",
            )} AS reason,
                   {_copy_columns(INVOICE_COLUMNS)}
            FROM stg_invoices s
            """
        )
        _mark_copies(con, "_invoices_checked", INVOICE_COLUMNS)
        _reject_conflicts(con, "_invoices_checked", "invoice_id")
        reject_checked("invoices", "_invoices_checked")
        con.execute(
            """
            INSERT INTO invoices
            SELECT invoice_id, customer_id, CAST(issued_on AS DATE), CAST(period_start AS DATE),
                   CAST(period_end AS DATE), CAST(trim(amount_eur) AS DECIMAL(12,2)), line
            FROM _invoices_checked WHERE reason IS NULL AND NOT is_copy ORDER BY invoice_id
            """
        )

    # ---- exclusions (optional; sla-semantics.md section 6) -------------------------------------
    con.execute(
        """CREATE OR REPLACE TABLE exclusions (ticket_id VARCHAR, metric VARCHAR, reason VARCHAR,
           approved_by VARCHAR, approved_at TIMESTAMPTZ, line BIGINT)"""
    )
    if "exclusions" in staged:
        reject_malformed("exclusions")
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _exclusions_checked AS
            SELECT s.*, {_reasons(
                f"CASE WHEN s.ticket_id IS NULL OR trim(s.ticket_id) = '' THEN 'ticket_id is empty' "
                f"WHEN t.ticket_id IS NULL THEN 'ticket_id ' || {_q('s.ticket_id')} || "
                f"' is not an accepted ticket (unknown, or rejected in {labels['tickets']})' END",
                _in_check("metric", EXCLUSION_METRICS),
                _required("reason"), _required("approved_by"), _timestamp_check("approved_at"),
            )} AS reason_check,
                   {_copy_columns(EXCLUSION_COLUMNS)}
            FROM stg_exclusions s LEFT JOIN tickets t ON t.ticket_id = s.ticket_id
            """
        )
        # the file's own `reason` column: the check result goes to `reason` as for every other file
        con.execute("ALTER TABLE _exclusions_checked RENAME COLUMN reason TO exclusion_reason")
        con.execute("ALTER TABLE _exclusions_checked RENAME COLUMN reason_check TO reason")
        _mark_copies(con, "_exclusions_checked",
                     tuple("exclusion_reason" if c == "reason" else c for c in EXCLUSION_COLUMNS))
        reject_checked("exclusions", "_exclusions_checked")
        con.execute(
            f"""
            INSERT INTO exclusions
            SELECT ticket_id, metric, trim(exclusion_reason), trim(approved_by),
                   {_to_second("approved_at")}, line
            FROM _exclusions_checked WHERE reason IS NULL AND NOT is_copy ORDER BY ticket_id, approved_at, line
            """
        )

    return _write_import_log(con, staged, labels, counted)


def _reject_conflicts(con, table: str, key: str) -> None:
    """Reject rows sharing `key` but differing (identical copies, `is_copy`, are counted once)."""
    con.execute(
        f"""
        UPDATE {table} t SET reason = concat_ws('; ', t.reason,
            '{key} ''' || t.{key} || ''' appears with different values on lines ' || c.lines)
        FROM (
            SELECT {key}, string_agg(CAST(line AS VARCHAR), ', ' ORDER BY line) AS lines
            FROM {table} WHERE NOT is_copy AND {key} IN (
                -- the ids first (a count per id), the line lists only for them: a list state for
                -- each of 10M ids cost more than the rest of the tickets' checks
                SELECT {key} FROM {table} WHERE NOT is_copy AND {key} IS NOT NULL AND trim({key}) <> ''
                GROUP BY {key} HAVING count(*) > 1)
            GROUP BY {key}
        ) c WHERE c.{key} = t.{key}
        """
    )
    # copies of a conflicting row are rejected too: every row carrying that id
    con.execute(f"UPDATE {table} SET is_copy = false WHERE is_copy AND reason IS NOT NULL")


#: checked tables that keep only the rejected rows and the identical copies (`_check_streamed`)
EXCEPTIONS_ONLY = {"events": "stg_ticket_events"}  # the checked table's name -> its staged table


def _accepted_counts(con, checked: str) -> tuple[int, int]:
    """(identical copies, other rows) among the accepted rows of `_<checked>_checked`."""
    copies, kept = con.execute(
        f"SELECT count(*) FILTER (WHERE is_copy), count(*) FILTER (WHERE NOT is_copy) "
        f"FROM _{checked}_checked WHERE reason IS NULL").fetchall()[0]
    if checked in EXCEPTIONS_ONLY:  # the checked table holds the rejected rows and copies only
        kept = (scalar(con, f"SELECT count(*) FROM {EXCEPTIONS_ONLY[checked]}")
                - scalar(con, f"SELECT count(*) FROM _{checked}_checked"))
    return copies, kept


def _write_import_log(con, staged: dict[str, int], labels: dict[str, str],
                      counted: dict[str, tuple[int, int]] | None = None) -> list[LoadCounts]:
    """`counted`: `_accepted_counts` of checked tables already dropped."""
    con.execute(
        """CREATE TABLE IF NOT EXISTS import_log (loaded_at TIMESTAMPTZ, source VARCHAR, rows_in BIGINT,
           accepted BIGINT, rejected BIGINT, duplicates_collapsed BIGINT)"""
    )
    result = []
    for staged_table, checked in (("tickets", "tickets"), ("ticket_events", "events"),
                                  ("contracts", "contracts"), ("invoices", "invoices"),
                                  ("exclusions", "exclusions")):
        if staged_table not in staged:
            continue
        source = labels[staged_table]
        rejected = scalar(con, "SELECT count(*) FROM rejects WHERE source = ? OR starts_with(source, ?)",
                          [source, source + ":"])
        # identical copies count as accepted only when valid: a copy of a rejected row is in `rejects`
        # already (connector fuzzing: two identical invalid events were counted twice -> AssertionError)
        copies, kept = (counted or {}).get(checked) or _accepted_counts(con, checked)
        counts = LoadCounts(source, staged[staged_table], kept + copies, rejected, copies)
        if counts.rows_in != counts.accepted + counts.rejected:
            raise AssertionError(f"{source}: {counts.rows_in} rows in but {counts.accepted} accepted + "
                                 f"{counts.rejected} rejected: a row was lost")
        con.execute("INSERT INTO import_log VALUES (now(), ?, ?, ?, ?, ?)",
                    [source, counts.rows_in, counts.accepted, counts.rejected, copies])
        result.append(counts)
    for t in ("tickets", "events", "contracts", "invoices", "exclusions"):
        con.execute(f"DROP TABLE IF EXISTS _{t}_checked")
    return result
