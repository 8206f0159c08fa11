"""Gold billing reconciliation (sla-semantics.md section 5), set-based in DuckDB.

Money is kept in integer cents and rounded half-up once per calendar month, as the rules say;
`gold_reconciliation` has one line per invoice and one per run of unbilled Gold days.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sla.db import read_sql, scalar
from sla.policy import Policy

GOLD_TIER = "gold"


def gold_fee_cents(policy: Policy) -> int:
    tier = policy.tiers.get(GOLD_TIER)
    if tier is None:
        raise ValueError("the policy has no 'gold' tier: nothing to reconcile")
    return int(tier.monthly_price * 100)


def compute_gold_reconciliation(con, policy: Policy, as_of: dt.datetime) -> int:
    con.execute("CREATE OR REPLACE TABLE run_params AS SELECT date_trunc('second', CAST(? AS TIMESTAMPTZ)) AS as_of",
                [as_of.isoformat()])
    con.execute("CREATE OR REPLACE TEMP TABLE gold_fee AS SELECT CAST(? AS BIGINT) AS fee_cents", [gold_fee_cents(policy)])
    con.execute(read_sql("gold_reconciliation.sql").format(tz=policy.calendar.timezone))
    return scalar(con, "SELECT count(*) FROM gold_reconciliation")


def owed_for_period(fee: Decimal, gold_days: set[dt.date], start: dt.date, end: dt.date) -> Decimal:
    """The rule in plain Python (for single calls, documentation and tests)."""
    import calendar
    from decimal import ROUND_HALF_UP

    total = Decimal("0.00")
    day = start.replace(day=1)
    while day <= end:
        days_in_month = calendar.monthrange(day.year, day.month)[1]
        month_end = day.replace(day=days_in_month)
        n = sum(1 for k in range(days_in_month) if start <= (d := day + dt.timedelta(days=k)) <= end and d in gold_days)
        total += (fee * n / days_in_month).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        day = month_end + dt.timedelta(days=1)
    return total
