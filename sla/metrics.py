"""Per-incident SLA metrics and monthly aggregates, computed set-based in DuckDB.

The rules live in `sla/sql/incident_sla.sql` and `sla/sql/monthly.sql`; this module loads
the policy-derived lookup tables (targets, tiers, business calendar) and runs them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from contextlib import contextmanager

import duckdb

from sla import incremental
from sla.calendar import ClockBuckets, ensure_business_calendar
from sla.db import bind_variables, derived_tables_current, insert_rows, read_sql, record_derived_tables, scalar
from sla.policy import Policy, versioned_target_rows, versioned_tier_rows
from sla.restatements import ensure_tables as ensure_restatement_tables

#: calendar margin after the last instant, so every due instant lands inside the table
CALENDAR_MARGIN_YEARS = 2


def write_policy_tables(con, policy: Policy, on: dt.date | None = None) -> None:
    """`sla_targets` / `sla_tiers`: the standard terms of the version in force today (one row per tier
    and severity, as before); `sla_targets_versioned` / `sla_tiers_versioned`: every version
    (valid_from..valid_to, local dates) x terms (NULL = standard, else a term set's name) x tier;
    `status_rank`: the lifecycle order of status changes at one instant (sla.policy.LIFECYCLE_ORDER,
    not `known`'s order). `on`: the local date whose version `sla_targets` / `sla_tiers` show
    (default today). Written only when a table's definition or rows differ from what was written last."""
    current = policy.version_on(on or dt.date.today())
    tables = {
        "sla_targets": ("tier VARCHAR, severity INTEGER, first_response_seconds BIGINT, resolution_seconds BIGINT",
                        current.target_rows),
        "sla_tiers": ("tier VARCHAR, monthly_incident_quota INTEGER, monthly_price DECIMAL(12,2), billed VARCHAR",
                      [(name, t.monthly_incident_quota, t.monthly_price, t.billed) for name, t in current.tiers.items()]),
        "sla_targets_versioned": ("valid_from DATE, valid_to DATE, terms VARCHAR, tier VARCHAR, severity INTEGER, "
                                  "first_response_seconds BIGINT, resolution_seconds BIGINT",
                                  versioned_target_rows(policy)),
        "sla_tiers_versioned": ("valid_from DATE, valid_to DATE, terms VARCHAR, tier VARCHAR, "
                                "monthly_incident_quota INTEGER, monthly_price DECIMAL(12,2), billed VARCHAR",
                                versioned_tier_rows(policy)),
        "status_rank": ("status VARCHAR, rank INTEGER", list(policy.statuses.lifecycle_rank.items())),
    }
    tables = {name: (ddl, [tuple(row) for row in rows]) for name, (ddl, rows) in tables.items()}
    key = hashlib.sha256(repr(sorted(tables.items())).encode()).hexdigest()
    if derived_tables_current(con, "policy", key, tuple(tables)) is not None:
        return
    for name, (ddl, rows) in tables.items():
        con.execute(f"CREATE OR REPLACE TABLE {name} ({ddl})")
        insert_rows(con, name, rows)
    record_derived_tables(con, "policy", key, tuple(tables))


def calendar_range(con, as_of: dt.datetime) -> tuple[dt.date, dt.date]:
    first = scalar(con, "SELECT min(created_at) FROM tickets")
    first_year = (first.year if first else as_of.year) - 1
    return dt.date(min(first_year, as_of.year - 1), 1, 1), dt.date(as_of.year + CALENDAR_MARGIN_YEARS, 12, 31)


def build_calendar(con, policy: Policy, as_of: dt.datetime) -> ClockBuckets:
    """The business calendar tables for the run's range (rebuilt only when its inputs changed)."""
    first, last = calendar_range(con, as_of)
    periods = [(start, end, v.calendar) for start, end, v in policy.version_ranges()]
    return ensure_business_calendar(con, periods, first, last)


def compute_incident_sla(con, policy: Policy, as_of: dt.datetime, full: bool = False,
                         full_share: float = incremental.FULL_SHARE) -> incremental.MetricsRun:
    """(Re)build `incident_sla`, `incident_clock_segments`, `incident_exclusions`, `data_warnings` and
    the monthly tables (`monthly_sla`, `monthly_quota`, every month) as of the cut-off.

    Incremental unless `full` or a global input changed (sla/incremental.py has the rules): only the
    incidents whose figures can differ from the previous computation are recomputed, with the same
    SQL, and the tables end up identical to a full recompute's. A scope above `full_share` of the
    incidents is computed in full.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must carry a timezone")
    write_policy_tables(con, policy, as_of.astimezone(policy.calendar.tz).date())
    ensure_optional_inputs(con)
    buckets = build_calendar(con, policy, as_of)
    basis = incremental.basis(con, policy)
    reason = incremental.full_reason(con, basis, full)
    old_as_of = incremental.previous_as_of(con) if reason is None else None
    # whole seconds, like every imported timestamp (epoch()::BIGINT would otherwise round)
    con.execute("CREATE OR REPLACE TABLE run_params AS SELECT date_trunc('second', CAST(? AS TIMESTAMPTZ)) AS as_of",
                [as_of.isoformat()])
    bind_variables(con, tz=policy.calendar.timezone, initial_status=policy.statuses.initial,
                   resolved=list(policy.statuses.resolved), pause=list(policy.statuses.pause),
                   **buckets.sql_params())
    if reason is None:
        scope = incremental.build_scope(con, old_as_of)
        total = scalar(con, "SELECT count(*) FROM tickets t, run_params p WHERE t.created_at <= p.as_of")
        if scope > full_share * max(total, 1):
            reason = f"{scope:,} of {total:,} incidents to recompute: a full recompute is as fast"
    with _insertion_order_kept(con):
        if reason is None:
            bind_variables(con, scoped=True)
            incremental.run_scoped(con, read_sql("incident_sla.sql"))
            recomputed, reranked = incremental.apply_delta(con)
            incremental.drop_schema(con, incremental.DELTA_SCHEMA)
            con.execute(read_sql("monthly.sql"))  # the views, over the updated incident_sla
            incremental.refresh_as_of(con)
            incremental.rebuild_months(con, read_sql("monthly.sql"))
            run = incremental.MetricsRun(scalar(con, "SELECT count(*) FROM incident_sla"), "incremental", recomputed,
                                         reranked=reranked)
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE metrics_scope (ticket_id VARCHAR)")
            con.execute("CREATE OR REPLACE TEMP TABLE metrics_rank_only (ticket_id VARCHAR)")
            con.execute("CREATE OR REPLACE TEMP TABLE metrics_kept_ranks (ticket_id VARCHAR, quota_rank BIGINT)")
            con.execute("CREATE OR REPLACE TEMP TABLE metrics_rank_from (customer_id VARCHAR, month VARCHAR, "
                        "from_key STRUCT(c TIMESTAMPTZ, t VARCHAR))")
            con.execute("CREATE OR REPLACE TEMP TABLE metrics_rank_offsets (customer_id VARCHAR, month VARCHAR, "
                        "tier VARCHAR, ranked_before BIGINT)")
            bind_variables(con, scoped=False)
            con.execute(read_sql("incident_sla.sql"))
            compute_monthly(con)
            n = scalar(con, "SELECT count(*) FROM incident_sla")
            run = incremental.MetricsRun(n, "full", n, reason)
    for table in ("metrics_scope", "metrics_rank_only", "metrics_kept_ranks", "metrics_rank_from",
                  "metrics_rank_offsets", "metrics_new_ranks"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    incremental.write_state(con, basis, run)
    # delivered figures vs these: the `restatements` view (remade after incident_sla was rebuilt)
    ensure_restatement_tables(con, rebind_views=run.mode == "full")
    return run


@contextmanager
def _insertion_order_kept(con):
    """incident_sla.sql turns preserve_insertion_order off for its temp tables and back to the
    session's value at its end; if a statement fails half-way, this puts it back where it can (the
    tables written in an order set it on themselves, so a retry on this session stays exact)."""
    before = scalar(con, "SELECT current_setting('preserve_insertion_order')")
    try:
        yield
    except BaseException:
        try:  # an aborted transaction refuses even SET (the setting then stays as the failure left it)
            con.execute(f"SET preserve_insertion_order = {'true' if before else 'false'}")
        except duckdb.Error:
            pass
        raise


def ensure_optional_inputs(con) -> None:
    """A warehouse loaded before exclusions and customer terms existed gets them empty."""
    con.execute("""CREATE TABLE IF NOT EXISTS exclusions (ticket_id VARCHAR, metric VARCHAR, reason VARCHAR,
                   approved_by VARCHAR, approved_at TIMESTAMPTZ, line BIGINT)""")
    cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                       "WHERE table_name = 'contracts' AND table_schema = current_schema()").fetchall()}
    if cols and "terms" not in cols:
        con.execute("ALTER TABLE contracts ADD COLUMN terms VARCHAR")


def compute_monthly(con) -> None:
    """Rebuild `monthly_sla` and `monthly_quota` for every month from `incident_sla` (a full run).

    Monthly figures carry the run's cut-off (`as_of`, sla-semantics.md section 4): rebuilding only
    one month would leave the others at an older cut-off (an incremental run rebuilds the affected
    customer-months and gives every other row the new cut-off, sla/incremental.py). The views
    `monthly_sla_view` / `monthly_quota_view` hold the same rows.
    """
    con.execute(read_sql("monthly.sql"))
    con.execute("CREATE OR REPLACE TABLE monthly_sla AS SELECT * FROM monthly_sla_view "
                "ORDER BY month, customer_id, tier, severity, metric")
    con.execute("CREATE OR REPLACE TABLE monthly_quota AS SELECT * FROM monthly_quota_view "
                "ORDER BY month, customer_id, tier")


def _monthly_tables_current(con) -> bool:
    """True when both monthly tables exist with `as_of` and carry incident_sla's cut-off."""
    have = {(t, c) for t, c in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_name IN ('monthly_sla', 'monthly_quota') AND table_schema = current_schema()").fetchall()}
    if not {("monthly_sla", "as_of"), ("monthly_quota", "as_of")} <= have:
        return False
    stale = scalar(con, """
        SELECT count(*) FROM (SELECT as_of FROM monthly_sla UNION SELECT as_of FROM monthly_quota)
        WHERE as_of IS DISTINCT FROM (SELECT as_of FROM run_params)""")
    return stale == 0


def compute_monthly_slice(con, month: str) -> int:
    """The aggregates of one local month: the rows of `monthly_quota` (customer x tier groups).

    The monthly tables are rebuilt whole with `incident_sla` (compute_monthly); this only reads its
    month. A warehouse whose monthly tables predate its incident_sla (an older cut-off, or written
    before they carried `as_of`) gets them rebuilt first, so a slice never shows another cut-off.
    """
    if not _monthly_tables_current(con):
        compute_monthly(con)
    return scalar(con, "SELECT count(*) FROM monthly_quota WHERE month = ?", [month])


def monthly_slice_counts(con, month: str) -> dict:
    """Row counts of one month in the monthly tables, and their cut-off (asset metadata)."""
    sla_rows, quota_rows, as_of = con.execute(
        "SELECT (SELECT count(*) FROM monthly_sla WHERE month = $1), "
        "(SELECT count(*) FROM monthly_quota WHERE month = $1), (SELECT as_of FROM run_params)",
        [month]).fetchall()[0]
    return {"monthly_sla_rows": sla_rows, "monthly_quota_rows": quota_rows, "as_of": as_of}
