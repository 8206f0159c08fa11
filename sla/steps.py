"""The pipeline's steps as plain functions (no Dagster): import, metrics, monthly aggregates.

Dagster assets and tests call these; each step runs in one DuckDB transaction, so a crash
leaves the warehouse as it was before the step.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

from sla import incremental
from sla.db import scalar
from sla.incremental import MetricsRun
from sla.ingest import LoadCounts, validate
from sla.metrics import compute_incident_sla, compute_monthly_slice, monthly_slice_counts
from sla.policy import Policy
from sla.sources import TicketSource


@contextmanager
def transaction(con):
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def import_source(con, source: TicketSource, policy: Policy) -> list[LoadCounts]:
    """Stage and validate one source; replaces the accepted tables and its rejects.

    Staging fills connection-local temp tables (outside the transaction: DuckDB numbers the rows
    of a table created inside a transaction differently, and staging relies on row order);
    everything persistent is replaced in one transaction.
    """
    staged = source.stage(con)
    with transaction(con):
        counts = validate(con, policy, staged, source.labels, quote_rejected=source.rejected_rows_sql)
        incremental.record_input_changes(con)  # which tickets the next metrics run recomputes
        return counts


def compute_metrics(con, policy: Policy, as_of: dt.datetime, full: bool = False) -> MetricsRun:
    """incident_sla, its clock segments, data_warnings and the monthly tables of every month, all as
    of one cut-off, in one transaction: incrementally (only the incidents whose figures can have
    changed since the last computation) unless `full` or a global input changed; the tables are
    the same either way. Returns what was done (`.incidents`, `.mode`, `.recomputed`, `.reason`)."""
    with transaction(con):
        return compute_incident_sla(con, policy, as_of, full=full)


def compute_month(con, month: str) -> int:
    """One month's slice of the monthly tables (rebuilt for every month by compute_metrics); returns
    its customer x tier groups. Rebuilds the tables first only if they predate incident_sla's cut-off."""
    with transaction(con):
        return compute_monthly_slice(con, month)


def month_slice_counts(con, month: str) -> dict:
    """Rows of one month in monthly_sla and monthly_quota, and the cut-off they are as of."""
    return monthly_slice_counts(con, month)


def run_summary(con, month: str) -> dict:
    """Figures the CLI prints after a run (`metrics`: how the last metrics step computed them)."""
    row = con.execute(
        """
        SELECT count(*),
               count(*) FILTER (WHERE first_response_met), count(*) FILTER (WHERE NOT first_response_met),
               count(*) FILTER (WHERE resolution_met), count(*) FILTER (WHERE NOT resolution_met),
               count(*) FILTER (WHERE tier IS NULL)
        FROM incident_sla WHERE month = ?
        """,
        [month],
    ).fetchall()[0]
    last = incremental.last_run(con)
    return {
        "metrics": last.describe() if last else "",
        "incidents_total": scalar(con, "SELECT count(*) FROM incident_sla"),
        "rejects": scalar(con, "SELECT count(*) FROM rejects"),
        "month_incidents": row[0],
        "fr_met": row[1], "fr_breached": row[2],
        "res_met": row[3], "res_breached": row[4],
        "without_contract": row[5],
        "gold_lines": dict(con.execute(
            "SELECT status, count(*) FROM gold_reconciliation GROUP BY 1 ORDER BY 1").fetchall())
        if scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'gold_reconciliation'")
        else {},
    }
