"""Gold billing (sla-semantics.md section 5), set-based in DuckDB (sla/sql/gold_reconciliation.sql).

Money is kept in integer cents and converted to DECIMAL(12,2) only for output; every piece (the
days of one invoice or one unbilled run in one calendar month) is rounded half-up on its own.

Tables written (as of the cut-off `as_of`; `run_params` keeps it):
- `gold_reconciliation`: one line per invoice issued on or before the cut-off's local date and
  one per run of unbilled Gold days (data-contract.md), plus `issued_on`, `gold_days` (Gold days
  assigned to the line) and `invoice_rank` (position in invoice order within the customer).
- `gold_pieces`: customer_id, invoice_id (NULL for a run), period_start/period_end of the line,
  month, year, days, days_in_month, owed_cents, owed_eur.
- `gold_invoice_parts`: each invoice's amount spread over the months of its period
  (customer_id, invoice_id, month, year, calendar_days, gold_days, weight, weighted_by_fee,
  part_cents); the parts of an invoice add up to its amount exactly.
- `gold_service_year`: per customer and calendar year, owed (its pieces) against invoiced (its
  parts), difference, to_invoice, to_credit (data-contract.md).
- view `gold_open_items`: the customer-years with something to invoice or to credit.

Choices where the rules are silent (details in the SQL file's header):
- Natural order of invoice ids: (text, number) pairs as re.split(r'([0-9]+)', id) gives them,
  numbers compared by value at any length; ids equal that way ('I-9', 'I-09') by plain text.
- A credit note is not an "earlier invoice" for `overlap` (it claims no days); 0.00 is an invoice.
- Days of an invoice after the cut-off are owed by that invoice; only unbilled runs stop at the
  cut-off's local date.
- Negative amounts round half away from zero when spread, so a credit note mirrors its invoice.
- `gold_service_year` has a row for every customer-year with a piece or a month of an invoice
  period, even when all its figures are 0.00.
- The fee of a Gold day is the Gold `monthly_price` of the policy version in force that day, or the
  contract's term set's `monthly_price` when it names one (sla-semantics.md section 6). A piece
  whose days have different fees owes half-up(sum of the days' fees / days in the month).
"""

from __future__ import annotations

import datetime as dt

from sla.db import bind_variables, insert_rows, read_sql, scalar
from sla.policy import Policy, versioned_tier_rows

GOLD_TIER = "gold"


def gold_fee_cents(policy: Policy) -> int:
    tier = policy.tiers.get(GOLD_TIER)
    if tier is None:
        raise ValueError("the policy has no 'gold' tier: nothing to reconcile")
    return int(tier.monthly_price * 100)


def gold_fee_rows(policy: Policy) -> list[tuple]:
    """(valid_from, valid_to, terms, fee_cents) of Gold per policy version x term set (NULL = standard)."""
    gold_fee_cents(policy)  # the policy must have a gold tier
    return [(start, end, terms, int(price * 100))
            for start, end, terms, tier, _quota, price, _billed in versioned_tier_rows(policy) if tier == GOLD_TIER]


def compute_gold_reconciliation(con, policy: Policy, as_of: dt.datetime) -> int:
    con.execute("CREATE OR REPLACE TABLE run_params AS SELECT date_trunc('second', CAST(? AS TIMESTAMPTZ)) AS as_of",
                [as_of.isoformat()])
    con.execute("CREATE OR REPLACE TEMP TABLE gold_fee (valid_from DATE, valid_to DATE, terms VARCHAR, fee_cents BIGINT)")
    insert_rows(con, "gold_fee", gold_fee_rows(policy))
    con.execute("ALTER TABLE contracts ADD COLUMN IF NOT EXISTS terms VARCHAR")
    bind_variables(con, tz=policy.calendar.timezone)
    con.execute(read_sql("gold_reconciliation.sql"))
    return scalar(con, "SELECT count(*) FROM gold_reconciliation")
