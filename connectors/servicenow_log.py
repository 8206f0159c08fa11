"""ServiceNow incident event log -> canonical ticket export.

Source: the UCI "Incident management process enriched event log" (Amaral,
Fantinato and Peres 2018), one CSV row per update of an incident, see
/work/shared/data/README.md.  Target: the canonical export of
docs/data-contract.md part A (tickets.csv, ticket_events.csv, contracts.csv).

Every mapping decision, and why, is in docs/real-data.md.  The conversion is
set-based DuckDB SQL over the gzipped CSV; Python only validates arguments,
checks the header and collects the counts.

Nothing disappears silently: the returned dict counts every source row and
every source incident, and these identities hold (tests check them)::

    source_rows      = rows_without_number + rows_not_selected + selected_rows
    selected_rows    = rows_dropped_bad_update + rows_dropped_with_incident + rows_mapped
    rows_mapped      = rows_with_events + rows_without_events
    source_incidents = incidents_not_selected + selected_incidents
    selected_incidents = tickets_written + incidents_dropped_no_valid_update
                       + incidents_dropped_no_opened_at + incidents_dropped_no_priority
                       + incidents_dropped_no_location
    events_written   = reply_events + status_events + severity_events
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from sla.db import sql_literal as _lit

__all__ = ["servicenow_to_canonical", "SOURCE_COLUMNS", "STATUS_MAP", "CHANNEL_MAP"]

#: Columns of the source file, in order.  The file's header has two typos kept
#: as-is upstream: ``ident_state`` (= incident_state) and ``category`` twice;
#: the second ``category`` is ServiceNow's subcategory, renamed here.
SOURCE_COLUMNS: tuple[str, ...] = (
    "number", "ident_state", "active", "reassignment_count", "reopen_count",
    "sys_mod_count", "made_sla", "caller_id", "opened_by", "opened_at",
    "sys_created_by", "sys_created_at", "sys_updated_by", "sys_updated_at",
    "contact_type", "location", "category", "subcategory", "u_symptom", "cmdb_ci",
    "impact", "urgency", "priority", "assignment_group", "assigned_to", "knowledge",
    "u_priority_confirmation", "notify", "problem_id", "rfc", "vendor", "caused_by",
    "closed_code", "resolved_by", "resolved_at", "closed_at",
)
_EXPECTED_HEADER = tuple("category" if c == "subcategory" else c for c in SOURCE_COLUMNS)

#: ServiceNow incident state -> canonical status.  Anything else (the log has
#: five rows with state ``-100``) carries no status information: the row is
#: kept for ordering/priority, no status event is emitted, counted as
#: ``rows_unknown_state``.
STATUS_MAP: dict[str, str] = {
    "New": "new",
    "Active": "open",
    "Awaiting User Info": "pending",
    "Awaiting Vendor": "on_hold",
    "Awaiting Problem": "on_hold",
    "Awaiting Evidence": "on_hold",
    "Resolved": "solved",
    "Closed": "closed",
}

#: lower-cased contact_type -> canonical channel.  Unlisted values are kept,
#: lower-cased with spaces as underscores (the channel is informational).
CHANNEL_MAP: dict[str, str] = {
    "phone": "phone",
    "ivr": "phone",           # interactive voice response = the phone line
    "email": "email",
    "self service": "web",    # the self-service portal
    "direct opening": "web",  # opened by the user directly in the ServiceNow UI
    "chat": "chat",
    "web": "web",
    "video": "video",
}

TIER_SPLIT = (("professional", 50), ("enterprise", 85), ("gold", 100))  # cumulative %
ACCOUNT_MANAGER = "account.manager@example.com"
TICKET_PREFIX = "INC"
CUSTOMER_PREFIX = "LOC-"
ACTOR_PREFIX = "USR-"
_TS_FORMATS = ["%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S"]




def _read_header(src: Path) -> tuple[str, ...]:
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rb") as raw:
        line = io.TextIOWrapper(raw, encoding="utf-8", newline="").readline()
    return tuple(c.strip().strip('"') for c in line.rstrip("\r\n").split(","))


def _case(expr: str, mapping: dict[str, str], default: str) -> str:
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in mapping.items())
    return f"CASE {expr} {whens} ELSE {default} END"


def servicenow_to_canonical(src: str | Path, out_dir: str | Path, *, source_timezone: str = "Europe/Berlin",
                            limit_incidents: int | None = None) -> dict[str, int]:
    """Convert the ServiceNow incident event log at ``src`` to the canonical export.

    Writes ``tickets.csv``, ``ticket_events.csv`` and ``contracts.csv`` into
    ``out_dir`` (created if missing, files overwritten) and returns the counts
    described in the module docstring.

    ``source_timezone``: IANA zone in which the log's naive local timestamps
    are read (the export carries no offset; see docs/real-data.md).
    ``limit_incidents``: keep only the first N incident numbers in sorted
    order (deterministic subset for fast tests); None = all.
    """
    src = Path(src)
    out = Path(out_dir)
    if not src.is_file():
        raise FileNotFoundError(f"ServiceNow log not found: {src}")
    try:
        ZoneInfo(source_timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"source_timezone: unknown IANA time zone {source_timezone!r}") from exc
    if limit_incidents is not None and (isinstance(limit_incidents, bool) or not isinstance(limit_incidents, int)
                                        or limit_incidents < 0):
        raise ValueError(f"limit_incidents must be a non-negative int or None, got {limit_incidents!r}")
    header = _read_header(src)
    if header != _EXPECTED_HEADER:
        raise ValueError(f"{src}: unexpected header {header!r}; expected {_EXPECTED_HEADER!r}")
    out.mkdir(parents=True, exist_ok=True)

    tz = _lit(source_timezone)
    limit_sql = "" if limit_incidents is None else f"LIMIT {int(limit_incidents)}"
    columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in SOURCE_COLUMNS) + "}"
    fmts = "[" + ", ".join(_lit(f) for f in _TS_FORMATS) + "]"
    status_case = _case("state", STATUS_MAP, "NULL")
    channel_case = _case("lower(ct)", CHANNEL_MAP, "replace(lower(ct), ' ', '_')")
    tier_case = "CASE " + " ".join(
        f"WHEN bucket < {cum} THEN {_lit(name)}" for name, cum in TIER_SPLIT[:-1]
    ) + f" ELSE {_lit(TIER_SPLIT[-1][0])} END"

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET preserve_insertion_order = true")
        # ISO 8601 with a +HH:MM offset, in the source zone, for a TIMESTAMPTZ.
        con.execute(f"""
            CREATE MACRO local_of(t) AS timezone({tz}, t);
            CREATE MACRO off_s(t) AS CAST(round(epoch(timezone({tz}, t)) - epoch(t)) AS BIGINT);
            CREATE MACRO iso(t) AS strftime(timezone({tz}, t), '%Y-%m-%dT%H:%M:%S')
                || CASE WHEN off_s(t) < 0 THEN '-' ELSE '+' END
                || lpad(CAST(abs(off_s(t)) // 3600 AS VARCHAR), 2, '0') || ':'
                || lpad(CAST((abs(off_s(t)) % 3600) // 60 AS VARCHAR), 2, '0');
            -- naive local wall time -> instant; ICU: a time in the spring-forward gap
            -- moves forward by the gap, an ambiguous autumn time takes standard time.
            CREATE MACRO inst(x) AS timezone({tz}, x);
            CREATE MACRO in_gap(x) AS x IS NOT NULL AND timezone({tz}, timezone({tz}, x)) <> x;
            CREATE MACRO ambiguous(x) AS x IS NOT NULL AND (
                timezone({tz}, timezone({tz}, x) - INTERVAL 1 HOUR) = x
                OR timezone({tz}, timezone({tz}, x) + INTERVAL 1 HOUR) = x);
            CREATE MACRO clean(v) AS CASE WHEN trim(v) IN ('', '?') THEN NULL ELSE trim(v) END;
        """)
        # 1. raw rows with their source line number (header = line 1).
        con.execute(f"""
            CREATE TABLE raw AS
            SELECT row_number() OVER () + 1 AS line, *
            FROM read_csv({_lit(str(src))}, header = true, columns = {columns},
                          delim = ',', quote = '"', escape = '"', auto_detect = false)
        """)
        # 2. deterministic subset: first N incident numbers in sorted order.
        con.execute(f"""
            CREATE TABLE sel AS
            SELECT number FROM (SELECT DISTINCT clean(number) AS number FROM raw WHERE clean(number) IS NOT NULL)
            ORDER BY number {limit_sql}
        """)
        # 3. parse the selected rows.
        con.execute(f"""
            CREATE TABLE p AS
            SELECT r.line, clean(r.number) AS number,
                   try_cast(clean(r.sys_mod_count) AS INTEGER) AS mod,
                   try_strptime(clean(r.sys_updated_at), {fmts}) AS upd_local,
                   try_strptime(clean(r.opened_at), {fmts}) AS open_local,
                   clean(r.ident_state) AS state,
                   CASE WHEN try_cast(clean(r.priority) AS INTEGER) BETWEEN 1 AND 4
                        THEN try_cast(clean(r.priority) AS INTEGER) END AS prio,
                   clean(r.location) AS loc, clean(r.contact_type) AS ct,
                   clean(r.category) AS cat, clean(r.subcategory) AS subcat, clean(r.u_symptom) AS symptom,
                   clean(r.sys_updated_by) AS updated_by
            FROM raw r JOIN sel s ON clean(r.number) = s.number
        """)
        # 4. usable update rows, in the incident's update order:
        #    sys_mod_count, then sys_updated_at, then source line.
        con.execute("""
            CREATE TABLE g AS
            SELECT *, row_number() OVER (PARTITION BY number ORDER BY mod, upd_local, line) AS ord,
                      count(*) OVER (PARTITION BY number, mod) > 1 AS dup_mod
            FROM p WHERE mod IS NOT NULL AND upd_local IS NOT NULL
        """)
        # 5. incidents: created_at/severity as at the first update, customer, subject and
        #    channel as the latest known value (the record's current state).
        con.execute("""
            CREATE TABLE inc AS
            SELECT s.number,
                   count(g.line) AS n_rows,
                   arg_min(g.open_local, g.ord) FILTER (WHERE g.open_local IS NOT NULL) AS opened,
                   arg_min(g.prio, g.ord) FILTER (WHERE g.prio IS NOT NULL) AS sev0,
                   arg_max(g.loc, g.ord) FILTER (WHERE g.loc IS NOT NULL) AS loc,
                   arg_max(g.ct, g.ord) FILTER (WHERE g.ct IS NOT NULL) AS ct,
                   arg_max(g.cat, g.ord) FILTER (WHERE g.cat IS NOT NULL) AS cat,
                   arg_max(g.subcat, g.ord) FILTER (WHERE g.subcat IS NOT NULL) AS subcat,
                   arg_max(g.symptom, g.ord) FILTER (WHERE g.symptom IS NOT NULL) AS symptom
            FROM sel s LEFT JOIN g USING (number)
            GROUP BY s.number
        """)
        con.execute("""
            ALTER TABLE inc ADD COLUMN drop_reason VARCHAR;
            UPDATE inc SET drop_reason = CASE
                WHEN n_rows = 0 THEN 'no_valid_update'
                WHEN opened IS NULL THEN 'no_opened_at'
                WHEN sev0 IS NULL THEN 'no_priority'
                WHEN loc IS NULL THEN 'no_location'
            END;
        """)
        # 6. kept rows with instants; an update before opened_at is clamped to
        #    opened_at, and occurred_at never goes back in update order (running max),
        #    so sorting by time (ties: file line order) reproduces sys_mod_count order.
        con.execute(f"""
            CREATE TABLE k AS
            WITH base AS (
                SELECT g.*, inst(i.opened) AS created, inst(g.upd_local) AS upd,
                       {status_case} AS st
                FROM g JOIN inc i USING (number) WHERE i.drop_reason IS NULL
            ), c AS (
                SELECT *, greatest(upd, created) AS occ0 FROM base
            ), w AS (
                SELECT *,
                       max(occ0) OVER (PARTITION BY number ORDER BY ord
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS occ,
                       last_value(st IGNORE NULLS) OVER (PARTITION BY number ORDER BY ord
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS st_ff,
                       last_value(prio IGNORE NULLS) OVER (PARTITION BY number ORDER BY ord
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS prio_ff
                FROM c
            ), l AS (
                SELECT *,
                       lag(st_ff) OVER (PARTITION BY number ORDER BY ord) AS prev_st,
                       lag(prio_ff) OVER (PARTITION BY number ORDER BY ord) AS prev_prio
                FROM w
            )
            SELECT *,
                   st IS NOT NULL AND st IS DISTINCT FROM prev_st AS emit_status,
                   prio IS NOT NULL AND prev_prio IS NOT NULL AND prio <> prev_prio AS emit_sev,
                   ord = min(ord) FILTER (WHERE st_ff IS NOT NULL AND st_ff <> 'new')
                         OVER (PARTITION BY number) AS emit_reply
            FROM l
        """)
        con.execute(f"""
            CREATE TABLE ev AS
            SELECT number, ord, sub, occ, kind, actor, value FROM (
                SELECT number, ord, 0 AS sub, occ, 'reply' AS kind, 'agent' AS actor,
                       CAST(NULL AS VARCHAR) AS value FROM k WHERE emit_reply
                UNION ALL
                SELECT number, ord, 1, occ, 'status', coalesce({_lit(ACTOR_PREFIX)} || updated_by, 'unknown'), st
                FROM k WHERE emit_status
                UNION ALL
                SELECT number, ord, 2, occ, 'severity', coalesce({_lit(ACTOR_PREFIX)} || updated_by, 'unknown'),
                       CAST(prio AS VARCHAR)
                FROM k WHERE emit_sev
            )
        """)
        con.execute(f"""
            CREATE TABLE tickets AS
            SELECT {_lit(TICKET_PREFIX)} || number AS ticket_id,
                   {_lit(CUSTOMER_PREFIX)} || loc AS customer_id,
                   coalesce(nullif(concat_ws(' / ', 'Category ' || cat, 'Subcategory ' || subcat,
                                             'Symptom ' || symptom), ''), 'Uncategorised incident') AS subject,
                   sev0 AS severity,
                   inst(opened) AS created,
                   {channel_case} AS channel,
                   loc, opened
            FROM inc WHERE drop_reason IS NULL
        """)
        con.execute(f"""
            CREATE TABLE contracts AS
            WITH cust AS (
                SELECT customer_id, any_value(loc) AS loc FROM tickets GROUP BY customer_id
            ), b AS (
                SELECT *, CAST(md5_number(customer_id) % 100 AS INTEGER) AS bucket FROM cust
            )
            SELECT customer_id, 'Location ' || loc AS customer_name, {tier_case} AS tier,
                   (SELECT make_date(CAST(year(min(opened)) AS BIGINT) - 1, 1, 1) FROM tickets) AS valid_from,
                   CAST(NULL AS DATE) AS valid_to,
                   {_lit(ACCOUNT_MANAGER)} AS account_manager
            FROM b
        """)

        def copy(query: str, name: str) -> None:
            con.execute(f"COPY ({query}) TO {_lit(str(out / name))} "
                        "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', NEW_LINE '\\n')")

        copy("""SELECT ticket_id, customer_id, subject, severity, iso(created) AS created_at, channel
                FROM tickets ORDER BY ticket_id""", "tickets.csv")
        copy(f"""SELECT {_lit(TICKET_PREFIX)} || number AS ticket_id, iso(occ) AS occurred_at, kind, actor, value
                 FROM ev ORDER BY number, ord, sub""", "ticket_events.csv")
        copy("""SELECT customer_id, customer_name, tier, strftime(valid_from, '%Y-%m-%d') AS valid_from,
                       CAST(NULL AS VARCHAR) AS valid_to, account_manager
                FROM contracts ORDER BY customer_id""", "contracts.csv")

        counts: dict[str, int] = {}

        def q(name: str, sql: str) -> None:
            counts[name] = int(con.execute(sql).fetchone()[0] or 0)

        q("source_rows", "SELECT count(*) FROM raw")
        q("source_incidents", "SELECT count(DISTINCT clean(number)) FROM raw")
        q("rows_without_number", "SELECT count(*) FROM raw WHERE clean(number) IS NULL")
        q("selected_incidents", "SELECT count(*) FROM sel")
        counts["incidents_not_selected"] = counts["source_incidents"] - counts["selected_incidents"]
        q("selected_rows", "SELECT count(*) FROM p")
        counts["rows_not_selected"] = counts["source_rows"] - counts["rows_without_number"] - counts["selected_rows"]
        q("rows_dropped_bad_update", "SELECT count(*) FROM p WHERE mod IS NULL OR upd_local IS NULL")
        for reason in ("no_valid_update", "no_opened_at", "no_priority", "no_location"):
            q(f"incidents_dropped_{reason}", f"SELECT count(*) FROM inc WHERE drop_reason = {_lit(reason)}")
        q("rows_dropped_with_incident",
          "SELECT coalesce(sum(n_rows), 0) FROM inc WHERE drop_reason IS NOT NULL")
        q("tickets_written", "SELECT count(*) FROM tickets")
        q("rows_mapped", "SELECT count(*) FROM k")
        q("rows_with_events", "SELECT count(*) FROM k WHERE emit_status OR emit_sev OR emit_reply")
        counts["rows_without_events"] = counts["rows_mapped"] - counts["rows_with_events"]
        q("rows_unknown_state", "SELECT count(*) FROM k WHERE st IS NULL")
        q("rows_unknown_priority", "SELECT count(*) FROM k WHERE prio IS NULL")
        q("rows_duplicate_mod_count", "SELECT count(*) FROM k WHERE dup_mod")
        q("rows_clamped_to_opened_at", "SELECT count(*) FROM k WHERE upd < created")
        q("rows_lifted_to_previous_update", "SELECT count(*) FROM k WHERE occ > occ0")
        q("rows_updated_at_in_dst_gap", "SELECT count(*) FROM k WHERE in_gap(upd_local)")
        q("rows_updated_at_dst_ambiguous", "SELECT count(*) FROM k WHERE ambiguous(upd_local)")
        q("tickets_opened_at_in_dst_gap", "SELECT count(*) FROM tickets WHERE in_gap(opened)")
        q("tickets_opened_at_dst_ambiguous", "SELECT count(*) FROM tickets WHERE ambiguous(opened)")
        q("events_written", "SELECT count(*) FROM ev")
        q("reply_events", "SELECT count(*) FROM ev WHERE kind = 'reply'")
        q("status_events", "SELECT count(*) FROM ev WHERE kind = 'status'")
        q("severity_events", "SELECT count(*) FROM ev WHERE kind = 'severity'")
        q("events_clamped_to_created_at", "SELECT count(*) FROM ev JOIN k USING (number, ord) WHERE k.upd < k.created")
        q("events_lifted_to_previous_update", "SELECT count(*) FROM ev JOIN k USING (number, ord) WHERE k.occ > k.occ0")
        q("tickets_without_reply", "SELECT count(*) FROM tickets t WHERE NOT EXISTS "
          f"(SELECT 1 FROM ev WHERE {_lit(TICKET_PREFIX)} || ev.number = t.ticket_id AND kind = 'reply')")
        q("reopen_events", "SELECT count(*) FROM k WHERE emit_status AND prev_st IN ('solved', 'closed') "
          "AND st NOT IN ('solved', 'closed')")
        q("tickets_reopened", "SELECT count(DISTINCT number) FROM k WHERE emit_status "
          "AND prev_st IN ('solved', 'closed') AND st NOT IN ('solved', 'closed')")
        q("contracts_written", "SELECT count(*) FROM contracts")
        for name, _ in TIER_SPLIT:
            q(f"contracts_{name}", f"SELECT count(*) FROM contracts WHERE tier = {_lit(name)}")
        return counts
    finally:
        con.close()
