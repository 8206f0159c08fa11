"""Plain-Python reference for Gold billing (sla-semantics.md section 5): day by day, exact Decimal.

Independent of the SQL in sla/sql/gold_reconciliation.sql: no DuckDB, no cents arithmetic, no
shared helpers; it reads the rules literally. Used by tests/test_billing.py.

Inputs:
- contracts: (customer_id, tier, valid_from, valid_to or None)
- invoices: (invoice_id, customer_id, issued_on, period_start, period_end, amount Decimal)
- cutoff_day: the cut-off's local date (policy timezone)

Outputs (rows sorted like `sorted()` would after the key functions below):
- gold_reconciliation rows: (customer_id, invoice_id or None, period_start, period_end,
  owed, invoiced, difference, status)
- gold_service_year rows: (customer_id, year, owed, invoiced, difference, to_invoice, to_credit)
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, localcontext

CENT = Decimal("0.01")
ONE_DAY = dt.timedelta(days=1)


def natural_key(invoice_id: str):
    """Digit runs compared as numbers ('I-9' < 'I-10'); ties (I-9 / I-09) by the text itself."""
    parts = re.split(r"([0-9]+)", invoice_id)
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], invoice_id


def half_up(x: Decimal) -> Decimal:
    """To the cent, ties away from zero (Decimal's ROUND_HALF_UP), so round(-x) == -round(x)."""
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def days_in_month(day: dt.date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def each_day(start: dt.date, end: dt.date):
    day = start
    while day <= end:
        yield day
        day += ONE_DAY


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_share(fees, month: dt.date) -> Decimal:
    """half-up(sum of the days' fees / days in the month): `fees` is the list of the days' fees."""
    return half_up(sum(fees, Decimal(0)) / days_in_month(month))


def reference(contracts, invoices, cutoff_day: dt.date, fee=Decimal("1499.00")):
    """`contracts`: (customer, tier, start, end[, terms]); `fee`: one Decimal, or a function
    (day, terms) -> the day's Gold fee (policy version in force that day, the contract's terms)."""
    with localcontext() as ctx:
        ctx.prec = 60
        fee_of = fee if callable(fee) else (lambda _day, _terms: fee)
        return _reference(contracts, invoices, cutoff_day, fee_of)


def _reference(contracts, invoices, cutoff_day, fee_of):
    existing = [inv for inv in invoices if inv[2] <= cutoff_day]
    ordered = sorted(existing, key=lambda inv: (inv[2], natural_key(inv[0])))
    horizon = max([cutoff_day] + [inv[4] for inv in existing])

    gold: dict[tuple[str, dt.date], Decimal] = {}  # Gold day -> its fee
    for cid, tier, start, end, *rest in contracts:
        if tier == "gold":
            for day in each_day(start, min(end or horizon, horizon)):
                gold[(cid, day)] = fee_of(day, rest[0] if rest else None)

    # assignment of days: the first non-credit invoice, in invoice order, whose period holds it
    owner: dict[tuple[str, dt.date], str] = {}
    for iid, cid, _issued, start, end, amount in ordered:
        if amount < 0:
            continue
        for day in each_day(start, end):
            if (cid, day) in gold and (cid, day) not in owner:
                owner[(cid, day)] = iid

    # unbilled runs: unclaimed Gold days up to the cut-off, maximal consecutive runs
    runs: list[list] = []  # [cid, start, end]
    for cid, day in sorted(x for x in gold if x[1] <= cutoff_day and x not in owner):
        if runs and runs[-1][0] == cid and runs[-1][2] + ONE_DAY == day:
            runs[-1][2] = day
        else:
            runs.append([cid, day, day])

    # pieces: line -> month -> the fees of its days
    pieces: dict[tuple, dict[dt.date, list]] = defaultdict(lambda: defaultdict(list))
    for (cid, day), iid in owner.items():
        pieces[("invoice", iid)][month_of(day)].append(gold[(cid, day)])
    for cid, start, end in runs:
        for day in each_day(start, end):
            pieces[("run", cid, start)][month_of(day)].append(gold[(cid, day)])

    def line_owed(key) -> Decimal:
        return sum((month_share(fees, m) for m, fees in pieces.get(key, {}).items()), Decimal("0.00"))

    lines = []
    for pos, (iid, cid, issued, start, end, amount) in enumerate(ordered):
        owed = line_owed(("invoice", iid))
        earlier_overlap = any(o[1] == cid and o[5] >= 0 and o[3] <= end and start <= o[4] for o in ordered[:pos])
        if amount < 0:
            status = "credit_note"
        elif earlier_overlap:
            status = "overlap"
        elif owed == 0:
            status = "not_gold"
        elif amount == owed:
            status = "ok"
        elif amount < owed:
            status = "under_billed"
        else:
            status = "over_billed"
        lines.append((cid, iid, start, end, owed, amount, amount - owed, status))
    for cid, start, end in runs:
        owed = line_owed(("run", cid, start))
        lines.append((cid, None, start, end, owed, Decimal("0.00"), -owed, "not_invoiced"))

    # service year
    owed_year: dict[tuple[str, int], Decimal] = defaultdict(lambda: Decimal("0.00"))
    invoiced_year: dict[tuple[str, int], Decimal] = defaultdict(lambda: Decimal("0.00"))
    for key, months in pieces.items():
        cid = key[1] if key[0] == "run" else next(o[1] for o in ordered if o[0] == key[1])
        for month, fees in months.items():
            owed_year[(cid, month.year)] += month_share(fees, month)
    for iid, cid, _issued, start, end, amount in ordered:
        for month, part in allocate(cid, start, end, amount, gold):
            invoiced_year[(cid, month.year)] += part
    years = []
    for cid, year in sorted(set(owed_year) | set(invoiced_year)):
        owed, invoiced = owed_year[(cid, year)], invoiced_year[(cid, year)]
        diff = invoiced - owed
        years.append((cid, year, owed, invoiced, diff, max(-diff, Decimal("0.00")), max(diff, Decimal("0.00"))))
    return sorted(lines, key=line_key), years


def allocate(cid, start, end, amount, gold) -> list[tuple[dt.date, Decimal]]:
    """The invoice's amount over the months of its period: weights = what the period owes on its
    own per month (by calendar days when that is 0), rounded half-up cumulatively."""
    gold_fees: dict[dt.date, list] = defaultdict(list)
    calendar_days: dict[dt.date, int] = defaultdict(int)
    for day in each_day(start, end):
        calendar_days[month_of(day)] += 1
        if (cid, day) in gold:
            gold_fees[month_of(day)].append(gold[(cid, day)])
    months = sorted(calendar_days)
    weights = [month_share(gold_fees[m], m) for m in months]
    if sum(weights) == 0:
        weights = [Decimal(calendar_days[m]) for m in months]
    total = sum(weights)
    parts, cum, done = [], Decimal(0), Decimal("0.00")
    for month, weight in zip(months, weights):
        cum += weight
        upto = half_up(amount * cum / total)
        parts.append((month, upto - done))
        done = upto
    assert done == amount
    return parts


def line_key(line):
    return line[0], line[2], line[1] or "", line[3]
