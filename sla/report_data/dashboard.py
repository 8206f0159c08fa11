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
from sla.report_data.customer import policy_target
from sla.report_data.models import (
    AGE_BUCKETS,
    ALL,
    MIN_RATED,
    RENEWAL_WATCH_DAYS,
    TIERS,
    DashboardData,
    GoldSummary,
    KpiValues,
    OpenItemsTotals,
    OpenSummary,
    Target,
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


def open_incidents(con, business_day_seconds: int, timezone: str = "Europe/Berlin") -> pd.DataFrame:
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
    * ``age_bucket``: index into AGE_BUCKETS: business time since creation below one calendar
      month (< 1 business day, 1-5 business days, 5 business days up to a month), calendar time
      from one month on (1-3 months, 3-6 months, > 6 months; local calendar months).
    * ``breached_since``: the instant the worst running metric was breached: the first response
      due instant, or the business-calendar instant that lies the resolution overdue time before
      the cut-off (exact unless the clock was paused after the breach, which makes it later).
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
                   cut.cut_clock, timezone(?, o.created_at) AS created_local, timezone(?, o.as_of) AS as_of_local,
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
        ), res_breach AS (
            SELECT r.ticket_id,
                   to_timestamp(c.open_epoch + (r.res_goal - c.cum_before)) AS res_breached_at
            FROM (SELECT ticket_id, res_goal FROM risk WHERE res_state = 'breached') r
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
                             CASE WHEN r.res_state = 'breached' THEN -r.res_remaining ELSE 0 END) END AS overdue_seconds,
               least(CASE WHEN r.fr_state = 'breached' THEN r.fr_due_at END,
                     CASE WHEN r.res_state = 'breached' THEN b.res_breached_at END) AS breached_since,
               CASE WHEN r.created_local + INTERVAL 6 MONTH <= r.as_of_local THEN 5
                    WHEN r.created_local + INTERVAL 3 MONTH <= r.as_of_local THEN 4
                    WHEN r.created_local + INTERVAL 1 MONTH <= r.as_of_local THEN 3
                    WHEN r.age_business_seconds >= 5 * ? THEN 2
                    WHEN r.age_business_seconds >= ? THEN 1
                    ELSE 0 END AS age_bucket,
               r.created_local + INTERVAL 1 MONTH <= r.as_of_local AS older_than_a_month
        FROM risk r LEFT JOIN res_due d USING (ticket_id) LEFT JOIN res_breach b USING (ticket_id)
        ORDER BY CASE r.risk WHEN 'breached' THEN 0 WHEN 'due_soon' THEN 1 WHEN 'on_track' THEN 2 ELSE 3 END,
                 r.severity, r.age_business_seconds DESC, r.ticket_id
    """, [timezone, timezone, *[business_day_seconds] * 4])


def open_by_age(opened: pd.DataFrame) -> pd.DataFrame:
    """Open incidents (rows of open_incidents()) per tier (and 'all') x age bucket x risk."""
    cols = ["tier", "bucket", "risk", "incidents"]
    if opened.empty:
        return pd.DataFrame(columns=cols)
    frame = opened[["tier", "age_bucket", "risk"]].rename(columns={"age_bucket": "bucket"})
    frame = frame.astype({"bucket": int})
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
    """Counts of the open-incident rows (already computed in SQL) per tier and overall, and the
    oldest open incident (earliest creation, then ticket id)."""
    out = {}
    for tier in (ALL, *TIERS):
        part = opened if tier == ALL else opened[opened["tier"] == tier]
        oldest = {}
        if len(part):
            r = part.sort_values(["created_at", "ticket_id"]).iloc[0]
            name = r["customer_name"]
            oldest = dict(oldest_ticket_id=r["ticket_id"], oldest_created_at=r["created_at"].to_pydatetime(),
                          oldest_customer_id=r["customer_id"],
                          oldest_customer_name=None if pd.isna(name) else name,
                          oldest_severity=int(r["severity"]))
        out[tier] = OpenSummary(tier, int(len(part)), int((part["risk"] == "breached").sum()),
                                int((part["risk"] == "due_soon").sum()),
                                older_than_6_months=int((part["age_bucket"] == AGE_BUCKETS.index("gt_6m")).sum()),
                                **oldest)
    return out


def compliance_by_severity(con, first: str, last: str) -> pd.DataFrame:
    """Per month x tier (and 'all') x metric x severity (the one that applies to the metric): counts,
    and the rate only from MIN_RATED rated incidents on (NULL below: shown as counts)."""
    return _df(con, """
        SELECT month, CASE WHEN grouping(tier) = 1 THEN 'all' ELSE tier END AS tier, metric, severity,
               sum(met)::BIGINT AS met, sum(breached)::BIGINT AS breached, sum(pending)::BIGINT AS pending,
               (sum(met) + sum(breached))::BIGINT AS rated,
               CASE WHEN sum(met) + sum(breached) >= ? THEN sum(met) / (sum(met) + sum(breached)) END AS rate
        FROM monthly_sla_view
        WHERE month BETWEEN ? AND ? AND severity IS NOT NULL
        GROUP BY GROUPING SETS ((month, metric, severity, tier), (month, metric, severity))
        HAVING grouping(tier) = 1 OR tier IS NOT NULL
        ORDER BY month, tier, metric, severity
    """, [MIN_RATED, first, last])


def times_by_month(con, first: str, last: str) -> pd.DataFrame:
    """Median and 90th percentile business time per month x tier (and 'all') x metric, over the
    finished clocks of incidents opened in the month (as the customer PDFs compute them: DuckDB's
    median and quantile_cont, rounded to the second). P90 only from MIN_RATED measured values."""
    return _df(con, """
        WITH m AS (
            SELECT month, tier, 'first_response' AS metric, first_response_business_seconds AS secs
            FROM incident_sla WHERE month BETWEEN ? AND ?
            UNION ALL
            SELECT month, tier, 'resolution', resolution_business_seconds
            FROM incident_sla WHERE month BETWEEN ? AND ?
        )
        SELECT month, CASE WHEN grouping(tier) = 1 THEN 'all' ELSE tier END AS tier, metric,
               count(secs)::BIGINT AS measured,
               CAST(round(median(secs)) AS BIGINT) AS median_seconds,
               CASE WHEN count(secs) >= ? THEN CAST(round(quantile_cont(secs, 0.9)) AS BIGINT) END AS p90_seconds
        FROM m
        GROUP BY GROUPING SETS ((month, metric, tier), (month, metric))
        HAVING grouping(tier) = 1 OR tier IS NOT NULL
        ORDER BY month, tier, metric
    """, [first, last, first, last, MIN_RATED])


def breached_incidents(con, first: str, last: str) -> pd.DataFrame:
    """Every breached metric of the incidents opened in [first, last] (one row per incident and
    metric), with the time over target; the drill-down behind "Most breaches"."""
    return _df(con, """
        WITH names AS (
            SELECT customer_id, arg_max(customer_name, valid_from) AS customer_name
            FROM contracts GROUP BY customer_id
        ), m AS (
            SELECT ticket_id, customer_id, tier, month, created_at, resolved_at, 'first_response' AS metric,
                   first_response_severity AS severity,
                   coalesce(first_response_business_seconds, first_response_elapsed_business_seconds)
                       - first_response_target_seconds AS over_seconds
            FROM incident_sla WHERE month BETWEEN ? AND ? AND first_response_met = false
            UNION ALL
            SELECT ticket_id, customer_id, tier, month, created_at, resolved_at, 'resolution', resolution_severity,
                   coalesce(resolution_business_seconds, resolution_elapsed_business_seconds)
                       - resolution_target_seconds
            FROM incident_sla WHERE month BETWEEN ? AND ? AND resolution_met = false
        )
        SELECT m.ticket_id, m.customer_id, n.customer_name, m.tier, m.month, m.created_at, m.metric,
               m.severity, m.over_seconds, m.resolved_at IS NULL AS still_open
        FROM m LEFT JOIN names n USING (customer_id)
        ORDER BY m.severity, m.created_at, m.ticket_id, m.metric
    """, [first, last, first, last])


def renewal_watch(con, day: dt.date, first: str, last: str, *, days: int = RENEWAL_WATCH_DAYS) -> pd.DataFrame:
    """Gold customers whose Gold term ends in (day, day + days], with their Gold incidents opened in
    [first, last]: breaches and compliance (rates only from MIN_RATED rated incidents), and their open
    and breached-open incidents now.

    The term end is the contract's end date (``kind = 'contract ends'``) when the Gold contract has
    one and no later Gold contract follows it; for an open-ended Gold contract in force at `day`, it
    is the end of the annual period paid so far: the latest period end of its invoices issued by
    `day` (``kind = 'annual term ends'``), i.e. the next renewal invoice is due.
    """
    return _df(con, """
        WITH fixed AS (
            SELECT c.customer_id, c.valid_to AS term_end, 'contract ends' AS kind
            FROM contracts c
            WHERE c.tier = 'gold' AND c.valid_to IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM contracts d WHERE d.customer_id = c.customer_id AND d.tier = 'gold'
                                                          AND d.valid_from > c.valid_to)
        ), open_ended AS (
            SELECT c.customer_id, max(i.period_end) AS term_end, 'annual term ends' AS kind
            FROM contracts c JOIN invoices i ON i.customer_id = c.customer_id
            WHERE c.tier = 'gold' AND c.valid_to IS NULL AND c.valid_from <= ?::DATE
              AND i.issued_on <= ?::DATE AND i.amount_eur > 0
            GROUP BY c.customer_id
        ), names AS (
            SELECT customer_id, arg_max(customer_name, valid_from) AS customer_name,
                   arg_max(account_manager, valid_from) AS account_manager
            FROM contracts GROUP BY customer_id
        ), ending AS (
            SELECT t.customer_id, n.customer_name, n.account_manager, t.term_end AS valid_to, t.kind
            FROM (SELECT * FROM fixed UNION ALL SELECT * FROM open_ended) t JOIN names n USING (customer_id)
            WHERE t.term_end > ?::DATE AND t.term_end <= ?::DATE + to_days(?::INTEGER)
        ), inc AS (
            SELECT customer_id,
                   count(*) AS incidents,
                   count(*) FILTER (WHERE first_response_met) AS fr_met,
                   count(*) FILTER (WHERE NOT first_response_met) AS fr_breached,
                   count(*) FILTER (WHERE resolution_met) AS res_met,
                   count(*) FILTER (WHERE NOT resolution_met) AS res_breached,
                   count(*) FILTER (WHERE created_severity = 1
                                      AND (first_response_met = false OR resolution_met = false)) AS sev1_breached
            FROM incident_sla WHERE tier = 'gold' AND month BETWEEN ? AND ? GROUP BY customer_id
        ), open_now AS (
            SELECT customer_id, count(*) AS open_now,
                   count(*) FILTER (WHERE resolution_met = false
                                      OR (first_response_at IS NULL AND first_response_met = false)) AS open_breached
            FROM incident_sla WHERE resolved_at IS NULL GROUP BY customer_id
        )
        SELECT e.customer_id, e.customer_name, e.account_manager, e.valid_to, e.kind,
               datediff('day', ?::DATE, e.valid_to)::BIGINT AS days_left,
               coalesce(i.incidents, 0)::BIGINT AS incidents,
               coalesce(i.fr_met, 0)::BIGINT AS fr_met, coalesce(i.fr_breached, 0)::BIGINT AS fr_breached,
               coalesce(i.res_met, 0)::BIGINT AS res_met, coalesce(i.res_breached, 0)::BIGINT AS res_breached,
               (coalesce(i.fr_breached, 0) + coalesce(i.res_breached, 0))::BIGINT AS breaches,
               coalesce(i.sev1_breached, 0)::BIGINT AS sev1_breached,
               CASE WHEN i.fr_met + i.fr_breached >= ? THEN i.fr_met / (i.fr_met + i.fr_breached) END AS fr_rate,
               CASE WHEN i.res_met + i.res_breached >= ? THEN i.res_met / (i.res_met + i.res_breached) END AS res_rate,
               coalesce(o.open_now, 0)::BIGINT AS open_now, coalesce(o.open_breached, 0)::BIGINT AS open_breached
        FROM ending e LEFT JOIN inc i USING (customer_id) LEFT JOIN open_now o USING (customer_id)
        ORDER BY e.valid_to, e.customer_id
    """, [day, day, day, day, days, first, last, day, MIN_RATED, MIN_RATED])


def open_items(con) -> tuple[pd.DataFrame, OpenItemsTotals]:
    """The rows of gold_open_items with the customer's name, and their totals (exact Decimal):
    the same sums as the finance report's page 1."""
    frame = _exact_df(con, """
        WITH names AS (
            SELECT customer_id, arg_max(customer_name, valid_from) AS customer_name
            FROM contracts GROUP BY customer_id
        )
        SELECT o.customer_id, n.customer_name, o.year, o.owed_eur, o.invoiced_eur, o.difference_eur,
               o.to_invoice_eur, o.to_credit_eur
        FROM gold_open_items o LEFT JOIN names n USING (customer_id)
        ORDER BY o.to_invoice_eur + o.to_credit_eur DESC, o.customer_id, o.year
    """)
    row = con.execute("""
        SELECT coalesce(sum(to_invoice_eur), 0), count(*) FILTER (WHERE to_invoice_eur > 0),
               coalesce(sum(to_credit_eur), 0), count(*) FILTER (WHERE to_credit_eur > 0)
        FROM gold_open_items
    """).fetchone()
    return frame, OpenItemsTotals(row[0], int(row[1]), row[2], int(row[3]))


def target_terms(policy: Policy) -> dict[tuple[str, int], tuple[Target | None, Target | None]]:
    """The policy's own wording of every target, for the Targets table."""
    hours = policy.calendar.business_day_seconds / 3600
    return {(tier, sev): (policy_target(t.first_response, hours), policy_target(t.resolution, hours))
            for tier, tp in policy.tiers.items() for sev, t in sorted(tp.targets.items())}


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

    opened = open_incidents(con, bds, policy.calendar.timezone)
    targets = _df(con, "SELECT tier, severity, first_response_seconds, resolution_seconds FROM sla_targets "
                       "ORDER BY CASE tier WHEN 'professional' THEN 0 WHEN 'enterprise' THEN 1 ELSE 2 END, severity")
    quotas = dict(con.execute("SELECT tier, monthly_incident_quota FROM sla_tiers").fetchall())
    items, items_totals = open_items(con)
    last_year = month_range(shift_month(reporting, -11), reporting)
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
        compliance_severity=compliance_by_severity(con, month_list[0], reporting),
        times=times_by_month(con, month_list[0], reporting),
        breaches=breached_incidents(con, window[0], window[-1]),
        renewal_watch=renewal_watch(con, as_of.astimezone(tz).date(), last_year[0], reporting),
        open_items=items,
        open_items_totals=items_totals,
        target_terms=target_terms(policy),
    )
