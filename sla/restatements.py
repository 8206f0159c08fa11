"""Restatements (sla-semantics.md section 6): what a delivered report said, and what changed since.

When `sla deliver` sends a month's report to a customer's account manager, the figures it sent are
kept (`delivered_figures`, one row per customer, month and figure; `delivered_incidents`, the
incidents behind them). A later run may change a delivered month (late events, an exclusion, a
corrected contract); the view `restatements` compares the latest delivered figures with today's
`incident_sla` and lists the changes (customer, month, figure, was, now, why).

Figures (names in `figure`): incidents, first_response_met, first_response_breached,
first_response_pending, first_response_excluded, resolution_met, resolution_breached,
resolution_pending, resolution_excluded, over_quota.

`why` lists the incidents behind the change where the warehouse knows them, e.g.
"T-7: resolution pending -> breached; T-9: not in the report (arrived later)";
"T-3: resolution excluded (approved by ...: reason)". NULL when no incident explains it.
"""

from __future__ import annotations

import datetime as dt

from sla.db import ensure_views

FIGURES = ("incidents", "first_response_met", "first_response_breached", "first_response_pending",
           "first_response_excluded", "resolution_met", "resolution_breached", "resolution_pending",
           "resolution_excluded", "over_quota")

_STATE = """CASE WHEN {m}_excluded THEN 'excluded' WHEN {m}_met THEN 'met' WHEN NOT {m}_met THEN 'breached'
                 WHEN {m}_target_seconds IS NULL THEN 'no target' ELSE 'pending' END"""


#: the views of this module, in creation order (each reads the ones before it)
VIEWS = {
    "incident_states": f"""
        SELECT month, customer_id, ticket_id, {_STATE.format(m='first_response')} AS first_response_state,
               {_STATE.format(m='resolution')} AS resolution_state, coalesce(over_quota, false) AS over_quota,
               tier, terms
        FROM incident_sla""",
    "current_figures": """
        WITH per AS (
            SELECT month, customer_id, count(*) AS incidents,
                   count(*) FILTER (WHERE first_response_state = 'met') AS first_response_met,
                   count(*) FILTER (WHERE first_response_state = 'breached') AS first_response_breached,
                   count(*) FILTER (WHERE first_response_state = 'pending') AS first_response_pending,
                   count(*) FILTER (WHERE first_response_state = 'excluded') AS first_response_excluded,
                   count(*) FILTER (WHERE resolution_state = 'met') AS resolution_met,
                   count(*) FILTER (WHERE resolution_state = 'breached') AS resolution_breached,
                   count(*) FILTER (WHERE resolution_state = 'pending') AS resolution_pending,
                   count(*) FILTER (WHERE resolution_state = 'excluded') AS resolution_excluded,
                   count(*) FILTER (WHERE over_quota) AS over_quota
            FROM incident_states GROUP BY month, customer_id
        )
        UNPIVOT per ON COLUMNS(* EXCLUDE (month, customer_id)) INTO NAME figure VALUE value""",
    # the latest delivery per customer and month is what the customer last read
    "restatements": """
        WITH last_sent AS (
            SELECT month, customer_id, max(delivered_at) AS delivered_at
            FROM delivered_figures GROUP BY month, customer_id
        ), was AS (
            SELECT f.* FROM delivered_figures f JOIN last_sent l USING (month, customer_id, delivered_at)
        ), inc_was AS (
            SELECT i.* FROM delivered_incidents i JOIN last_sent l USING (month, customer_id, delivered_at)
        ), inc_now AS (
            SELECT s.* FROM incident_states s JOIN last_sent l USING (month, customer_id)
        ), changed AS (
            SELECT coalesce(n.month, w.month) AS month, coalesce(n.customer_id, w.customer_id) AS customer_id,
                   coalesce(n.ticket_id, w.ticket_id) AS ticket_id,
                   CASE
                     WHEN w.ticket_id IS NULL THEN coalesce(n.ticket_id, '') || ': not in the report (arrived later)'
                     WHEN n.ticket_id IS NULL THEN w.ticket_id || ': no longer in the data'
                     ELSE w.ticket_id || ': ' || concat_ws('; ',
                        CASE WHEN w.tier IS DISTINCT FROM n.tier OR w.terms IS DISTINCT FROM n.terms
                             THEN 'contract ' || coalesce(w.tier || coalesce(' (' || w.terms || ')', ''), 'none')
                                  || ' -> ' || coalesce(n.tier || coalesce(' (' || n.terms || ')', ''), 'none') END,
                        CASE WHEN w.first_response_state <> n.first_response_state
                             THEN 'first response ' || w.first_response_state || ' -> ' || n.first_response_state
                                  || coalesce(' (' || xf.reason || ', approved by ' || xf.approved_by || ')', '') END,
                        CASE WHEN w.resolution_state <> n.resolution_state
                             THEN 'resolution ' || w.resolution_state || ' -> ' || n.resolution_state
                                  || coalesce(' (' || xr.reason || ', approved by ' || xr.approved_by || ')', '') END,
                        CASE WHEN w.over_quota <> n.over_quota
                             THEN CASE WHEN n.over_quota THEN 'now over quota' ELSE 'now within quota' END END)
                   END AS what
            FROM inc_was w FULL OUTER JOIN inc_now n USING (month, customer_id, ticket_id)
            LEFT JOIN incident_exclusions xf ON xf.ticket_id = n.ticket_id AND xf.metric = 'first_response'
                  AND n.first_response_state = 'excluded'
            LEFT JOIN incident_exclusions xr ON xr.ticket_id = n.ticket_id AND xr.metric = 'resolution'
                  AND n.resolution_state = 'excluded'
            WHERE w.ticket_id IS NULL OR n.ticket_id IS NULL
               OR w.first_response_state <> n.first_response_state OR w.resolution_state <> n.resolution_state
               OR w.over_quota <> n.over_quota OR w.tier IS DISTINCT FROM n.tier OR w.terms IS DISTINCT FROM n.terms
        ), why AS (
            SELECT month, customer_id, string_agg(what, '; ' ORDER BY ticket_id) AS why FROM changed GROUP BY ALL
        )
        SELECT w.customer_id, w.month, w.figure, w.value AS was, coalesce(c.value, 0) AS now,
               y.why, w.delivered_at, w.as_of AS delivered_as_of
        FROM was w
        LEFT JOIN current_figures c USING (month, customer_id, figure)
        LEFT JOIN why y USING (month, customer_id)
        WHERE w.value IS DISTINCT FROM coalesce(c.value, 0)""",
}


def ensure_tables(con, rebind_views: bool = True) -> None:
    """The delivered-figures tables (kept) and the views over incident_sla (made, or remade when
    their text changed or with `rebind_views`: after incident_sla was rebuilt; sla.db.ensure_views)."""
    con.execute(
        """CREATE TABLE IF NOT EXISTS delivered_incidents (month VARCHAR, customer_id VARCHAR, ticket_id VARCHAR,
           first_response_state VARCHAR, resolution_state VARCHAR, over_quota BOOLEAN, tier VARCHAR,
           terms VARCHAR, delivered_at TIMESTAMPTZ, as_of TIMESTAMPTZ)"""
    )
    con.execute(
        """CREATE TABLE IF NOT EXISTS delivered_figures (month VARCHAR, customer_id VARCHAR, figure VARCHAR,
           value BIGINT, delivered_at TIMESTAMPTZ, as_of TIMESTAMPTZ, recipient VARCHAR)"""
    )
    ensure_views(con, VIEWS, rebind=rebind_views)


def keep_delivered(con, month: str, customer_ids: list[str], recipient: str,
                   delivered_at: dt.datetime) -> int:
    """Keep what a delivery sent: the month's figures of each customer (all figures, zeros
    included) and the incidents behind them. Returns the figure rows written."""
    ensure_tables(con)
    if not customer_ids:
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE _sent_customers AS SELECT unnest(?::VARCHAR[]) AS customer_id",
                [list(customer_ids)])
    as_of = con.execute("SELECT max(as_of) FROM incident_sla").fetchone()[0]
    con.execute(
        """INSERT INTO delivered_incidents
           SELECT s.month, s.customer_id, s.ticket_id, s.first_response_state, s.resolution_state, s.over_quota,
                  s.tier, s.terms, ?, ?
           FROM incident_states s JOIN _sent_customers USING (customer_id) WHERE s.month = ?""",
        [delivered_at, as_of, month])
    figures = ", ".join(f"('{f}')" for f in FIGURES)
    con.execute(
        f"""INSERT INTO delivered_figures
            SELECT ?, c.customer_id, f.figure, coalesce(v.value, 0), ?, ?, ?
            FROM _sent_customers c CROSS JOIN (VALUES {figures}) f(figure)
            LEFT JOIN current_figures v ON v.month = ? AND v.customer_id = c.customer_id AND v.figure = f.figure""",
        [month, delivered_at, as_of, recipient, month])
    return len(customer_ids) * len(FIGURES)


def restatements(con, month: str | None = None) -> list[tuple]:
    """(customer_id, month, figure, was, now, why) of delivered months whose figures changed;
    `month` limits them to one month. A warehouse that never computed them has none."""
    if not con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'restatements'").fetchone()[0]:
        return []
    where, params = ("WHERE month = ?", [month]) if month else ("", [])
    order = {f: i for i, f in enumerate(FIGURES)}
    rows = con.execute(f"SELECT customer_id, month, figure, was, now, why FROM restatements {where}", params).fetchall()
    return sorted(rows, key=lambda r: (r[1], r[0], order.get(r[2], 99)))
