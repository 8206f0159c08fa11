"""Per-incident SLA metrics and monthly aggregates, computed set-based in DuckDB.

The rules live in `sla/sql/incident_sla.sql` and `sla/sql/monthly.sql`; this module loads
the policy-derived lookup tables (targets, tiers, business calendar) and runs them.
"""

from __future__ import annotations

import datetime as dt

from sla.calendar import BusinessCalendar, ClockBuckets, write_business_calendar
from sla.db import read_sql, scalar
from sla.db import sql_list as _list
from sla.policy import Policy

#: calendar margin after the last instant, so every due instant lands inside the table
CALENDAR_MARGIN_YEARS = 2






def write_policy_tables(con, policy: Policy) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE sla_targets (tier VARCHAR, severity INTEGER, "
        "first_response_seconds BIGINT, resolution_seconds BIGINT)"
    )
    con.executemany("INSERT INTO sla_targets VALUES (?, ?, ?, ?)", policy.target_rows)
    con.execute(
        "CREATE OR REPLACE TABLE sla_tiers (tier VARCHAR, monthly_incident_quota INTEGER, "
        "monthly_price DECIMAL(12,2), billed VARCHAR)"
    )
    con.executemany(
        "INSERT INTO sla_tiers VALUES (?, ?, ?, ?)",
        [(name, t.monthly_incident_quota, t.monthly_price, t.billed) for name, t in policy.tiers.items()],
    )


def calendar_range(con, as_of: dt.datetime) -> tuple[dt.date, dt.date]:
    first = scalar(con, "SELECT min(created_at) FROM tickets")
    first_year = (first.year if first else as_of.year) - 1
    return dt.date(min(first_year, as_of.year - 1), 1, 1), dt.date(as_of.year + CALENDAR_MARGIN_YEARS, 12, 31)


def build_calendar(con, policy: Policy, as_of: dt.datetime) -> BusinessCalendar:
    first, last = calendar_range(con, as_of)
    calendar = BusinessCalendar.from_policy(policy.calendar, first, last)
    write_business_calendar(con, calendar)
    return calendar


def compute_incident_sla(con, policy: Policy, as_of: dt.datetime) -> int:
    """(Re)build `incident_sla` and `incident_clock_segments` as of the cut-off; returns incidents."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must carry a timezone")
    write_policy_tables(con, policy)
    calendar = build_calendar(con, policy, as_of)
    # whole seconds, like every imported timestamp (epoch()::BIGINT would otherwise round)
    con.execute("CREATE OR REPLACE TABLE run_params AS SELECT date_trunc('second', CAST(? AS TIMESTAMPTZ)) AS as_of",
                [as_of.isoformat()])
    sql = read_sql("incident_sla.sql").format(
        tz=policy.calendar.timezone,
        initial_status=policy.statuses.initial,
        resolved=_list(policy.statuses.resolved),
        pause=_list(policy.statuses.pause) if policy.statuses.pause else "('\x00')",
        **ClockBuckets.of(calendar).sql_params(),
    )
    con.execute(sql)
    return scalar(con, "SELECT count(*) FROM incident_sla")


def compute_monthly_slice(con, month: str) -> int:
    """Rebuild the aggregates of one local month (delete the slice, insert it again)."""
    con.execute(read_sql("monthly.sql"))
    con.execute("DELETE FROM monthly_sla WHERE month = ?", [month])
    con.execute("INSERT INTO monthly_sla SELECT * FROM monthly_sla_view WHERE month = ?", [month])
    con.execute("DELETE FROM monthly_quota WHERE month = ?", [month])
    con.execute("INSERT INTO monthly_quota SELECT * FROM monthly_quota_view WHERE month = ?", [month])
    return scalar(con, "SELECT count(*) FROM monthly_quota WHERE month = ?", [month])
