"""The yearly Gold billing report for finance: view model and export rows (issues 4 and 14).

Domain side, no Dagster and no templates: a DuckDB connection (with `contracts`,
`gold_reconciliation` and `incident_sla`) and the policy in, `GoldBillingReport` out.

Choices (sla-semantics.md section 5, last bullet; also in the README):
- Page 1: the year's service view (`gold_service_year` of the year, all customers) and every
  open item of any year (`gold_open_items`), each with the lines causing it: the customer's
  lines that are not ok and whose Gold days (`gold_pieces`) or invoice parts
  (`gold_invoice_parts`) fall in that year. To invoice and to credit are summed separately.
- Sections: problem customers (an open item of any year, or a line of the year that is not ok)
  first, then the others, each group by customer id; a year covered by an invoice issued earlier
  names it (`covered_by`: invoices issued before the year that own Gold days in it).
- The report for year Y holds the invoices *issued* in Y and the runs of unbilled Gold days
  that *touch* Y (a run from 2025-12-17 to 2026-09-15 appears, in full, in the 2025 and the
  2026 report). Totals (owed, invoiced, difference) are the sums of exactly these lines, so
  they equal the sums of the CSV export of the same year.
- A section per customer with a Gold day in Y (contract history) or a line in Y (so an
  invoice to an Enterprise customer, status not_gold, gets a section without Gold periods).
- Gold periods: the customer's Gold contracts merged where they overlap or follow each other
  without a gap, clipped to the year. An open-ended contract runs to the end of the year.
- Display name and account manager: those of the customer's latest contract starting on or
  before the end of the year (failing that, its earliest contract).
- Quota: Gold incidents (incident_sla.tier = 'gold', i.e. Gold on the creation date) per
  local month of creation, included vs over the tier's monthly quota (`over_quota`), the same
  rule as `monthly_quota`; read from `incident_sla`, which holds every month, because
  `monthly_quota` only holds the months a monthly run has aggregated. Listed for the months
  of the year up to the cut-off's month with a Gold day or a Gold incident.
- Compliance: met / (met + breached) over the customer's Gold incidents created in the year
  (first response and resolution separately); pending and no-target incidents are counted
  but not rated. Exact `Decimal`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sla.billing import GOLD_TIER
from sla.months import rate
from sla.policy import Policy
from sla.report_data.models import (
    STATUSES,
    ZERO,
    BillingLine,
    GoldBillingReport,
    GoldCustomerSection,
    GoldPeriod,
    MetricSummary,
    OpenItem,
    QuotaMonth,
    ServiceYear,
    StatusTotal,
    Totals,
)

#: the lines of a year: invoices issued in it, unbilled runs touching it (parameters: first
#: and last day of the year, twice)
_LINE_COLUMNS = """customer_id, invoice_id, issued_on, period_start, period_end,
       owed_eur, invoiced_eur, difference_eur, status, gold_days"""
_YEAR_LINES_SQL = f"""
SELECT {_LINE_COLUMNS}
FROM gold_reconciliation
WHERE (invoice_id IS NOT NULL AND issued_on BETWEEN ? AND ?)
   OR (invoice_id IS NULL AND period_start <= ? AND period_end >= ?)
ORDER BY customer_id, period_start, invoice_id NULLS LAST, period_end, status
"""


def year_bounds(year: int) -> tuple[dt.date, dt.date]:
    if not isinstance(year, int) or not 1 <= year <= 9998:
        raise ValueError(f"year must be a calendar year such as 2026, got {year!r}")
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def year_lines(con, year: int) -> list[BillingLine]:
    first, last = year_bounds(year)
    rows = con.execute(_YEAR_LINES_SQL, [first, last, last, first]).fetchall()
    return [_line(r) for r in rows]


def _line(r) -> BillingLine:
    return BillingLine(customer_id=r[0], invoice_id=r[1], issued_on=r[2], period_start=r[3], period_end=r[4],
                       owed=_money(r[5]), invoiced=_money(r[6]), difference=_money(r[7]), status=r[8],
                       gold_days=int(r[9] or 0))


def service_years(con, year: int | None = None) -> dict[tuple[str, int], ServiceYear]:
    """(customer_id, year) -> its row of `gold_service_year` (all years, or one)."""
    sql = ("SELECT customer_id, year, owed_eur, invoiced_eur, to_invoice_eur, to_credit_eur "
           "FROM gold_service_year")
    rows = con.execute(sql + (" WHERE year = ?" if year is not None else ""),
                       [year] if year is not None else []).fetchall()
    return {(r[0], r[1]): ServiceYear(owed=_money(r[2]), invoiced=_money(r[3]), to_invoice=_money(r[4]),
                                      to_credit=_money(r[5])) for r in rows}


def open_item_keys(con) -> list[tuple[str, int]]:
    """(customer_id, year) of every open item (`gold_open_items`), any year."""
    return [tuple(r) for r in con.execute("SELECT customer_id, year FROM gold_open_items ORDER BY 1, 2").fetchall()]


def open_item_years(con) -> list[int]:
    """The years with an open item: `sla run` renders the report of each."""
    if not _table_exists(con, "gold_service_year"):
        return []
    return [r[0] for r in con.execute("SELECT DISTINCT year FROM gold_open_items ORDER BY 1").fetchall()]


def _cause_lines(con, keys) -> dict[tuple[str, int], tuple[BillingLine, ...]]:
    """The lines (status not ok) of each open item's customer whose days or invoice parts fall in its year."""
    if not keys:
        return {}
    customers = sorted({k[0] for k in keys})
    rows = con.execute(f"""
        WITH years AS (
            SELECT DISTINCT invoice_id, customer_id, year FROM gold_invoice_parts
            UNION SELECT DISTINCT invoice_id, customer_id, year FROM gold_pieces)
        SELECT {_LINE_COLUMNS.replace('customer_id', 'r.customer_id').replace('invoice_id', 'r.invoice_id')},
               y.year
        FROM gold_reconciliation r JOIN years y
          ON y.customer_id = r.customer_id
         AND (y.invoice_id = r.invoice_id
              OR (y.invoice_id IS NULL AND r.invoice_id IS NULL
                  AND y.year BETWEEN year(r.period_start) AND year(r.period_end)))
        WHERE r.status <> 'ok' AND list_contains(?, r.customer_id)
        ORDER BY r.customer_id, y.year, r.period_start, r.invoice_rank NULLS LAST
        """, [customers]).fetchall()
    found: dict[tuple[str, int], list[BillingLine]] = defaultdict(list)
    wanted = set(keys)
    for r in rows:
        k = (r[0], r[10])
        if k in wanted:
            line = _line(r[:10])
            if line not in found[k]:
                found[k].append(line)
    return {k: tuple(v) for k, v in found.items()}


def _covering_lines(con, year: int) -> dict[str, tuple[BillingLine, ...]]:
    """customer_id -> invoices issued before the year that own Gold days in it ("covered by")."""
    first, _ = year_bounds(year)
    rows = con.execute(f"""
        SELECT {_LINE_COLUMNS.replace('gold_days', 'p.days').replace('customer_id', 'r.customer_id')
                .replace('invoice_id', 'r.invoice_id')}
        FROM gold_reconciliation r
        JOIN (SELECT invoice_id, sum(days) AS days FROM gold_pieces
              WHERE year = ? AND invoice_id IS NOT NULL GROUP BY 1) p ON p.invoice_id = r.invoice_id
        WHERE r.issued_on < ?
        ORDER BY r.customer_id, r.invoice_rank
        """, [year, first]).fetchall()
    found: dict[str, list[BillingLine]] = defaultdict(list)
    for r in rows:
        found[r[0]].append(_line(r))
    return {k: tuple(v) for k, v in found.items()}


def anchor(index: int) -> str:
    """A section id that needs no escaping (customer ids are data)."""
    return f"cust-{index:05d}"


def _money(value) -> Decimal:
    if value is None:
        return ZERO
    if not isinstance(value, Decimal):  # DECIMAL columns come back as Decimal; anything else is a bug
        raise TypeError(f"money column returned {type(value).__name__}, expected Decimal")
    return value.quantize(Decimal("0.01"))


def _table_exists(con, name: str) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                       [name]).fetchall()[0][0] > 0


def customer_names(con, year: int, customer_ids=None) -> dict[str, tuple[str, str | None]]:
    """customer_id -> (name, account manager) of its latest contract starting by the year's end."""
    _, last = year_bounds(year)
    rows = con.execute("SELECT customer_id, customer_name, account_manager, valid_from FROM contracts "
                       "ORDER BY customer_id, valid_from, valid_to NULLS LAST").fetchall()
    chosen: dict[str, tuple[str, str | None]] = {}
    for cid, name, manager, valid_from in rows:  # in valid_from order
        if customer_ids is not None and cid not in customer_ids:
            continue
        if cid not in chosen or valid_from <= last:  # the earliest, replaced by later ones by the year's end
            chosen[cid] = (name, manager)
    return chosen


def gold_periods(con, year: int) -> dict[str, tuple[GoldPeriod, ...]]:
    """customer_id -> its Gold periods in the year (merged contract history, clipped)."""
    first, last = year_bounds(year)
    rows = con.execute(
        "SELECT customer_id, valid_from, valid_to FROM contracts WHERE tier = ? AND valid_from <= ? "
        "AND (valid_to IS NULL OR valid_to >= ?) ORDER BY customer_id, valid_from, valid_to NULLS LAST",
        [GOLD_TIER, last, first]).fetchall()
    merged: dict[str, list[list]] = defaultdict(list)  # [start, end or None (open), ]
    for cid, start, end in rows:
        spans = merged[cid]
        if spans and (spans[-1][1] is None or start <= spans[-1][1] + dt.timedelta(days=1)):
            if spans[-1][1] is not None:
                spans[-1][1] = None if end is None else max(spans[-1][1], end)
        else:
            spans.append([start, end])
    result = {}
    for cid, spans in merged.items():
        result[cid] = tuple(
            GoldPeriod(start=max(start, first), end=last if end is None else min(end, last),
                       open_ended=end is None, starts_before_year=start < first,
                       ends_after_year=end is None or end > last)
            for start, end in spans)
    return result


def _months_with_gold(periods: tuple[GoldPeriod, ...]) -> set[str]:
    months = set()
    for p in periods:
        y, m = p.start.year, p.start.month
        while (y, m) <= (p.end.year, p.end.month):
            months.add(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def _incident_figures(con, year: int):
    """(quota counts {cid: {month: (incidents, over)}}, compliance {cid: (n, fr, res)})."""
    quota: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    compliance: dict[str, tuple[int, MetricSummary, MetricSummary]] = {}
    if not _table_exists(con, "incident_sla"):
        return quota, compliance
    first_month, last_month = f"{year:04d}-01", f"{year:04d}-12"
    for cid, month, n, over in con.execute(
            "SELECT customer_id, month, count(*), count(*) FILTER (WHERE over_quota) FROM incident_sla "
            "WHERE tier = ? AND month BETWEEN ? AND ? GROUP BY ALL ORDER BY ALL",
            [GOLD_TIER, first_month, last_month]).fetchall():
        quota[cid][month] = (n, over)
    for row in con.execute(
            """
            SELECT customer_id, count(*),
                   count(*) FILTER (WHERE first_response_met),
                   count(*) FILTER (WHERE NOT first_response_met),
                   count(*) FILTER (WHERE first_response_met IS NULL AND first_response_target_seconds IS NOT NULL),
                   count(*) FILTER (WHERE first_response_target_seconds IS NULL),
                   count(*) FILTER (WHERE resolution_met),
                   count(*) FILTER (WHERE NOT resolution_met),
                   count(*) FILTER (WHERE resolution_met IS NULL AND resolution_target_seconds IS NOT NULL),
                   count(*) FILTER (WHERE resolution_target_seconds IS NULL)
            FROM incident_sla WHERE tier = ? AND month BETWEEN ? AND ? GROUP BY 1 ORDER BY 1
            """, [GOLD_TIER, first_month, last_month]).fetchall():
        cid, n, fm, fb, fp, fn, rm, rb, rp, rn = row
        compliance[cid] = (n, MetricSummary(fm, fb, fp, fn, rate(fm, fb)),
                           MetricSummary(rm, rb, rp, rn, rate(rm, rb)))
    return quota, compliance


def warehouse_cutoff(con) -> dt.datetime:
    """The cut-off the warehouse's figures (`gold_reconciliation`, `incident_sla`) were computed as of."""
    value = None
    if _table_exists(con, "run_params"):
        value = con.execute("SELECT max(as_of) FROM run_params").fetchall()[0][0]
    if value is None:
        raise FileNotFoundError("the warehouse has no cut-off (run_params): run `sla run` first")
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def build_billing_report(con, policy: Policy, year: int, as_of: dt.datetime | None = None) -> GoldBillingReport:
    """The finance report of one year, as of the data's cut-off.

    `as_of` (timezone-aware) must be the cut-off `gold_reconciliation` was computed with;
    None reads it from the warehouse (`run_params`), so re-rendering gives the same bytes.
    """
    if as_of is None:
        as_of = warehouse_cutoff(con)
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    year_bounds(year)
    gold = policy.tiers.get(GOLD_TIER)
    if gold is None:
        raise ValueError("the policy has no 'gold' tier: nothing to report")
    cutoff_day = as_of.astimezone(policy.calendar.tz).date()
    cutoff_month = f"{cutoff_day.year:04d}-{cutoff_day.month:02d}"

    lines = year_lines(con, year)
    periods = gold_periods(con, year)
    quota_counts, compliance = _incident_figures(con, year)
    by_customer: dict[str, list[BillingLine]] = defaultdict(list)
    for line in lines:
        by_customer[line.customer_id].append(line)
    service = service_years(con, year)
    keys = open_item_keys(con)
    causes = _cause_lines(con, keys)
    covering = _covering_lines(con, year)
    open_customers = {cid for cid, _ in keys}
    customer_ids = sorted(set(periods) | set(by_customer) | open_customers | set(covering))
    names = customer_names(con, year, set(customer_ids))
    problem = {cid for cid in customer_ids
               if cid in open_customers or any(x.status != "ok" for x in by_customer.get(cid, ()))}
    # problem customers first, then the others; each group in customer id order
    customer_ids.sort(key=lambda cid: (cid not in problem, cid))
    anchors = {cid: anchor(i) for i, cid in enumerate(customer_ids, start=1)}
    all_service = service_years(con) if keys else {}
    open_items = tuple(
        OpenItem(customer_id=cid, customer_name=names.get(cid, (cid, None))[0], anchor=anchors[cid], year=y,
                 service=all_service[(cid, y)], causes=causes.get((cid, y), ()))
        for cid, y in sorted(keys, key=lambda k: (k[0] not in problem, k[0], k[1])))

    sections = []
    for cid in customer_ids:
        cust_periods = periods.get(cid, ())
        counts = quota_counts.get(cid, {})
        gold_months = _months_with_gold(cust_periods)
        months = sorted(m for m in gold_months | set(counts) if m <= cutoff_month)
        quota = tuple(
            QuotaMonth(month=m, incidents=counts.get(m, (0, 0))[0],
                       included=counts.get(m, (0, 0))[0] - counts.get(m, (0, 0))[1],
                       over_quota=counts.get(m, (0, 0))[1], quota=gold.monthly_incident_quota)
            for m in months)
        n_incidents, fr, res = compliance.get(cid, (0, MetricSummary(), MetricSummary()))
        cust_lines = by_customer.get(cid, [])
        name, manager = names.get(cid, (cid, None))
        sections.append(GoldCustomerSection(
            customer_id=cid, customer_name=name, account_manager=manager,
            periods=cust_periods, gold_days=sum(p.days for p in cust_periods),
            invoices=tuple(x for x in cust_lines if x.invoice_id is not None),
            unbilled=tuple(x for x in cust_lines if x.invoice_id is None),
            totals=Totals.of(cust_lines), quota=quota, gold_incidents=n_incidents,
            first_response=fr, resolution=res, anchor=anchors[cid],
            service=service.get((cid, year), ServiceYear()), covered_by=covering.get(cid, ()),
            open_items=tuple(o for o in open_items if o.customer_id == cid), problem=cid in problem,
        ))

    by_status = []
    for status in STATUSES + tuple(sorted({x.status for x in lines} - set(STATUSES))):
        of_status = [x for x in lines if x.status == status]
        if of_status:
            t = Totals.of(of_status)
            by_status.append(StatusTotal(status, t.lines, t.owed, t.invoiced, t.difference))

    return GoldBillingReport(
        year=year, cutoff=as_of, cutoff_day=cutoff_day, timezone=policy.calendar.timezone,
        currency=policy.currency, monthly_fee=gold.monthly_price.quantize(Decimal("0.01")),
        annual_fee=(gold.monthly_price * 12).quantize(Decimal("0.01")),
        monthly_quota=gold.monthly_incident_quota, totals=Totals.of(lines), by_status=tuple(by_status),
        exceptions=tuple(x for x in lines if x.status != "ok"), customers=tuple(sections),
        service=ServiceYear(owed=sum((v.owed for v in service.values()), ZERO),
                            invoiced=sum((v.invoiced for v in service.values()), ZERO),
                            to_invoice=sum((v.to_invoice for v in service.values()), ZERO),
                            to_credit=sum((v.to_credit for v in service.values()), ZERO)),
        open_items=open_items,
        open_to_invoice=sum((o.service.to_invoice for o in open_items), ZERO),
        open_to_credit=sum((o.service.to_credit for o in open_items), ZERO),
    )


def reconciliation_rows(con, year: int) -> list[tuple]:
    """Rows for the exports (`reports.billing_csv.CSV_COLUMNS`): the year's lines (the PDF's
    selection) plus every line causing an open item of any year, with the years it causes."""
    lines = year_lines(con, year)
    keys = open_item_keys(con)
    causing: dict[BillingLine, list[int]] = defaultdict(list)
    for (_, item_year), cause_lines in sorted(_cause_lines(con, keys).items()):
        for line in cause_lines:
            causing[line].append(item_year)
    in_year = set(lines)
    lines += [x for x in causing if x not in in_year]
    lines.sort(key=lambda x: (x.customer_id, x.period_start, x.issued_on or dt.date.max, x.invoice_id or ""))
    names = customer_names(con, year, {x.customer_id for x in lines})
    return [(x.customer_id, *names.get(x.customer_id, (None, None)), x.invoice_id, x.issued_on,
             x.period_start, x.period_end, x.gold_days, x.owed, x.invoiced, x.difference, x.label,
             " ".join(str(y) for y in causing.get(x, [])) or None) for x in lines]


def open_item_rows(con, year: int) -> list[tuple]:
    """Every open item of any year (`reports.billing_csv.OPEN_ITEM_COLUMNS`), for the .xlsx."""
    keys = open_item_keys(con)
    service = service_years(con) if keys else {}
    names = customer_names(con, year, {cid for cid, _ in keys})
    return [(cid, *names.get(cid, (None, None)), y, service[(cid, y)].owed, service[(cid, y)].invoiced,
             service[(cid, y)].to_invoice, service[(cid, y)].to_credit) for cid, y in keys]
