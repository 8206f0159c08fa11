"""Incremental metrics: recompute only the incidents whose figures can have changed.

A full computation of `incident_sla` reads every ticket's history. After an import (or a sync)
usually only a few histories changed, so the metrics step recomputes just those incidents (and
the ones whose figures depend on them or on the cut-off) and replaces their rows; the result is
identical to a full recompute (tests/sla/test_incremental.py compares every table on random
change sets). The rules:

- **What changed** is recorded by the import, in the same transaction that replaces the input
  tables: a fingerprint per ticket (its row, the multiset of its events and its exclusions, i.e.
  every input column incident_sla.sql reads) and per customer (its contracts' tier, dates and term
  set) is compared with the previous import's; new, modified and removed tickets and customers
  are added to `metrics_pending` until a metrics run consumes them.
- **What depends on it**: the quota rank (`quota_rank`, `over_quota`) of an incident counts the
  incidents of its customer, month and tier created before it (then by ticket id). A ticket that is
  new, removed, or whose customer or creation time changed (kind `ticket`) recomputes itself and
  re-ranks the incidents ranked after it in its customer-month, before and after the change (see
  Recompute: they are only ranked); a ticket with
  only new or changed events, severity or exclusions (kind `history`) recomputes itself; a changed
  contract recomputes every incident of its customer.
- **The cut-off**: when `as_of` moves (from the one stored in `metrics_state`), incidents running
  at the old cut-off (unresolved), incidents with an event or an exclusion approval between the old
  and the new cut-off, and incidents created in between (re-ranking those ranked after them) are
  recomputed; every other row only gets the new `as_of`.
- **Ranks**: incident_sla.sql ranks the scope's incidents over the incidents of their
  customer-months from the month's first seed on (`metrics_rank_from`); the incidents before it
  keep their ranks, and each tier's numbering continues after their count (`metrics_rank_offsets`).
  A scope incident that no seed precedes in its customer-month (a `history` ticket, a running one)
  keeps its previous rank (`metrics_kept_ranks`), so its month need not be read.
- **Global inputs** (the policy with all its versions, the business calendar with its holidays and
  range, and the rules themselves: incident_sla.sql and monthly.sql) are fingerprinted in
  `metrics_state`; when one changes, the step recomputes everything and says why. So does it when
  there is no earlier computation, when the input or output tables were written by something else
  than the import and this step (their row counts disagree with what was recorded), or when the
  scope exceeds FULL_SHARE of the incidents (a full run is then as fast).
- **Recompute** runs incident_sla.sql itself over a scope table (`metrics_scope`) with its output
  tables in a schema of their own; their rows replace the recomputed incidents' rows of
  `incident_sla`, `incident_clock_segments`, `incident_exclusions` and `data_warnings`. An incident
  in the scope for its rank alone (`metrics_rank_only`: ordered after a seed, nothing of its own
  changed, not touched by the cut-off) is only ranked: its row keeps every figure but `quota_rank`
  and `over_quota` (from the new rank, by the rules' own macro), and its other tables' rows stay.
  The monthly tables are rebuilt, by monthly.sql over those months' incidents, for the
  customer-months whose rows changed in a column monthly.sql reads (MONTHLY_COLUMNS); every other
  monthly row takes the new cut-off.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sla.db import read_sql, scalar, tables_exist
from sla.policy import Policy

#: a scope larger than this share of the incidents is computed in full (no slower, and simpler)
FULL_SHARE = 0.3
#: the schema an incremental run writes incident_sla.sql's output tables into
DELTA_SCHEMA = "_metrics_delta"
#: the schema holding the affected months' incidents while monthly.sql aggregates them
MONTHS_SCHEMA = "_metrics_months"
#: tables incident_sla.sql writes (one row set per ticket), replaced row-wise by an incremental run
TICKET_TABLES = ("incident_sla", "incident_clock_segments", "incident_exclusions", "data_warnings")
MONTHLY_TABLES = (("monthly_sla", "monthly_sla_view"), ("monthly_quota", "monthly_quota_view"))
#: the columns of incident_sla that monthly.sql reads (an incremental run gives it only these, so a
#: rule reading another column fails loudly instead of going stale; the property test covers it)
MONTHLY_COLUMNS = ("month", "customer_id", "tier", "first_response_severity", "first_response_met",
                   "first_response_target_seconds", "first_response_business_seconds", "first_response_excluded",
                   "resolution_severity", "resolution_met", "resolution_target_seconds", "resolution_business_seconds",
                   "resolution_excluded", "quota", "over_quota", "resolved_at", "as_of")


@dataclass(frozen=True)
class MetricsRun:
    """What a metrics step did: `mode` is "full" or "incremental"; `reason` says why it was full;
    `reranked` counts the incidents an incremental run only gave a new quota rank."""

    incidents: int
    mode: str
    recomputed: int
    reason: str = ""
    reranked: int = 0

    def describe(self) -> str:
        if self.mode == "incremental":
            reranked = f" and re-ranked {self.reranked:,}" if self.reranked else ""
            return f"incremental: recomputed {self.recomputed:,}{reranked} of {self.incidents:,} incidents"
        return f"full recompute of {self.incidents:,} incidents ({self.reason})"


# ------------------------------------------------------------------------------------- import side
#: the new ticket fingerprints, a table of the warehouse until they replace `ticket_fingerprints`
#: (same transaction): written once, compressed, instead of a temp table copied into it (10M
#: tickets: the copy cost 4.7 CPU-s of 15, issue 18)
NEW_TICKET_FPS = "_ticket_fingerprints_new"


def _fingerprint_tables(con) -> None:
    """`NEW_TICKET_FPS` (ticket_id, key_fp, fp) and `_fp_customers` (customer_id, fp) of the current
    input tables.

    Event rows are combined by a sum of row hashes (an order-free multiset: the order of rows carries
    no meaning, sla-semantics.md section 3, and identical rows were collapsed by the import);
    exclusions by their rank in (approved_at, line) order, the tie-break incident_sla.sql uses.
    """
    con.execute(f"""
        CREATE OR REPLACE TABLE {NEW_TICKET_FPS} AS
        WITH ev AS (
            SELECT ticket_id, sum(hash(occurred_at, kind, actor, value)) AS h, count(*) AS n
            FROM ticket_events GROUP BY ticket_id
        ), ex AS (
            SELECT ticket_id, sum(hash(metric, reason, approved_by, approved_at, k)) AS h
            FROM (SELECT *, row_number() OVER (PARTITION BY ticket_id ORDER BY approved_at, line) AS k
                  FROM exclusions)
            GROUP BY ticket_id
        )
        SELECT t.ticket_id, hash(t.customer_id, t.created_at) AS key_fp,
               hash(t.customer_id, t.severity, t.created_at, ev.h, ev.n, ex.h) AS fp
        FROM tickets t LEFT JOIN ev USING (ticket_id) LEFT JOIN ex USING (ticket_id)
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _fp_customers AS
        SELECT customer_id, sum(hash(tier, valid_from, valid_to, terms)) AS fp
        FROM contracts GROUP BY customer_id
    """)


def _ensure_tracking_tables(con) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS metrics_pending (kind VARCHAR, id VARCHAR)")
    con.execute("""CREATE TABLE IF NOT EXISTS metrics_inputs (tickets BIGINT, events BIGINT, contracts BIGINT,
                   exclusions BIGINT, recorded_at TIMESTAMPTZ)""")


def _input_counts(con) -> tuple[int, int, int, int]:
    return tuple(con.execute(
        "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM ticket_events), "
        "(SELECT count(*) FROM contracts), (SELECT count(*) FROM exclusions)").fetchall()[0])


def record_input_changes(con) -> int:
    """After the import replaced the input tables (same transaction): fingerprint them, add what
    differs from the previous import to `metrics_pending`; returns the number of changed tickets
    (-1 when there was no earlier fingerprint: the next metrics run is full)."""
    _ensure_tracking_tables(con)
    _fingerprint_tables(con)
    if tables_exist(con, "ticket_fingerprints", "customer_fingerprints"):
        con.execute(f"""
            INSERT INTO metrics_pending
            SELECT CASE WHEN n.key_fp IS DISTINCT FROM o.key_fp THEN 'ticket' ELSE 'history' END,
                   coalesce(n.ticket_id, o.ticket_id)
            FROM {NEW_TICKET_FPS} n FULL OUTER JOIN ticket_fingerprints o USING (ticket_id)
            WHERE n.fp IS DISTINCT FROM o.fp
            UNION ALL
            SELECT 'customer', customer_id FROM (
                SELECT coalesce(n.customer_id, o.customer_id) AS customer_id
                FROM _fp_customers n FULL OUTER JOIN customer_fingerprints o USING (customer_id)
                WHERE n.fp IS DISTINCT FROM o.fp)
        """)
        changed = scalar(con, "SELECT count(*) FROM metrics_pending WHERE kind IN ('ticket', 'history')")
    else:
        con.execute("INSERT INTO metrics_pending VALUES ('full', 'the input was fingerprinted for the first time')")
        changed = -1
    _store_fingerprints(con)
    return changed


def _fingerprints_current(con) -> bool:
    """The stored fingerprints describe the input tables (as far as row counts can tell)."""
    return (tables_exist(con, "ticket_fingerprints", "customer_fingerprints")
            and con.execute("SELECT tickets, events, contracts, exclusions FROM metrics_inputs").fetchall()
            == [_input_counts(con)])


def _store_fingerprints(con) -> None:
    con.execute("DROP TABLE IF EXISTS ticket_fingerprints")
    con.execute(f"ALTER TABLE {NEW_TICKET_FPS} RENAME TO ticket_fingerprints")
    con.execute("CREATE OR REPLACE TABLE customer_fingerprints AS SELECT * FROM _fp_customers")
    con.execute("DELETE FROM metrics_inputs")
    con.execute("INSERT INTO metrics_inputs SELECT *, now() FROM (SELECT ?, ?, ?, ?)", list(_input_counts(con)))
    con.execute("DROP TABLE _fp_customers")


# ------------------------------------------------------------------------------------- metrics side
def rules_fingerprint() -> str:
    """The rules a computation ran: the text of incident_sla.sql and monthly.sql (comments included)."""
    return hashlib.sha256((read_sql("incident_sla.sql") + read_sql("monthly.sql")).encode()).hexdigest()


def basis(con, policy: Policy) -> dict[str, str]:
    """Fingerprints of the global inputs of a computation (after the policy and calendar tables
    were written): a change of any of them makes the next run full."""
    rules = rules_fingerprint()
    pol = hashlib.sha256(json.dumps([v.model_dump(mode="json") for v in policy.versions],
                                    sort_keys=True).encode()).hexdigest()
    cal = con.execute("SELECT count(*)::VARCHAR || ':' || coalesce(sum(hash(day, open_epoch, close_epoch, "
                      "cum_before))::VARCHAR, '') FROM business_calendar").fetchall()[0][0]
    return {"rules_fp": rules, "policy_fp": pol, "calendar_fp": cal}


_WHY = {"rules_fp": "the metric rules changed (incident_sla.sql or monthly.sql)",
        "policy_fp": "the SLA policy changed",
        "calendar_fp": "the business calendar changed (holidays, hours, or its range: a new cut-off year "
                       "or older tickets)"}


def full_reason(con, current: dict[str, str], requested: bool) -> str | None:
    """Why this run must be full, or None when it can be incremental."""
    if requested:
        return "--full"
    if not tables_exist(con, "metrics_state", "incident_sla", "metrics_inputs", "ticket_fingerprints"):
        return "no earlier computation to build on"
    cursor = con.execute("SELECT * FROM metrics_state")
    state = cursor.fetchall()
    if len(state) != 1:
        return "no earlier computation to build on"
    state = dict(zip([d[0] for d in cursor.description], state[0]))
    for key, why in _WHY.items():
        if state.get(key) != current[key]:
            return why
    flagged = scalar(con, "SELECT min(id) FROM metrics_pending WHERE kind = 'full'")
    if flagged:
        return flagged
    if not _fingerprints_current(con):
        return "the input tables were changed outside the import"
    outputs = con.execute("SELECT (SELECT count(*) FROM incident_sla), (SELECT count(*) FROM incident_clock_segments)"
                          ).fetchall()[0]
    if outputs != (state["incidents"], state["segments"]):
        return "incident_sla was changed outside the metrics step"
    return None


def previous_as_of(con):
    return scalar(con, "SELECT as_of FROM metrics_state")


def build_scope(con, old_as_of) -> int:
    """Temp table `metrics_scope` (ticket_id): the incidents to recompute; returns their number.

    Reads metrics_pending, the previous incident_sla, the input tables and run_params (the new
    cut-off); `old_as_of` is the previous run's cut-off.
    """
    con.execute("SET VARIABLE old_as_of = CAST(? AS TIMESTAMPTZ)", [old_as_of])
    con.execute("""
        SET VARIABLE cut_lo = (SELECT least(getvariable('old_as_of'), as_of) FROM run_params);
        SET VARIABLE cut_hi = (SELECT greatest(getvariable('old_as_of'), as_of) FROM run_params);
    """)
    con.execute(read_sql("metrics_scope.sql"))
    return scalar(con, "SELECT count(*) FROM metrics_scope")


def run_scoped(con, rules_sql: str) -> None:
    """Run incident_sla.sql over metrics_scope, its output tables landing in DELTA_SCHEMA (and the
    new ranks of metrics_rank_only in metrics_new_ranks)."""
    _in_schema(con, DELTA_SCHEMA, rules_sql)


def _in_schema(con, schema: str, sql: str) -> None:
    main = scalar(con, "SELECT current_schema()")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(f"SET schema = '{schema}'")
    con.execute(f"SET search_path = '{schema},{main}'")
    try:
        con.execute(sql)
    finally:
        con.execute("RESET search_path")
        con.execute("RESET schema")


def drop_schema(con, schema: str) -> None:
    """Drop a scratch schema and what it holds (one by one: DROP SCHEMA ... CASCADE of tables made
    in the same transaction fails at commit in DuckDB 1.x/2.0)."""
    for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = ? AND NOT temporary",
                               [schema]).fetchall():
        con.execute(f"DROP VIEW {schema}.{name}")
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = ? AND NOT temporary",
                               [schema]).fetchall():
        con.execute(f"DROP TABLE {schema}.{name}")
    con.execute(f"DROP SCHEMA IF EXISTS {schema}")


def apply_delta(con) -> tuple[int, int]:
    """Replace the recomputed incidents' rows of every per-ticket table by the delta's, and give the
    incidents ranked alone (metrics_rank_only) their new ranks; returns the numbers of incidents
    recomputed and re-ranked.

    First remembers in `_affected_months` the customer-months whose monthly figures can change: those
    of every recomputed incident whose row differs, in a column monthly.sql reads (cut-off aside), between
    its old and its recomputed version, or exists in one of them only (both months of an incident
    that moved). (An aggregate of a customer-month is a function of those columns of its incidents;
    a running incident whose elapsed time grew but whose met / breached did not flip leaves its
    month as it was.) Compared per ticket, one hash join: a multiset difference (EXCEPT ALL) of the
    two row sets finds the same months or fewer, at four window sorts.

    An incident ranked alone needs no comparison: its month's over_quota incidents are the last
    (count - quota) of each tier in rank order. If one of them flips, that count changed (a seed
    entered or left the customer-month or tier: its row differs) or another incident flipped the
    other way; the incidents ranked alone keep their order among themselves, so that one is a seed
    whose over_quota changed. Either way a recomputed incident flags the month."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _recomputed AS
        SELECT ticket_id FROM metrics_scope WHERE ticket_id NOT IN (SELECT ticket_id FROM metrics_rank_only)
    """)
    cols = [c for c in MONTHLY_COLUMNS if c != "as_of"]
    differs = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in cols)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _affected_months AS
        SELECT DISTINCT customer_id, month FROM (
            SELECT unnest([o.customer_id, n.customer_id]) AS customer_id, unnest([o.month, n.month]) AS month
            FROM (SELECT ticket_id, {", ".join(cols)} FROM incident_sla
                  WHERE ticket_id IN (SELECT ticket_id FROM _recomputed)) o
            FULL OUTER JOIN {DELTA_SCHEMA}.incident_sla n USING (ticket_id)
            WHERE {differs}
        ) WHERE month IS NOT NULL  -- the side an incident is missing from
    """)
    for table in TICKET_TABLES:
        con.execute(f"DELETE FROM {table} WHERE ticket_id IN (SELECT ticket_id FROM _recomputed)")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {DELTA_SCHEMA}.{table}")
    con.execute("DROP TABLE _recomputed")
    # the incidents ranked alone keep their row but for the rank and what follows from it
    con.execute("""
        UPDATE incident_sla s
        SET quota_rank = r.quota_rank, over_quota = _sla_over_quota(s.tier, r.quota_rank, s.quota)
        FROM metrics_new_ranks r
        WHERE s.ticket_id = r.ticket_id AND s.quota_rank IS DISTINCT FROM r.quota_rank
    """)
    return (scalar(con, f"SELECT count(*) FROM {DELTA_SCHEMA}.incident_sla"),
            scalar(con, "SELECT count(*) FROM metrics_new_ranks"))


def refresh_as_of(con) -> None:
    """Rows outside the scope keep their figures; they only carry the new cut-off (if it moved)."""
    if not scalar(con, "SELECT getvariable('cut_lo') < getvariable('cut_hi')"):
        return
    for table in ("incident_sla", "monthly_sla", "monthly_quota"):
        con.execute(f"UPDATE {table} SET as_of = (SELECT as_of FROM run_params) "
                    f"WHERE as_of IS DISTINCT FROM (SELECT as_of FROM run_params)")


def rebuild_months(con, monthly_sql: str) -> int:
    """The monthly rows of `_affected_months`, by monthly.sql over those months' incidents."""
    main = scalar(con, "SELECT current_schema()")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {MONTHS_SCHEMA}")
    con.execute(f"""
        CREATE VIEW {MONTHS_SCHEMA}.incident_sla AS
        SELECT {", ".join(f"s.{c}" for c in MONTHLY_COLUMNS)}
        FROM {main}.incident_sla s SEMI JOIN _affected_months a USING (customer_id, month)
    """)
    _in_schema(con, MONTHS_SCHEMA, monthly_sql)
    for table, view in MONTHLY_TABLES:
        con.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM _affected_months a "
                    f"WHERE a.customer_id = t.customer_id AND a.month = t.month)")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {MONTHS_SCHEMA}.{view}")
    drop_schema(con, MONTHS_SCHEMA)
    return scalar(con, "SELECT count(*) FROM _affected_months")


def write_state(con, current: dict[str, str], run: MetricsRun) -> None:
    """What this computation was based on, and what it did; consumes metrics_pending."""
    _ensure_tracking_tables(con)
    if run.mode == "full" and not _fingerprints_current(con):
        # tables loaded by an older version or written outside the import: fingerprint them now,
        # so that the next import's changes are relative to what this run computed
        _fingerprint_tables(con)
        _store_fingerprints(con)
    con.execute("""CREATE OR REPLACE TABLE metrics_state (as_of TIMESTAMPTZ, rules_fp VARCHAR, policy_fp VARCHAR,
                   calendar_fp VARCHAR, incidents BIGINT, segments BIGINT, mode VARCHAR, recomputed BIGINT,
                   reason VARCHAR, computed_at TIMESTAMPTZ)""")
    con.execute(
        "INSERT INTO metrics_state SELECT (SELECT as_of FROM run_params), ?, ?, ?, "
        "(SELECT count(*) FROM incident_sla), (SELECT count(*) FROM incident_clock_segments), ?, ?, ?, now()",
        [current["rules_fp"], current["policy_fp"], current["calendar_fp"], run.mode, run.recomputed, run.reason])
    con.execute("DELETE FROM metrics_pending")


def last_run(con) -> MetricsRun | None:
    """The latest metrics step's outcome (for the run summary), or None."""
    if not tables_exist(con, "metrics_state"):
        return None
    rows = con.execute("SELECT incidents, mode, recomputed, reason FROM metrics_state").fetchall()
    return MetricsRun(rows[0][0], rows[0][1], rows[0][2], rows[0][3] or "") if rows else None
