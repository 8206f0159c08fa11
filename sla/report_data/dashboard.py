"""Warehouse queries behind the management dashboard (issue 5).

Every figure on the dashboard comes from one of the queries below, run against the
same tables as the PDFs (`incident_sla`, `monthly_sla_view`, `monthly_quota_view`,
`gold_reconciliation`, `contracts`, `business_calendar`, `sla_targets`); the
renderer (`reports/dashboard.py`) only formats and plots, and the page's script
only shows and hides what was computed here.

Conventions:

* Months are local calendar months of creation ('YYYY-MM'), as in `incident_sla`.
  The dashboard's months end with the *reporting month* (the last complete month
  before the data's cut-off, as for the PDFs); the running month is not plotted.
* Every per-tier result also carries rows with ``tier = 'all'``: the figure for
  all incidents (including incidents without a contract, which have no target).
* Compliance rate = met / (met + breached), computed in SQL; NULL when nothing
  was rated.
* Business time is measured with the calendar table (ASOF join), exactly as in
  `sla/sql/incident_sla.sql`.

No Dagster here: a DuckDB connection and the policy are passed in.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from sla.db import read_sql
from sla.months import last_complete_month, month_range, shift_month
from sla.policy import Policy
from sla.report_data.models import (
    AGE_BUCKETS_HOURS,
    ALL,
    TIERS,
    DashboardData,
    GoldSummary,
    KpiValues,
    OpenSummary,
)


# --------------------------------------------------------------------------- helpers
def _df(con, sql: str, params: list | tuple = ()) -> pd.DataFrame:
    return con.execute(sql, list(params)).df()


def _exact_df(con, sql: str, params: list | tuple = ()) -> pd.DataFrame:
    """Like _df but keeps Python values (Decimal money, dates, None) instead of floats and NaN."""
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return pd.DataFrame.from_records(cur.fetchall(), columns=names).astype(object)


def cutoff(con) -> dt.datetime:
    """The data's cut-off: the `as_of` the figures were computed for."""
    row = con.execute("SELECT max(as_of) FROM incident_sla").fetchone()
    if row is None or row[0] is None:
        row = con.execute("SELECT max(as_of) FROM run_params").fetchone()
    if row is None or row[0] is None:
        raise ValueError("the warehouse holds no computed figures (run `sla run` first)")
    return row[0].astimezone(dt.timezone.utc)


# --------------------------------------------------------------------------- queries
def compliance_by_month(con, first: str, last: str) -> pd.DataFrame:
    """Per month x tier (and 'all') x metric: counts and compliance rate."""
    return _df(con, """
        SELECT month,
               CASE WHEN grouping(tier) = 1 THEN 'all' ELSE tier END AS tier,
               metric,
               sum(incidents)::BIGINT AS incidents, sum(met)::BIGINT AS met,
               sum(breached)::BIGINT AS breached, sum(pending)::BIGINT AS pending,
               sum(no_target)::BIGINT AS no_target,
               sum(met) / nullif(sum(met) + sum(breached), 0) AS rate
        FROM monthly_sla_view
        WHERE month BETWEEN ? AND ?
        GROUP BY GROUPING SETS ((month, metric, tier), (month, metric))
        HAVING grouping(tier) = 1 OR tier IS NOT NULL
        ORDER BY month, tier, metric
    """, [first, last])


def volume_by_month(con, first: str, last: str) -> pd.DataFrame:
    """Incidents opened per month x tier (and 'all'; 'no contract' for incidents without one) x
    severity at creation."""
    return _df(con, """
        SELECT month,
               CASE WHEN grouping(tier_key) = 1 THEN 'all' ELSE tier_key END AS tier,
               created_severity AS severity,
               count(*)::BIGINT AS incidents
        FROM (SELECT *, coalesce(tier, 'no contract') AS tier_key FROM incident_sla WHERE month BETWEEN ? AND ?)
        GROUP BY GROUPING SETS ((month, tier_key, created_severity), (month, created_severity))
        ORDER BY month, tier, severity
    """, [first, last])


def volume_by_tier(con, first: str, last: str) -> pd.DataFrame:
    """Incidents opened per month x tier ('no contract' for incidents without one)."""
    return _df(con, """
        SELECT month, coalesce(tier, 'no contract') AS tier, count(*)::BIGINT AS incidents
        FROM incident_sla WHERE month BETWEEN ? AND ?
        GROUP BY ALL ORDER BY month, tier
    """, [first, last])


def kpi_values(con, months: list[str]) -> dict[tuple[str, str], KpiValues]:
    """Headline figures per (tier, month) for the given months, tiers and 'all'."""
    placeholders = ", ".join("?" for _ in months)
    rows = con.execute(f"""
        WITH per_tier AS (
            SELECT month, CASE WHEN grouping(tier) = 1 THEN 'all' ELSE tier END AS tier_key,
                   count(*) AS incidents,
                   count(*) FILTER (WHERE first_response_met) AS fr_met,
                   count(*) FILTER (WHERE NOT first_response_met) AS fr_breached,
                   count(*) FILTER (WHERE resolution_met) AS res_met,
                   count(*) FILTER (WHERE NOT resolution_met) AS res_breached,
                   count(*) FILTER (WHERE over_quota) AS incidents_over_quota
            FROM incident_sla WHERE month IN ({placeholders})
            GROUP BY GROUPING SETS ((month, tier), (month))
            HAVING grouping(tier) = 1 OR tier IS NOT NULL
        ), over AS (
            SELECT month, CASE WHEN grouping(tier) = 1 THEN 'all' ELSE tier END AS tier_key,
                   count(DISTINCT customer_id) AS customers_over_quota
            FROM monthly_quota_view WHERE month IN ({placeholders}) AND over_quota > 0 AND tier IS NOT NULL
            GROUP BY GROUPING SETS ((month, tier), (month))
        )
        SELECT p.month, p.tier_key, p.incidents, p.fr_met, p.fr_breached,
               p.fr_met / nullif(p.fr_met + p.fr_breached, 0) AS fr_rate,
               p.res_met, p.res_breached,
               p.res_met / nullif(p.res_met + p.res_breached, 0) AS res_rate,
               p.fr_breached + p.res_breached AS breaches,
               coalesce(o.customers_over_quota, 0) AS customers_over_quota,
               p.incidents_over_quota
        FROM per_tier p LEFT JOIN over o ON o.month = p.month AND o.tier_key = p.tier_key
    """, [*months, *months]).fetchall()
    out: dict[tuple[str, str], KpiValues] = {}
    for r in rows:
        month, tier = r[0], r[1]
        out[(tier, month)] = KpiValues(
            tier=tier, month=month, incidents=int(r[2]), fr_met=int(r[3]), fr_breached=int(r[4]),
            fr_rate=None if r[5] is None else float(r[5]), res_met=int(r[6]), res_breached=int(r[7]),
            res_rate=None if r[8] is None else float(r[8]), breaches=int(r[9]),
            customers_over_quota=int(r[10]), incidents_over_quota=int(r[11]))
    for month in months:  # a month or tier without incidents still gets a tile
        for tier in (ALL, *TIERS):
            out.setdefault((tier, month), KpiValues(tier, month, 0, 0, 0, None, 0, 0, None, 0, 0, 0))
    return out


def open_incidents(con, business_day_seconds: int) -> pd.DataFrame:
    """Incidents not resolved at the cut-off, with age and risk.

    * ``age_business_seconds``: business time from creation to the cut-off.
    * Per running metric (first response not yet given; resolution), ``*_remaining`` =
      target - elapsed business time (negative: breached by that much).
    * ``risk``: the worst state of the running metrics: ``breached`` (a running metric
      is past its target), ``due_soon`` (at most one business day left), ``on_track``,
      ``no_target``.
    * ``due_at``: first response due instant while it is running, else the instant the
      resolution target is reached if the clock keeps running from the cut-off
      (NULL when breached or without target).
    """
    return _df(con, """
        WITH o AS (
            SELECT s.*, epoch(s.created_at)::BIGINT AS ce, epoch(s.as_of)::BIGINT AS ae
            FROM incident_sla s WHERE s.resolved_at IS NULL
        ), clocks AS (
            SELECT o.ticket_id,
                   CASE WHEN c.open_epoch IS NULL THEN 0
                        ELSE c.cum_before + least(greatest(o.ce - c.open_epoch, 0), c.business_seconds) END AS created_clock
            FROM o ASOF LEFT JOIN business_calendar c ON o.ce >= c.open_epoch
        ), cut AS (
            SELECT a.ae,
                   CASE WHEN c.open_epoch IS NULL THEN 0
                        ELSE c.cum_before + least(greatest(a.ae - c.open_epoch, 0), c.business_seconds) END AS cut_clock
            FROM (SELECT DISTINCT ae FROM o) a ASOF LEFT JOIN business_calendar c ON a.ae >= c.open_epoch
        ), names AS (
            SELECT customer_id, arg_max(customer_name, valid_from) AS customer_name
            FROM contracts GROUP BY customer_id
        ), measured AS (
            SELECT o.ticket_id, o.customer_id, n.customer_name, coalesce(o.tier, 'no contract') AS tier,
                   o.resolution_severity AS severity, o.current_status, o.created_at, o.month,
                   greatest(cut.cut_clock - k.created_clock, 0) AS age_business_seconds,
                   cut.cut_clock,
                   CASE WHEN o.first_response_at IS NULL AND o.first_response_target_seconds IS NOT NULL
                        THEN o.first_response_target_seconds - o.first_response_elapsed_business_seconds END AS fr_remaining,
                   CASE WHEN o.first_response_at IS NULL THEN o.first_response_due_at END AS fr_due_at,
                   o.first_response_met AS fr_met,
                   o.resolution_target_seconds,
                   o.resolution_elapsed_business_seconds,
                   o.resolution_target_seconds - o.resolution_elapsed_business_seconds AS res_remaining,
                   o.resolution_met AS res_met
            FROM o JOIN clocks k USING (ticket_id) JOIN cut ON cut.ae = o.ae
            LEFT JOIN names n ON n.customer_id = o.customer_id
        ), rated AS (
            SELECT *,
                   CASE WHEN fr_remaining IS NULL THEN NULL
                        WHEN fr_met = false THEN 'breached'
                        WHEN fr_remaining <= ? THEN 'due_soon' ELSE 'on_track' END AS fr_state,
                   CASE WHEN res_remaining IS NULL THEN NULL
                        WHEN res_met = false THEN 'breached'
                        WHEN res_remaining <= ? THEN 'due_soon' ELSE 'on_track' END AS res_state
            FROM measured
        ), risk AS (
            SELECT *,
                   CASE WHEN 'breached' IN (fr_state, res_state) THEN 'breached'
                        WHEN 'due_soon' IN (fr_state, res_state) THEN 'due_soon'
                        WHEN 'on_track' IN (fr_state, res_state) THEN 'on_track'
                        ELSE 'no_target' END AS risk,
                   cut_clock + res_remaining AS res_goal
            FROM rated
        ), res_due AS (
            SELECT r.ticket_id,
                   to_timestamp(c.open_epoch + (r.res_goal - c.cum_before)) AS res_due_at
            FROM (SELECT ticket_id, res_goal FROM risk WHERE res_state IN ('due_soon', 'on_track')) r
            ASOF LEFT JOIN business_calendar c ON r.res_goal > c.cum_before
        )
        SELECT r.ticket_id, r.customer_id, r.customer_name, r.tier, r.severity, r.current_status,
               r.created_at, r.month, r.age_business_seconds,
               r.fr_state, r.fr_remaining, r.fr_due_at,
               r.res_state, r.res_remaining, d.res_due_at,
               r.risk,
               -- the instant the first running metric is due (while not yet breached)
               CASE WHEN r.fr_state IN ('due_soon', 'on_track') AND r.res_state IN ('due_soon', 'on_track')
                    THEN least(r.fr_due_at, d.res_due_at)
                    WHEN r.fr_state IN ('due_soon', 'on_track') THEN r.fr_due_at
                    WHEN r.res_state IN ('due_soon', 'on_track') THEN d.res_due_at END AS due_at,
               -- business seconds by which the worst breached metric is overdue
               CASE WHEN r.risk = 'breached' THEN
                    greatest(CASE WHEN r.fr_state = 'breached' THEN -r.fr_remaining ELSE 0 END,
                             CASE WHEN r.res_state = 'breached' THEN -r.res_remaining ELSE 0 END) END AS overdue_seconds
        FROM risk r LEFT JOIN res_due d USING (ticket_id)
        ORDER BY CASE r.risk WHEN 'breached' THEN 0 WHEN 'due_soon' THEN 1 WHEN 'on_track' THEN 2 ELSE 3 END,
                 r.severity, r.age_business_seconds DESC, r.ticket_id
    """, [business_day_seconds, business_day_seconds])


def age_bucket(age_business_seconds: int) -> int:
    """Index into AGE_BUCKETS_HOURS for an age in business seconds."""
    for i, (lo, hi) in enumerate(AGE_BUCKETS_HOURS):
        if hi is None or age_business_seconds < hi * 3600:
            return i
    raise AssertionError("unreachable")


def open_by_age(opened: pd.DataFrame) -> pd.DataFrame:
    """Open incidents (rows of open_incidents()) per tier (and 'all') x age bucket x risk."""
    cols = ["tier", "bucket", "risk", "incidents"]
    if opened.empty:
        return pd.DataFrame(columns=cols)
    frame = opened[["tier", "age_business_seconds", "risk"]].copy()
    frame["bucket"] = frame["age_business_seconds"].map(lambda s: age_bucket(int(s)))
    per_tier = frame.groupby(["tier", "bucket", "risk"], as_index=False).size()
    overall = frame.groupby(["bucket", "risk"], as_index=False).size().assign(tier=ALL)
    out = pd.concat([per_tier, overall], ignore_index=True).rename(columns={"size": "incidents"})
    return out[cols].sort_values(["tier", "bucket", "risk"], ignore_index=True)


def top_breaches(con, window: list[str], *, limit: int = 10) -> pd.DataFrame:
    """Customers with the most breached incidents-metrics in the window, per tier and overall.

    ``tier`` is the filter key ('all' or a tier: breaches of incidents in that tier);
    ``customer_tier`` is the customer's tier at the end of the window (latest incident).
    Quota use: incidents and over-quota incidents in the window, and the reporting month's
    incidents against its quota.
    """
    first, last = window[0], window[-1]
    return _df(con, """
        WITH inc AS (
            SELECT * FROM incident_sla WHERE month BETWEEN ? AND ? AND tier IS NOT NULL
        ), per AS (
            SELECT CASE WHEN grouping(tier) = 1 THEN 'all' ELSE tier END AS tier, customer_id,
                   count(*) FILTER (WHERE NOT first_response_met) AS fr_breaches,
                   count(*) FILTER (WHERE NOT resolution_met) AS res_breaches,
                   count(*) AS incidents,
                   count(*) FILTER (WHERE over_quota) AS over_quota
            FROM inc GROUP BY GROUPING SETS ((tier, customer_id), (customer_id))
        ), latest AS (
            SELECT customer_id, arg_max(tier, created_at) AS customer_tier FROM inc GROUP BY customer_id
        ), names AS (
            SELECT customer_id, arg_max(customer_name, valid_from) AS customer_name
            FROM contracts GROUP BY customer_id
        ), last_month AS (
            SELECT customer_id, sum(incidents)::BIGINT AS month_incidents, max(quota) AS month_quota,
                   sum(over_quota)::BIGINT AS month_over_quota
            FROM monthly_quota_view WHERE month = ? AND tier IS NOT NULL GROUP BY customer_id
        ), months_over AS (
            SELECT customer_id, count(DISTINCT month) AS months_over_quota
            FROM monthly_quota_view WHERE month BETWEEN ? AND ? AND over_quota > 0 GROUP BY customer_id
        ), ranked AS (
            SELECT p.*, p.fr_breaches + p.res_breaches AS breaches,
                   row_number() OVER (PARTITION BY p.tier
                                      ORDER BY p.fr_breaches + p.res_breaches DESC, p.res_breaches DESC,
                                               p.customer_id) AS rank
            FROM per p WHERE p.fr_breaches + p.res_breaches > 0
        )
        SELECT r.tier, r.rank::INTEGER AS rank, r.customer_id, n.customer_name, l.customer_tier,
               r.breaches::BIGINT AS breaches, r.fr_breaches::BIGINT AS fr_breaches,
               r.res_breaches::BIGINT AS res_breaches, r.incidents::BIGINT AS incidents,
               r.over_quota::BIGINT AS over_quota,
               coalesce(m.months_over_quota, 0)::BIGINT AS months_over_quota,
               coalesce(q.month_incidents, 0)::BIGINT AS month_incidents, q.month_quota,
               coalesce(q.month_over_quota, 0)::BIGINT AS month_over_quota
        FROM ranked r JOIN latest l USING (customer_id)
        LEFT JOIN names n USING (customer_id)
        LEFT JOIN last_month q USING (customer_id)
        LEFT JOIN months_over m USING (customer_id)
        WHERE r.rank <= ?
        ORDER BY r.tier, r.rank
    """, [first, last, last, first, last, limit])


def quota_by_month(con, first: str, last: str) -> pd.DataFrame:
    """Per month x tier (and 'all'): customers over their included incidents, and the extra incidents."""
    return _df(con, """
        SELECT month, CASE WHEN grouping(tier) = 1 THEN 'all' ELSE tier END AS tier,
               count(*) FILTER (WHERE over_quota > 0)::BIGINT AS customers_over,
               coalesce(sum(over_quota), 0)::BIGINT AS incidents_over,
               count(*)::BIGINT AS customers
        FROM monthly_quota_view
        WHERE month BETWEEN ? AND ? AND tier IS NOT NULL
        GROUP BY GROUPING SETS ((month, tier), (month))
        ORDER BY month, tier
    """, [first, last])


def quota_customers(con, month: str, first: str) -> pd.DataFrame:
    """Customers over quota in `month`, with how many months since `first` they were over."""
    return _df(con, """
        WITH names AS (
            SELECT customer_id, arg_max(customer_name, valid_from) AS customer_name
            FROM contracts GROUP BY customer_id
        ), months_over AS (
            SELECT customer_id, count(DISTINCT month)::BIGINT AS months_over_quota
            FROM monthly_quota_view WHERE month BETWEEN ? AND ? AND over_quota > 0 GROUP BY customer_id
        )
        SELECT q.customer_id, n.customer_name, q.tier, q.incidents::BIGINT AS incidents, q.quota,
               q.over_quota::BIGINT AS over_quota, m.months_over_quota
        FROM monthly_quota_view q LEFT JOIN names n USING (customer_id)
        LEFT JOIN months_over m USING (customer_id)
        WHERE q.month = ? AND q.over_quota > 0 AND q.tier IS NOT NULL
        ORDER BY q.over_quota DESC, q.incidents DESC, q.customer_id
    """, [first, month, month])


def gold_reconciliation_summary(con) -> pd.DataFrame:
    """Reconciliation lines per status with exact EUR sums (Decimal)."""
    return _exact_df(con, """
        SELECT status, count(*)::BIGINT AS lines, sum(owed_eur) AS owed_eur,
               sum(invoiced_eur) AS invoiced_eur, sum(difference_eur) AS difference_eur
        FROM gold_reconciliation GROUP BY status
        ORDER BY CASE status WHEN 'ok' THEN 0 ELSE 1 END, status
    """)


def gold_problems(con) -> pd.DataFrame:
    """Reconciliation lines that are not ok (exact Decimal money)."""
    return _exact_df(con, """
        WITH names AS (
            SELECT customer_id, arg_max(customer_name, valid_from) AS customer_name
            FROM contracts GROUP BY customer_id
        )
        SELECT g.status, g.customer_id, n.customer_name, g.invoice_id, g.issued_on, g.period_start,
               g.period_end, g.owed_eur, g.invoiced_eur, g.difference_eur
        FROM gold_reconciliation g LEFT JOIN names n USING (customer_id)
        WHERE g.status <> 'ok'
        ORDER BY g.status, g.customer_id, g.period_start, g.invoice_id
    """)


def gold_summary(con, as_of: dt.datetime, tz) -> GoldSummary:
    local_day = as_of.astimezone(tz).date()
    customers = con.execute("""
        SELECT count(DISTINCT customer_id) FROM contracts
        WHERE tier = 'gold' AND ? BETWEEN valid_from AND coalesce(valid_to, DATE '9999-12-31')
    """, [local_day]).fetchone()[0]
    row = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE status <> 'ok'),
               coalesce(sum(owed_eur), 0), coalesce(sum(invoiced_eur), 0), coalesce(sum(difference_eur), 0)
        FROM gold_reconciliation
    """).fetchone()
    return GoldSummary(int(customers), int(row[0]), int(row[1]), row[2], row[3], row[4])


def open_summaries(opened: pd.DataFrame) -> dict[str, OpenSummary]:
    """Counts of the open-incident rows (already computed in SQL) per tier and overall."""
    out = {}
    for tier in (ALL, *TIERS):
        part = opened if tier == ALL else opened[opened["tier"] == tier]
        out[tier] = OpenSummary(tier, int(len(part)), int((part["risk"] == "breached").sum()),
                                int((part["risk"] == "due_soon").sum()))
    return out


# --------------------------------------------------------------------------- entry point
MONTHLY_VIEWS = ("monthly_sla_view", "monthly_quota_view")


def missing_views(con) -> list[str]:
    have = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    return [v for v in MONTHLY_VIEWS if v not in have]


def ensure_monthly_views(con) -> None:
    """Create the all-months views of sla/sql/monthly.sql when no monthly slice has created them yet.

    They are plain views over `incident_sla` (CREATE OR REPLACE), so creating them is the same
    statement the monthly partition runs; it needs a writable connection.
    """
    if missing_views(con):
        con.execute(read_sql("monthly.sql"))


def load_dashboard_data(con, policy: Policy, *, months: int = 24, top: int = 10) -> DashboardData:
    """Run every dashboard query against an open warehouse connection (read-only is enough once
    the monthly views exist; see ensure_monthly_views)."""
    missing = missing_views(con)
    if missing:
        raise ValueError(f"the warehouse has no {', '.join(missing)} yet: run `sla run` "
                         "(or ensure_monthly_views on a writable connection) first")
    tz = policy.calendar.tz
    bds = policy.calendar.business_day_seconds
    as_of = cutoff(con)
    reporting = last_complete_month(as_of, tz)
    previous = shift_month(reporting, -1)
    first_data = con.execute("SELECT min(month) FROM incident_sla").fetchone()[0] or reporting
    first = max(first_data, shift_month(reporting, -(months - 1)))
    month_list = month_range(min(first, reporting), reporting)
    window = month_range(shift_month(reporting, -2), reporting)

    opened = open_incidents(con, bds)
    targets = _df(con, "SELECT tier, severity, first_response_seconds, resolution_seconds FROM sla_targets "
                       "ORDER BY CASE tier WHEN 'professional' THEN 0 WHEN 'enterprise' THEN 1 ELSE 2 END, severity")
    quotas = dict(con.execute("SELECT tier, monthly_incident_quota FROM sla_tiers").fetchall())
    return DashboardData(
        as_of=as_of,
        timezone=policy.calendar.timezone,
        business_day_seconds=bds,
        reporting_month=reporting,
        previous_month=previous,
        months=month_list,
        breach_window=window,
        compliance=compliance_by_month(con, month_list[0], reporting),
        volume=volume_by_month(con, month_list[0], reporting),
        volume_tier=volume_by_tier(con, month_list[0], reporting),
        open_incidents=opened,
        open_by_age=open_by_age(opened),
        open_summary=open_summaries(opened),
        top_breaches=top_breaches(con, window, limit=top),
        quota_monthly=quota_by_month(con, month_list[0], reporting),
        quota_customers=quota_customers(con, reporting, month_list[0]),
        gold_reconciliation=gold_reconciliation_summary(con),
        gold_problems=gold_problems(con),
        gold_summary=gold_summary(con, as_of, tz),
        targets=targets,
        quotas={k: int(v) for k, v in quotas.items()},
        kpis=kpi_values(con, [previous, reporting]),
    )
