"""Gold billing reconciliation (sla-semantics.md section 5), set-based in DuckDB.

Money is kept in integer cents and rounded half-up once per calendar month, as the rules say;
`gold_reconciliation` has one line per invoice and one per run of unbilled Gold days.
"""

from __future__ import annotations

import datetime as dt

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
