"""Gold billing (sla-semantics.md section 5): `gold_reconciliation` and `gold_service_year`.

Hand-worked cases (the expected figures are worked out in the comments) and random cases
against the independent day-by-day Decimal reference in tests/sla/billing_reference.py.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.csv_export import CsvExportSource
from sla.billing import compute_gold_reconciliation
from sla.policy import load_policy
from sla.steps import import_source
from tests.helpers import write_export
from tests.sla.billing_reference import line_key, reference

POLICY = load_policy()
FEE = Decimal("1499.00")
D = dt.date
E = Decimal
UTC = dt.timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
LINE_COLUMNS = "customer_id, invoice_id, period_start, period_end, owed_eur, invoiced_eur, difference_eur, status"
YEAR_COLUMNS = "customer_id, year, owed_eur, invoiced_eur, difference_eur, to_invoice_eur, to_credit_eur"


def warehouse(folder, as_of: dt.datetime):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    import_source(con, CsvExportSource(folder), POLICY)
    compute_gold_reconciliation(con, POLICY, as_of)
    return con


def rows(con, sql: str):
    return [tuple(r) for r in con.execute(sql).fetchall()]


def recon_lines(con):
    return rows(con, f"SELECT {LINE_COLUMNS} FROM gold_reconciliation")


def service_years(con, customer_id=None):
    where = f"WHERE customer_id = '{customer_id}'" if customer_id else ""
    return rows(con, f"SELECT {YEAR_COLUMNS} FROM gold_service_year {where} ORDER BY customer_id, year")


def reconcile(folder, as_of: dt.datetime):
    return recon_lines(warehouse(folder, as_of))


def contract(cid, tier, start, end=""):
    return (cid, f"Customer {cid}", tier, start, end, "am@vendor.example")


def invoice(iid, cid, issued, start, end, amount):
    return (iid, cid, issued, start, end, amount)


def year_row(cid, year, owed, invoiced):
    """A gold_service_year row from owed and invoiced (the other three columns follow)."""
    owed, invoiced = E(owed), E(invoiced)
    diff = invoiced - owed
    return (cid, year, owed, invoiced, diff, max(-diff, E("0.00")), max(diff, E("0.00")))


AS_OF = dt.datetime(2026, 12, 31, 12, tzinfo=UTC)


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
    con = warehouse(folder, AS_OF)
    lines = recon_lines(con)
    by_id = {line[1]: line for line in lines}
    assert by_id["I-1"][4:] == (E("17988.00"), E("17988.00"), E("0.00"), "ok")
    # 17 of 31 January days: 1499 x 17 / 31 = 822.032... -> 822.03, plus 11 full months
    assert by_id["I-2"][4:] == (E("17311.03"), E("17311.03"), E("0.00"), "ok")
    assert by_id["I-3"][4:] == (E("0.00"), E("17988.00"), E("17988.00"), "not_gold")
    # partial overlap, same issue date: I-4 comes first, so it owns June to December:
    # 7 x 1499 = 10493.00, ok. I-5 keeps only January to May (June is I-4's):
    # 5 x 1499 = 7495.00 owed against 8994.00 -> overlap, June billed twice: +1499.00
    assert by_id["I-4"][4:] == (E("10493.00"), E("10493.00"), E("0.00"), "ok")
    assert by_id["I-5"][4:] == (E("7495.00"), E("8994.00"), E("1499.00"), "overlap")
    assert by_id["I-6"][4:] == (E("1499.00"), E("1400.00"), E("-99.00"), "under_billed")
    runs = [line for line in lines if line[1] is None]
    assert runs == [
        ("GAP", None, D(2026, 1, 1), D(2026, 2, 28), E("2998.00"), E("0.00"), E("-2998.00"), "not_invoiced"),
        ("GAP", None, D(2026, 4, 1), D(2026, 12, 31), E("13491.00"), E("0.00"), E("-13491.00"), "not_invoiced"),
    ]
    # service year 2026: DUP owes 12 x 1499 = 17988.00 and was invoiced 8994.00 + 10493.00 =
    # 19487.00 -> 1499.00 to credit; GAP owes 17988.00 against 1400.00 -> 16588.00 to invoice;
    # PRO was invoiced 17988.00 for nothing -> 17988.00 to credit
    assert service_years(con) == [
        year_row("DUP", 2026, "17988.00", "19487.00"),
        year_row("FULL", 2026, "17988.00", "17988.00"),
        year_row("GAP", 2026, "17988.00", "1400.00"),
        year_row("PART", 2026, "17311.03", "17311.03"),
        year_row("PRO", 2026, "0.00", "17988.00"),
    ]
    assert rows(con, "SELECT customer_id, year, to_invoice_eur, to_credit_eur FROM gold_open_items ORDER BY 1, 2") == [
        ("DUP", 2026, E("0.00"), E("1499.00")), ("GAP", 2026, E("16588.00"), E("0.00")),
        ("PRO", 2026, E("0.00"), E("17988.00"))]


def test_unbilled_runs_end_at_the_local_date_of_the_cut_off(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("G", "gold", "2026-03-01")], invoices=[])
    # 22:30 UTC on 31 March is 1 April in Berlin: April 1st is a Gold day up to the cut-off
    lines = reconcile(folder, dt.datetime(2026, 3, 31, 22, 30, tzinfo=UTC))
    assert lines == [("G", None, D(2026, 3, 1), D(2026, 4, 1), E("1548.97"), E("0.00"),
                      E("-1548.97"), "not_invoiced")]  # 1499.00 + 1499 x 1/30 = 49.97


def test_over_billed_and_leap_february(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("G", "gold", "2024-02-10", "2024-02-29")], invoices=[
        invoice("I", "G", "2024-02-01", "2024-02-01", "2024-02-29", "1499.00")])
    con = warehouse(folder, dt.datetime(2024, 3, 1, tzinfo=UTC))
    # 20 of 29 days (10-29 February 2024, the 29th included): 1499 x 20 / 29 = 1033.793... -> 1033.79
    assert recon_lines(con) == [("G", "I", D(2024, 2, 1), D(2024, 2, 29), E("1033.79"), E("1499.00"),
                                 E("465.21"), "over_billed")]
    # the whole invoice falls in February 2024: 465.21 to credit in 2024
    assert service_years(con) == [year_row("G", 2024, "1033.79", "1499.00")]


def test_leap_day_alone(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("G", "gold", "2024-02-29", "2024-02-29")], invoices=[])
    con = warehouse(folder, dt.datetime(2024, 3, 10, tzinfo=UTC))
    # one of 29 days: 1499 / 29 = 51.689... -> 51.69
    assert recon_lines(con) == [("G", None, D(2024, 2, 29), D(2024, 2, 29), E("51.69"), E("0.00"),
                                 E("-51.69"), "not_invoiced")]
    assert service_years(con) == [year_row("G", 2024, "51.69", "0.00")]


def test_credit_note_duplicate_and_left_gold_in_july(tmp_path):
    folder = write_export(tmp_path, [], [], [
        contract("DUP", "gold", "2026-01-01", "2026-12-31"),
        contract("LEFT", "gold", "2026-01-01", "2026-07-15"),
        contract("LEFT", "enterprise", "2026-07-16"),
        contract("CN", "gold", "2026-01-01", "2026-07-15"),
        contract("CN", "enterprise", "2026-07-16"),
        contract("EARLYCN", "gold", "2026-01-01", "2026-12-31"),
    ], invoices=[
        # pure duplicate: the same annual invoice twice
        invoice("D-1", "DUP", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
        invoice("D-2", "DUP", "2026-01-20", "2026-01-01", "2026-12-31", "17988.00"),
        # left Gold on 15 July, billed for the whole year
        invoice("L-1", "LEFT", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
        # the same, corrected by a credit note for 16 July - 31 December
        invoice("C-1", "CN", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
        invoice("C-2", "CN", "2026-08-01", "2026-07-16", "2026-12-31", "-8268.68"),
        # a credit note issued before any invoice: claims no day, so X-2 is no overlap
        invoice("X-1", "EARLYCN", "2026-01-01", "2026-01-01", "2026-12-31", "-100.00"),
        invoice("X-2", "EARLYCN", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
    ])
    con = warehouse(folder, AS_OF)
    by_id = {line[1]: line for line in recon_lines(con)}
    # D-1 owns every day (17988.00, ok); D-2 shares them all -> overlap, owes nothing, and its
    # whole amount is billed twice
    assert by_id["D-1"][4:] == (E("17988.00"), E("17988.00"), E("0.00"), "ok")
    assert by_id["D-2"][4:] == (E("0.00"), E("17988.00"), E("17988.00"), "overlap")
    # Gold 1 January - 15 July: Jan-Jun 6 x 1499 = 8994.00, 15 of 31 July days
    # 1499 x 15 / 31 = 725.322... -> 725.32; owed 9719.32, billed 17988.00 -> over by 8268.68
    assert by_id["L-1"][4:] == (E("9719.32"), E("17988.00"), E("8268.68"), "over_billed")
    assert by_id["C-1"][4:] == (E("9719.32"), E("17988.00"), E("8268.68"), "over_billed")
    # a credit note owes nothing; difference = its amount
    assert by_id["C-2"][4:] == (E("0.00"), E("-8268.68"), E("-8268.68"), "credit_note")
    assert by_id["X-1"][4:] == (E("0.00"), E("-100.00"), E("-100.00"), "credit_note")
    assert by_id["X-2"][4:] == (E("17988.00"), E("17988.00"), E("0.00"), "ok")
    # service year 2026: DUP 35976.00 invoiced against 17988.00 -> 17988.00 to credit; LEFT
    # 8268.68 to credit; CN 17988.00 - 8268.68 = 9719.32 = owed -> 0.00; EARLYCN 100.00 to invoice
    assert service_years(con) == [
        year_row("CN", 2026, "9719.32", "9719.32"),
        year_row("DUP", 2026, "17988.00", "35976.00"),
        year_row("EARLYCN", 2026, "17988.00", "17888.00"),
        year_row("LEFT", 2026, "9719.32", "17988.00"),
    ]
    # the credit note of CN covers no Gold day: spread by calendar days (16 + 31 + 30 + 31 + 30 + 31 = 169)
    parts = rows(con, "SELECT month, calendar_days, weight, part_cents FROM gold_invoice_parts "
                      "WHERE invoice_id = 'C-2' ORDER BY month")
    assert [p[2] for p in parts] == [16, 31, 30, 31, 30, 31]
    assert sum(p[3] for p in parts) == -826868


def test_same_day_invoices_in_natural_order(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("N", "gold", "2026-01-01", "2026-12-31"),
                                             contract("M", "gold", "2026-01-01", "2026-12-31")], invoices=[
        # same issue date: INV-9 comes before INV-10 (as text INV-10 would sort first)
        invoice("INV-10", "N", "2026-01-02", "2026-01-01", "2026-06-30", "8994.00"),
        invoice("INV-9", "N", "2026-01-02", "2026-06-01", "2026-12-31", "10493.00"),
        # digit runs further in: INV-2025-9 before INV-2025-10
        invoice("INV-2025-10", "M", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
        invoice("INV-2025-9", "M", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
    ])
    con = warehouse(folder, AS_OF)
    by_id = {line[1]: line for line in recon_lines(con)}
    # INV-9 owns June-December: 7 x 1499 = 10493.00, ok; INV-10 keeps January-May 5 x 1499 =
    # 7495.00 of its 8994.00 -> overlap, June billed twice (+1499.00)
    assert by_id["INV-9"][4:] == (E("10493.00"), E("10493.00"), E("0.00"), "ok")
    assert by_id["INV-10"][4:] == (E("7495.00"), E("8994.00"), E("1499.00"), "overlap")
    assert by_id["INV-2025-9"][7] == "ok" and by_id["INV-2025-10"][4:] == (E("0.00"), E("17988.00"), E("17988.00"), "overlap")
    assert rows(con, "SELECT invoice_id, invoice_rank FROM gold_reconciliation WHERE customer_id = 'N' "
                     "AND invoice_id IS NOT NULL ORDER BY invoice_rank") == [("INV-9", 1), ("INV-10", 2)]


def test_invoices_issued_after_the_local_cut_off_date_do_not_exist(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("G", "gold", "2026-03-01")], invoices=[
        invoice("ON", "G", "2026-03-15", "2026-03-01", "2026-03-31", "1499.00"),
        invoice("LATE", "G", "2026-03-16", "2026-04-01", "2026-04-30", "1499.00"),
    ])
    # 15 March 12:00 UTC = 13:00 in Berlin: ON (issued that day) exists, LATE does not; nothing
    # is unbilled up to 15 March (ON covers March, later days are not counted yet)
    con = warehouse(folder, dt.datetime(2026, 3, 15, 12, tzinfo=UTC))
    assert recon_lines(con) == [("G", "ON", D(2026, 3, 1), D(2026, 3, 31), E("1499.00"), E("1499.00"), E("0.00"), "ok")]
    assert service_years(con) == [year_row("G", 2026, "1499.00", "1499.00")]
    # 15 March 23:30 UTC = 16 March 00:30 in Berlin: LATE exists now (and owns 1-30 April)
    con = warehouse(folder, dt.datetime(2026, 3, 15, 23, 30, tzinfo=UTC))
    assert [line[1] for line in recon_lines(con)] == ["ON", "LATE"]


def test_annual_invoice_across_new_year_is_exact_in_both_years(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("A", "gold", "2025-07-15"),
                                             contract("B", "gold", "2025-07-15")], invoices=[
        invoice("A-1", "A", "2025-07-01", "2025-07-15", "2026-07-14", "17988.00"),
        invoice("B-1", "B", "2025-07-01", "2025-07-15", "2026-07-14", "17988.00"),
        invoice("B-2", "B", "2025-08-01", "2025-07-15", "2026-07-14", "-17988.00"),
    ])
    con = warehouse(folder, dt.datetime(2026, 3, 1, tzinfo=UTC))
    # owed: 17 of 31 July days 1499 x 17 / 31 = 822.032... -> 822.03; August-June 11 x 1499 =
    # 16489.00; 14 of 31 July days 1499 x 14 / 31 = 676.967... -> 676.97; 17988.00 in all
    # (days after the cut-off count: they are the invoice's)
    assert rows(con, f"SELECT {LINE_COLUMNS} FROM gold_reconciliation WHERE customer_id = 'A'") == [
        ("A", "A-1", D(2025, 7, 15), D(2026, 7, 14), E("17988.00"), E("17988.00"), E("0.00"), "ok")]
    # 2025: 822.03 + 5 x 1499 = 8317.03; 2026: 6 x 1499 + 676.97 = 9670.97. The invoice is
    # spread by those same weights: exactly 0.00 in both years
    assert service_years(con, "A") == [year_row("A", 2025, "8317.03", "8317.03"),
                                       year_row("A", 2026, "9670.97", "9670.97")]
    # B: the invoice cancelled by a credit note -> the whole year to invoice, 0.00 invoiced in
    # each year (the credit note's parts mirror the invoice's)
    assert service_years(con, "B") == [year_row("B", 2025, "8317.03", "0.00"),
                                       year_row("B", 2026, "9670.97", "0.00")]


def test_negative_amounts_round_half_away_from_zero(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("G", "gold", "2025-12-01", "2026-01-31")], invoices=[
        invoice("I-1", "G", "2025-12-01", "2025-12-01", "2026-01-31", "0.03"),
        invoice("I-2", "G", "2025-12-02", "2025-12-01", "2026-01-31", "-0.03"),
    ])
    con = warehouse(folder, dt.datetime(2026, 2, 1, tzinfo=UTC))
    # equal weights (1499.00 each month): December 0.03 x 1/2 = 0.015 -> 0.02, January 0.01;
    # the credit note mirrors it: -0.015 -> -0.02, then -0.01
    assert rows(con, "SELECT invoice_id, month, part_cents FROM gold_invoice_parts ORDER BY 1, 2") == [
        ("I-1", D(2025, 12, 1), 2), ("I-1", D(2026, 1, 1), 1),
        ("I-2", D(2025, 12, 1), -2), ("I-2", D(2026, 1, 1), -1)]
    assert service_years(con) == [year_row("G", 2025, "1499.00", "0.00"), year_row("G", 2026, "1499.00", "0.00")]


def test_unbilled_run_across_new_year(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("R", "gold", "2025-12-17")], invoices=[])
    con = warehouse(folder, dt.datetime(2026, 2, 10, 12, tzinfo=UTC))
    # 17-31 December = 15 of 31 days: 1499 x 15 / 31 = 725.322... -> 725.32; January 1499.00;
    # 1-10 February = 10 of 28 days: 1499 x 10 / 28 = 535.357... -> 535.36; 2759.68 in all
    assert recon_lines(con) == [("R", None, D(2025, 12, 17), D(2026, 2, 10), E("2759.68"), E("0.00"),
                                 E("-2759.68"), "not_invoiced")]
    # to invoice: 725.32 for 2025, 1499.00 + 535.36 = 2034.36 for 2026
    assert service_years(con) == [year_row("R", 2025, "725.32", "0.00"), year_row("R", 2026, "2034.36", "0.00")]
    assert rows(con, "SELECT month, days, owed_cents FROM gold_pieces ORDER BY month") == [
        (D(2025, 12, 1), 15, 72532), (D(2026, 1, 1), 31, 149900), (D(2026, 2, 1), 10, 53536)]


# ---- random cases against the plain-Python reference ------------------------------------------
dates = st.dates(D(2023, 11, 1), D(2025, 3, 31))  # two New Years and 29 February 2024
ID_PREFIXES = ["I-", "INV-2024-", "X"]


@st.composite
def billing_cases(draw):
    contracts = []
    for cid in ("A", "B", "C"):
        start = draw(dates)
        for _ in range(draw(st.integers(1, 2))):  # a second contract after the first (tier change)
            end = draw(st.one_of(st.none(), st.integers(0, 400).map(lambda n, s=start: s + dt.timedelta(days=n))))
            contracts.append((cid, draw(st.sampled_from(["gold", "gold", "enterprise"])), start, end))
            if end is None:
                break
            start = end + dt.timedelta(days=draw(st.integers(1, 40)))
    ids = draw(st.lists(st.tuples(st.sampled_from(ID_PREFIXES), st.integers(0, 12), st.booleans())
                        .map(lambda t: f"{t[0]}{'0' if t[2] else ''}{t[1]}"), max_size=8, unique=True))
    issue_days = draw(st.lists(dates, min_size=1, max_size=3))  # few dates: same-day invoices are common
    invoices = []
    for iid in ids:
        kind = draw(st.sampled_from(["new", "new", "new", "duplicate", "credit"]))
        issued = draw(st.one_of(st.sampled_from(issue_days), dates))
        if kind != "new" and invoices:
            _, cid, _, start, end, amount = draw(st.sampled_from(invoices))
            amount = -amount if kind == "credit" else amount
        else:
            cid = draw(st.sampled_from(["A", "B", "C"]))
            start = draw(dates)
            end = start + dt.timedelta(days=draw(st.integers(0, 400)))
            amount = draw(st.one_of(st.sampled_from([Decimal(0), FEE, FEE * 12, Decimal("0.03")]),
                                    st.integers(-2_000_000, 3_000_000).map(lambda c: Decimal(c) / 100)))
        invoices.append((iid, cid, issued, start, end, amount))
    cut_off = dt.datetime.combine(draw(dates), dt.time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30]))),
                                  tzinfo=UTC)
    return contracts, invoices, cut_off


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=billing_cases())
def test_matches_reference(tmp_path_factory, case):
    contracts, invoices, as_of = case
    folder = write_export(
        tmp_path_factory.mktemp("bill"), [], [],
        [contract(c, t, s.isoformat(), e.isoformat() if e else "") for c, t, s, e in contracts],
        invoices=[(i, c, iss.isoformat(), s.isoformat(), e.isoformat(), f"{a:.2f}") for i, c, iss, s, e, a in invoices],
    )
    con = warehouse(folder, as_of)
    want_lines, want_years = reference(contracts, invoices, as_of.astimezone(BERLIN).date(), FEE)
    assert sorted(recon_lines(con), key=line_key) == want_lines
    assert service_years(con) == want_years
    # every invoice is spread exactly: its parts add up to its amount
    assert rows(con, "SELECT i.invoice_id FROM gold_reconciliation i LEFT JOIN gold_invoice_parts p USING (invoice_id) "
                     "WHERE i.invoice_id IS NOT NULL GROUP BY i.invoice_id, i.invoiced_eur "
                     "HAVING coalesce(sum(p.part_cents), 0) <> i.invoiced_eur * 100") == []


def test_existing_reports_still_read_the_table(tmp_path):
    """The finance report and the dashboard queries keep working with credit notes and the extra
    columns (their wording for credit_note is the report redesign's job: shown as the raw status)."""
    from reports.billing import render_billing_html
    from reports.billing_csv import write_reconciliation_csv
    from sla.report_data.billing import build_billing_report, reconciliation_rows
    from sla.report_data.dashboard import gold_problems, gold_reconciliation_summary

    folder = write_export(tmp_path / "export", [], [], [contract("CN", "gold", "2026-01-01", "2026-07-15"),
                                                        contract("CN", "enterprise", "2026-07-16")], invoices=[
        invoice("C-1", "CN", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
        invoice("C-2", "CN", "2026-08-01", "2026-07-16", "2026-12-31", "-8268.68"),
        invoice("C-3", "CN", "2026-08-02", "2026-03-01", "2026-03-31", "1499.00"),
    ])
    as_of = dt.datetime(2026, 9, 1, tzinfo=UTC)
    con = warehouse(folder, as_of)
    vm = build_billing_report(con, POLICY, 2026, as_of)
    assert {x.status for x in vm.exceptions} == {"over_billed", "credit_note", "overlap"}
    assert "C-2" in render_billing_html(vm)
    assert write_reconciliation_csv(reconciliation_rows(con, 2026), tmp_path / "out.csv") == 3
    assert set(gold_reconciliation_summary(con).status) == {"over_billed", "credit_note", "overlap"}
    assert len(gold_problems(con)) == 3
