"""gold_reconciliation: hand-computed cases and random cases against a plain-Python reference."""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.csv_export import CsvExportSource
from sla.billing import compute_gold_reconciliation
from sla.policy import load_policy
from sla.steps import import_source
from tests.helpers import write_export

POLICY = load_policy()
FEE = Decimal("1499.00")
D = dt.date


def reconcile(folder, as_of: dt.datetime):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    import_source(con, CsvExportSource(folder), POLICY)
    compute_gold_reconciliation(con, POLICY, as_of)
    cur = con.execute("SELECT customer_id, invoice_id, period_start, period_end, owed_eur, invoiced_eur, "
                      "difference_eur, status FROM gold_reconciliation")
    return [tuple(r) for r in cur.fetchall()]


def contract(cid, tier, start, end=""):
    return (cid, f"Customer {cid}", tier, start, end, "am@vendor.example")


def invoice(iid, cid, issued, start, end, amount):
    return (iid, cid, issued, start, end, amount)


AS_OF = dt.datetime(2026, 12, 31, 12, tzinfo=dt.timezone.utc)


def test_hand_computed_lines(tmp_path):
    folder = write_export(tmp_path, [], [], [
        contract("FULL", "gold", "2026-01-01", "2026-12-31"),
        contract("PART", "gold", "2026-01-15", "2026-12-31"),
        contract("PRO", "professional", "2026-01-01"),
        contract("DUP", "gold", "2026-01-01", "2026-12-31"),
        contract("GAP", "gold", "2026-01-01", "2026-12-31"),
    ], invoices=[
        invoice("I-1", "FULL", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
        invoice("I-2", "PART", "2026-01-15", "2026-01-15", "2026-12-31", "17311.03"),
        invoice("I-3", "PRO", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
        invoice("I-5", "DUP", "2026-01-02", "2026-01-01", "2026-06-30", "8994.00"),
        invoice("I-4", "DUP", "2026-01-02", "2026-06-01", "2026-12-31", "10493.00"),
        invoice("I-6", "GAP", "2026-01-02", "2026-03-01", "2026-03-31", "1400.00"),
    ])
    lines = reconcile(folder, AS_OF)
    by_id = {line[1]: line for line in lines}
    assert by_id["I-1"][4:] == (Decimal("17988.00"), Decimal("17988.00"), Decimal("0.00"), "ok")
    # 17 of 31 January days: 1499 x 17 / 31 = 822.032... -> 822.03, plus 11 full months
    assert by_id["I-2"][4:] == (Decimal("17311.03"), Decimal("17311.03"), Decimal("0.00"), "ok")
    assert by_id["I-3"][7] == "not_gold"
    # same issue date: the smaller id (I-4) counts as first, so I-5 is the double billing
    assert by_id["I-4"][7] == "ok" and by_id["I-5"][7] == "overlap"
    assert by_id["I-6"][4:] == (Decimal("1499.00"), Decimal("1400.00"), Decimal("-99.00"), "under_billed")
    runs = [line for line in lines if line[1] is None]
    assert runs == [
        ("GAP", None, D(2026, 1, 1), D(2026, 2, 28), Decimal("2998.00"), Decimal("0.00"), Decimal("-2998.00"), "not_invoiced"),
        ("GAP", None, D(2026, 4, 1), D(2026, 12, 31), Decimal("13491.00"), Decimal("0.00"), Decimal("-13491.00"), "not_invoiced"),
    ]


def test_unbilled_runs_end_at_the_local_date_of_the_cut_off(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("G", "gold", "2026-03-01")], invoices=[])
    # 22:30 UTC on 31 March is 1 April in Berlin: April 1st is a Gold day up to the cut-off
    lines = reconcile(folder, dt.datetime(2026, 3, 31, 22, 30, tzinfo=dt.timezone.utc))
    assert lines == [("G", None, D(2026, 3, 1), D(2026, 4, 1), Decimal("1548.97"), Decimal("0.00"),
                      Decimal("-1548.97"), "not_invoiced")]  # 1499.00 + 1499 x 1/30 = 49.97


def test_over_billed_and_leap_february(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("G", "gold", "2024-02-10", "2024-02-29")], invoices=[
        invoice("I", "G", "2024-02-01", "2024-02-01", "2024-02-29", "1499.00")])
    lines = reconcile(folder, dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc))
    # 20 of 29 days: 1499 x 20 / 29 = 1033.793... -> 1033.79
    assert lines == [("G", "I", D(2024, 2, 1), D(2024, 2, 29), Decimal("1033.79"), Decimal("1499.00"),
                      Decimal("465.21"), "over_billed")]


# ---- random cases against a plain-Python reference ------------------------------------------
def ref_reconcile(contracts, invoices, cutoff_day: dt.date):
    gold = set()
    horizon = max([cutoff_day] + [i[4] for i in invoices])
    for cid, tier, start, end in contracts:
        if tier == "gold":
            day = start
            while day <= min(end or horizon, horizon):
                gold.add((cid, day))
                day += dt.timedelta(days=1)

    def owed(cid, start, end):
        total, day = Decimal("0.00"), start.replace(day=1)
        while day <= end:
            n_days = calendar.monthrange(day.year, day.month)[1]
            n = sum(1 for k in range(n_days) if start <= day + dt.timedelta(days=k) <= end
                    and (cid, day + dt.timedelta(days=k)) in gold)
            total += (FEE * n / n_days).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            day = day.replace(day=n_days) + dt.timedelta(days=1)
        return total

    lines = []
    for iid, cid, issued, start, end, amount in invoices:
        o = owed(cid, start, end)
        earlier = [j for j in invoices if j[1] == cid and j[0] != iid and j[3] <= end and start <= j[4]
                   and (j[2], j[0]) < (issued, iid)]
        status = ("overlap" if earlier else "not_gold" if o == 0 else "ok" if amount == o
                  else "under_billed" if amount < o else "over_billed")
        lines.append((cid, iid, start, end, o, amount, amount - o, status))
    covered = {(j[1], j[3] + dt.timedelta(days=k)) for j in invoices for k in range((j[4] - j[3]).days + 1)}
    unbilled = sorted(x for x in gold if x[1] <= cutoff_day and x not in covered)
    run = None
    for cid, day in unbilled + [(None, None)]:
        if run and cid == run[0] and day == run[2] + dt.timedelta(days=1):
            run[2] = day
            continue
        if run:
            o = owed(run[0], run[1], run[2])
            lines.append((run[0], None, run[1], run[2], o, Decimal("0.00"), -o, "not_invoiced"))
        run = [cid, day, day] if cid else None
    return sorted(lines, key=lambda x: (x[0], x[2], x[1] or "~"))


dates = st.dates(D(2025, 11, 1), D(2026, 4, 30))


@st.composite
def billing_cases(draw):
    contracts = []
    for cid in ("A", "B", "C"):
        start = draw(dates)
        end = draw(st.one_of(st.none(), dates.filter(lambda d, s=start: d >= s)))
        contracts.append((cid, draw(st.sampled_from(["gold", "gold", "enterprise"])), start, end))
    invoices = []
    for n in range(draw(st.integers(0, 6))):
        start = draw(dates)
        end = draw(dates.filter(lambda d, s=start: d >= s))
        amount = Decimal(draw(st.integers(0, 1_000_000))) / 100
        invoices.append((f"I{n}", draw(st.sampled_from(["A", "B", "C"])), draw(dates), start, end, amount))
    return contracts, invoices, draw(dates)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=billing_cases())
def test_matches_reference(tmp_path_factory, case):
    contracts, invoices, cutoff_day = case
    folder = write_export(
        tmp_path_factory.mktemp("bill"), [], [],
        [contract(c, t, s.isoformat(), e.isoformat() if e else "") for c, t, s, e in contracts],
        invoices=[(i, c, iss.isoformat(), s.isoformat(), e.isoformat(), f"{a:.2f}") for i, c, iss, s, e, a in invoices],
    )
    as_of = dt.datetime.combine(cutoff_day, dt.time(12), tzinfo=dt.timezone.utc)
    got = sorted(reconcile(folder, as_of), key=lambda x: (x[0], x[2], x[1] or "~"))
    assert got == ref_reconcile(contracts, invoices, cutoff_day)
