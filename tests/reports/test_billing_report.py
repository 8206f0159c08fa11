"""Gold billing report for finance (issues 4 and 14): hand-computed reconciliation table, the yearly
view model, the PDF (page 1: service year and open items of any year, to invoice / to credit equal
to gold_open_items; "covered by"; hostile names literal, same bytes), the CSV export in both
dialects and the .xlsx (formula neutralisation, amounts as numbers) and the yearly Dagster asset."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import dagster as dg
import duckdb
import openpyxl
import pdfplumber
import pypdf
import pytest

from connectors.csv_export import CsvExportSource
from reports.billing import render_billing_html, render_billing_pdf, report_paths
from reports.billing_csv import (
    CSV_COLUMNS,
    OPEN_ITEM_COLUMNS,
    neutralise_cell,
    write_reconciliation_csv,
    write_reconciliation_xlsx,
)
from reports.format import money
from reports.render import TemplateOnlyFetcher
from sla.billing import compute_gold_reconciliation
from sla.policy import load_policy
from sla.report_data.billing import build_billing_report, open_item_rows, open_item_years, reconciliation_rows
from sla.steps import compute_metrics, import_source
from tests.helpers import write_export

POLICY = load_policy()
D = dt.date
E = Decimal
UTC = dt.timezone.utc
CET = dt.timezone(dt.timedelta(hours=1))
# cut-off: 15 September 2026, 14:00 in Berlin -> unbilled runs end on 2026-09-15
AS_OF = dt.datetime(2026, 9, 15, 12, tzinfo=UTC)

HOSTILE_FORMULA = '=HYPERLINK("http://evil")'
HOSTILE_CMD = "+cmd"
HOSTILE_HTML = '<script>alert("x")</script> & <b>Co</b>'


def contract(cid, tier, start, end="", name=None):
    return (cid, name or f"Customer {cid}", tier, start, end, "am@vendor.example")


def invoice(iid, cid, issued, start, end, amount):
    return (iid, cid, issued, start, end, amount)


CONTRACTS = [
    contract("FULL", "gold", "2026-01-01", "2026-12-31", name=HOSTILE_FORMULA),
    contract("LEAP", "gold", "2024-01-01", "2024-12-31"),
    contract("LEAP2", "gold", "2024-02-01", "2024-02-28"),
    contract("MID", "gold", "2026-04-15"),  # open-ended
    contract("UP", "enterprise", "2026-01-01", "2026-03-09", name="-2+3 GmbH"),
    contract("UP", "gold", "2026-03-10", "2026-12-31", name="-2+3 GmbH"),
    contract("DOWN", "gold", "2026-01-01", "2026-06-20", name="@SUM(A1)"),
    contract("DOWN", "enterprise", "2026-06-21", name="@SUM(A1)"),
    contract("ENDS", "gold", "2025-07-01", "2026-05-31"),
    contract("ENT", "enterprise", "2026-01-01", name=HOSTILE_CMD),
    contract("DUP", "gold", "2026-01-01", "2026-12-31"),
    contract("GAP", "gold", "2026-01-01", name=HOSTILE_HTML),
    contract("RUN", "gold", "2025-12-17"),
]
INVOICES = [
    invoice("F-1", "FULL", "2026-01-05", "2026-01-01", "2026-12-31", "17988.00"),
    invoice("L-1", "LEAP", "2024-01-02", "2024-01-01", "2024-12-31", "17988.00"),
    invoice("L2-1", "LEAP2", "2024-02-01", "2024-02-01", "2024-02-29", "1499.00"),
    invoice("M-1", "MID", "2026-04-15", "2026-04-15", "2026-04-30", "799.47"),
    invoice("U-1", "UP", "2026-03-10", "2026-03-01", "2026-12-31", "14554.81"),
    invoice("D-1", "DOWN", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
    invoice("E-1", "ENDS", "2025-06-20", "2025-07-01", "2026-06-30", "17988.00"),
    invoice("N-1", "ENT", "2026-02-01", "2026-02-01", "2026-02-28", "1499.00"),
    invoice("B-1", "DUP", "2026-01-02", "2026-01-01", "2026-12-31", "17988.00"),
    invoice("B-2", "DUP", "2026-03-01", "2026-03-01", "2026-03-31", "1499.00"),
    invoice("G-1", "GAP", "2026-01-02", "2026-03-01", "2026-03-31", "1499.00"),
]

# (customer, invoice, period start, period end, owed, invoiced, difference, status)
EXPECTED = [
    # full year: 12 x 1499.00 = 17,988.00
    ("FULL", "F-1", D(2026, 1, 1), D(2026, 12, 31), E("17988.00"), E("17988.00"), E("0.00"), "ok"),
    # leap year: still 12 full months = 17,988.00 (February has 29 of 29 Gold days)
    ("LEAP", "L-1", D(2024, 1, 1), D(2024, 12, 31), E("17988.00"), E("17988.00"), E("0.00"), "ok"),
    # leap February: Gold 1-28 Feb 2024 = 28 of 29 days: 1499 x 28 / 29 = 1447.3103 -> 1447.31;
    # the invoice bills all 29 days at 1499.00 -> over-billed by 51.69
    ("LEAP2", "L2-1", D(2024, 2, 1), D(2024, 2, 29), E("1447.31"), E("1499.00"), E("51.69"), "over_billed"),
    # mid-month start: 15-30 April = 16 of 30 days: 1499 x 16 / 30 = 799.4666 -> 799.47
    ("MID", "M-1", D(2026, 4, 15), D(2026, 4, 30), E("799.47"), E("799.47"), E("0.00"), "ok"),
    # unbilled run up to the cut-off: May-Aug 4 x 1499.00 = 5996.00 + 15 of 30 September days
    # 1499 x 15 / 30 = 749.50 -> 6745.50 (the open-ended contract continues, but not the run)
    ("MID", None, D(2026, 5, 1), D(2026, 9, 15), E("6745.50"), E("0.00"), E("-6745.50"), "not_invoiced"),
    # upgrade enterprise -> gold on 10 March: 22 of 31 March days 1499 x 22 / 31 = 1063.8064 ->
    # 1063.81, + 9 full months 13491.00 = 14554.81; the Enterprise days 1-9 March owe nothing
    ("UP", "U-1", D(2026, 3, 1), D(2026, 12, 31), E("14554.81"), E("14554.81"), E("0.00"), "ok"),
    # downgrade gold -> enterprise on 21 June: Jan-May 5 x 1499 = 7495.00 + 20 of 30 June days
    # 1499 x 20 / 30 = 999.3333 -> 999.33 = 8494.33; a full year billed -> over by 9493.67
    ("DOWN", "D-1", D(2026, 1, 1), D(2026, 12, 31), E("8494.33"), E("17988.00"), E("9493.67"), "over_billed"),
    # contract ending mid-year (31 May 2026): Jul 2025 - May 2026 = 11 months = 16489.00; the
    # invoice bills to 30 June -> over by one month. Issued in 2025: in the 2025 report only.
    ("ENDS", "E-1", D(2025, 7, 1), D(2026, 6, 30), E("16489.00"), E("17988.00"), E("1499.00"), "over_billed"),
    # invoice for an Enterprise customer: no Gold day -> owed 0, not_gold
    ("ENT", "N-1", D(2026, 2, 1), D(2026, 2, 28), E("0.00"), E("1499.00"), E("1499.00"), "not_gold"),
    # double billing: B-2 shares March with B-1, issued earlier -> overlap; March belongs to B-1,
    # so B-2 owes nothing and its difference is the amount billed twice
    ("DUP", "B-1", D(2026, 1, 1), D(2026, 12, 31), E("17988.00"), E("17988.00"), E("0.00"), "ok"),
    ("DUP", "B-2", D(2026, 3, 1), D(2026, 3, 31), E("0.00"), E("1499.00"), E("1499.00"), "overlap"),
    # unbilled runs around one billed month: Jan-Feb 2 x 1499 = 2998.00 ...
    ("GAP", None, D(2026, 1, 1), D(2026, 2, 28), E("2998.00"), E("0.00"), E("-2998.00"), "not_invoiced"),
    ("GAP", "G-1", D(2026, 3, 1), D(2026, 3, 31), E("1499.00"), E("1499.00"), E("0.00"), "ok"),
    # ... and April up to the cut-off: Apr-Aug 5 x 1499 = 7495.00 + 749.50 = 8244.50
    ("GAP", None, D(2026, 4, 1), D(2026, 9, 15), E("8244.50"), E("0.00"), E("-8244.50"), "not_invoiced"),
    # a run across the turn of the year, never billed: 17-31 Dec = 15 of 31 days 1499 x 15 / 31 =
    # 725.3225 -> 725.32, + Jan-Aug 8 x 1499 = 11992.00, + 749.50 = 13466.82 (2025 and 2026 report)
    ("RUN", None, D(2025, 12, 17), D(2026, 9, 15), E("13466.82"), E("0.00"), E("-13466.82"), "not_invoiced"),
]

# The 2026 report: invoices issued in 2026 (not E-1, L-1, L2-1) + runs touching 2026 (all four).
LINES_2026 = [x for x in EXPECTED if x[1] not in ("E-1", "L-1", "L2-1")]
# owed 17988.00 + 799.47 + 6745.50 + 14554.81 + 8494.33 + 0 + 17988.00 + 0 (B-2) + 2998.00
#      + 1499.00 + 8244.50 + 13466.82 = 92778.43
# invoiced 17988.00 + 799.47 + 14554.81 + 17988.00 + 1499.00 + 17988.00 + 1499.00 + 1499.00 = 73815.28
TOTALS_2026 = (E("92778.43"), E("73815.28"), E("-18963.15"))  # difference = invoiced - owed
INVOICE_IDS_2026 = {"F-1", "M-1", "U-1", "D-1", "N-1", "B-1", "B-2", "G-1"}
# lines of other years that cause an open item: E-1 (ENDS, over-billed, allocated to 2025 and
# 2026) and L2-1 (LEAP2, over-billed in 2024); L-1 is ok and in no 2026 output
EARLIER_CAUSES = {"E-1", "L2-1"}
PROBLEM_CUSTOMERS = ["DOWN", "DUP", "ENDS", "ENT", "GAP", "LEAP2", "MID", "RUN"]


def eur(amount):
    return money(amount)


def local(y, mo, d, h, mi=0):
    return dt.datetime(y, mo, d, h, mi, tzinfo=CET).isoformat()


# Five Gold incidents of FULL in March 2026 (severity 3: first response 8 business hours,
# resolution 7 business days): the fifth is over the 4-per-month quota. First response: T2
# answered after 16 business hours (breached) -> 4 met / 1 breached. Resolution: T3 and T4
# still open at the cut-off, far past 7 business days -> 3 met / 2 breached.
TICKETS = [
    ("T1", "FULL", "printer", 3, local(2026, 3, 2, 10), "web"),
    ("T2", "FULL", "late answer", 3, local(2026, 3, 3, 10), "web"),
    ("T3", "FULL", "never solved", 3, local(2026, 3, 4, 10), "web"),
    ("T4", "FULL", "never solved either", 3, local(2026, 3, 5, 10), "web"),
    ("T5", "FULL", "fifth one", 3, local(2026, 3, 6, 10), "web"),
    ("T6", "ENT", "enterprise ticket", 3, local(2026, 3, 6, 10), "web"),  # not Gold: not counted
]
EVENTS = [
    ("T1", local(2026, 3, 2, 11), "reply", "agent", ""),
    ("T1", local(2026, 3, 2, 12), "status", "a1", "solved"),
    ("T2", local(2026, 3, 5, 10), "reply", "agent", ""),
    ("T2", local(2026, 3, 5, 11), "status", "a1", "solved"),
    ("T3", local(2026, 3, 4, 10, 30), "reply", "agent", ""),
    ("T4", local(2026, 3, 5, 10, 30), "reply", "agent", ""),
    ("T5", local(2026, 3, 6, 10, 30), "reply", "agent", ""),
    ("T5", local(2026, 3, 6, 11), "status", "a1", "solved"),
    ("T6", local(2026, 3, 6, 10, 30), "reply", "agent", ""),
]


def build_warehouse(folder, as_of, policy=POLICY, db=":memory:"):
    con = duckdb.connect(db)
    con.execute("SET TimeZone = 'UTC'")
    import_source(con, CsvExportSource(folder), policy)
    compute_metrics(con, policy, as_of)
    compute_gold_reconciliation(con, policy, as_of)
    return con


def recon_rows(con):
    cur = con.execute("SELECT customer_id, invoice_id, period_start, period_end, owed_eur, invoiced_eur, "
                      "difference_eur, status FROM gold_reconciliation")
    return [tuple(r) for r in cur.fetchall()]


def key(line):
    return (line[0], line[2], line[1] or "~")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return write_export(tmp_path_factory.mktemp("billing-export"), TICKETS, EVENTS, CONTRACTS, invoices=INVOICES)


@pytest.fixture(scope="module")
def con(export):
    con = build_warehouse(export, AS_OF)
    yield con
    con.close()


@pytest.fixture(scope="module")
def report_2026(con):
    return build_billing_report(con, POLICY, 2026, AS_OF)


@pytest.fixture(scope="module")
def pdf_2026(report_2026):
    return render_billing_pdf(report_2026)


@pytest.fixture(scope="module")
def pdf_text(pdf_2026):
    with pdfplumber.open(io.BytesIO(pdf_2026)) as pdf:
        return "\n".join(page.extract_text() or "" for page in pdf.pages)


# ---- the reconciliation table -------------------------------------------------------------------
def test_hand_computed_reconciliation_table(con):
    assert sorted(recon_rows(con), key=key) == sorted(EXPECTED, key=key)


def test_rounding_at_half_a_cent(tmp_path):
    # With EUR 1,499.00 no month part ends in exactly half a cent: 1499 x d / D x 100 is
    # 299800 d / D; for D = 29 or 31 (prime) it is no integer plus a half unless D | d; for D = 28
    # it is 74950 d / 7 and for D = 30 29980 d / 3, both even integers whenever they are integers.
    # So the policy (data) gets a Gold price that does: 1500.15 x 1 / 30 = 50.005 exactly.
    gold = POLICY.tiers["gold"].model_copy(update={"monthly_price": E("1500.15")})
    policy = POLICY.model_copy(update={"tiers": {**POLICY.tiers, "gold": gold}})
    folder = write_export(tmp_path, [], [], [
        contract("HALF", "gold", "2026-04-30", "2026-04-30"),
        contract("HALF2", "gold", "2026-06-30", "2026-06-30"),
    ], invoices=[invoice("H-1", "HALF", "2026-04-01", "2026-04-01", "2026-04-30", "50.01")])
    con = build_warehouse(folder, AS_OF, policy=policy)
    assert sorted(recon_rows(con), key=key) == [
        # 1 of 30 April days: 1500.15 / 30 = 50.005 -> half-up 50.01 (half-even would give 50.00)
        ("HALF", "H-1", D(2026, 4, 1), D(2026, 4, 30), E("50.01"), E("50.01"), E("0.00"), "ok"),
        # the same half cent on an unbilled run (30 June, 1 of 30 days)
        ("HALF2", None, D(2026, 6, 30), D(2026, 6, 30), E("50.01"), E("0.00"), E("-50.01"), "not_invoiced"),
    ]


# ---- the yearly view model ----------------------------------------------------------------------
def test_report_totals_and_lines_of_the_year(report_2026):
    vm = report_2026
    assert (vm.totals.owed, vm.totals.invoiced, vm.totals.difference) == TOTALS_2026
    assert TOTALS_2026 == (sum((x[4] for x in LINES_2026), E(0)), sum((x[5] for x in LINES_2026), E(0)),
                           sum((x[6] for x in LINES_2026), E(0)))
    assert vm.totals.lines == len(LINES_2026) == 12
    assert set(vm.invoice_ids) == INVOICE_IDS_2026
    got = sorted(((x.customer_id, x.invoice_id, x.period_start, x.period_end, x.owed, x.invoiced,
                   x.difference, x.status) for c in vm.customers for x in c.invoices + c.unbilled), key=key)
    assert got == sorted(LINES_2026, key=key)
    assert {s.status: s.lines for s in vm.by_status} == {
        "ok": 5, "over_billed": 1, "not_gold": 1, "overlap": 1, "not_invoiced": 4}
    assert all(isinstance(v, Decimal) for v in (vm.totals.owed, vm.monthly_fee, vm.annual_fee))
    assert vm.annual_fee == E("17988.00") and vm.cutoff_day == D(2026, 9, 15)


def test_cut_off_defaults_to_the_warehouses(con, report_2026):
    assert build_billing_report(con, POLICY, 2026) == report_2026  # as_of from run_params


def test_sections_gold_periods_from_contract_history(report_2026):
    sections = {c.customer_id: c for c in report_2026.customers}
    # a Gold day in 2026, a line in 2026 or an open item of any year (LEAP2: 2024); LEAP (2024
    # only, ok) has none; problem customers first
    assert list(sections) == PROBLEM_CUSTOMERS + ["FULL", "UP"]
    assert [c.problem for c in report_2026.customers] == [True] * 8 + [False] * 2
    assert len({c.anchor for c in report_2026.customers}) == 10
    span = {cid: [(p.start, p.end, p.open_ended) for p in c.periods] for cid, c in sections.items()}
    assert span["UP"] == [(D(2026, 3, 10), D(2026, 12, 31), False)]
    assert span["DOWN"] == [(D(2026, 1, 1), D(2026, 6, 20), False)]
    assert span["ENDS"] == [(D(2026, 1, 1), D(2026, 5, 31), False)]  # clipped to the year
    assert span["MID"] == [(D(2026, 4, 15), D(2026, 12, 31), True)]
    assert span["RUN"] == [(D(2026, 1, 1), D(2026, 12, 31), True)]
    assert span["ENT"] == []  # billed without Gold: a section without Gold periods
    assert sections["ENDS"].invoices == () and sections["ENDS"].gold_days == 151
    # ENDS has no invoice of 2026: its 2026 days are covered by E-1, issued in 2025
    assert [(x.invoice_id, x.gold_days) for x in sections["ENDS"].covered_by] == [("E-1", 151)]
    assert sections["FULL"].customer_name == HOSTILE_FORMULA


def test_merged_consecutive_gold_contracts(tmp_path):
    folder = write_export(tmp_path, [], [], [
        contract("R", "gold", "2025-03-01", "2026-02-28"),
        contract("R", "gold", "2026-03-01", "2026-08-31"),  # renewal without a gap: one period
        contract("R", "enterprise", "2026-09-01", "2026-10-31"),
        contract("R", "gold", "2026-11-01"),
    ], invoices=[])
    con = build_warehouse(folder, AS_OF)
    vm = build_billing_report(con, POLICY, 2026, AS_OF)
    (section,) = vm.customers
    assert [(p.start, p.end) for p in section.periods] == [(D(2026, 1, 1), D(2026, 8, 31)),
                                                           (D(2026, 11, 1), D(2026, 12, 31))]
    assert [q.month for q in section.quota] == [f"2026-{m:02d}" for m in range(1, 9)]  # to the cut-off


def test_quota_and_compliance_context(report_2026):
    full = next(c for c in report_2026.customers if c.customer_id == "FULL")
    march = next(q for q in full.quota if q.month == "2026-03")
    assert (march.incidents, march.included, march.over_quota, march.quota) == (5, 4, 1, 4)
    # Jan..Sep: months with a Gold day up to the cut-off's month
    assert [q.month for q in full.quota] == [f"2026-{m:02d}" for m in range(1, 10)]
    assert full.gold_incidents == 5
    assert (full.first_response.met, full.first_response.breached, full.first_response.rate) == (4, 1, E("0.8"))
    assert (full.resolution.met, full.resolution.breached, full.resolution.rate) == (3, 2, E("0.6"))
    ent = next(c for c in report_2026.customers if c.customer_id == "ENT")
    assert ent.gold_incidents == 0 and ent.first_response.rate is None and ent.quota == ()


def test_other_years_select_their_own_lines(con):
    vm_2025 = build_billing_report(con, POLICY, 2025, AS_OF)
    # E-1 was issued in 2025; the RUN run starts on 17 December 2025 and is listed in full
    assert set(vm_2025.invoice_ids) == {"E-1"}
    assert [(x.customer_id, x.period_start) for c in vm_2025.customers for x in c.unbilled] == [("RUN", D(2025, 12, 17))]
    assert vm_2025.totals.owed == E("16489.00") + E("13466.82")
    vm_2024 = build_billing_report(con, POLICY, 2024, AS_OF)
    assert set(vm_2024.invoice_ids) == {"L-1", "L2-1"}
    assert vm_2024.totals.difference == E("51.69")
    with pytest.raises(ValueError):
        build_billing_report(con, POLICY, 0, AS_OF)


# ---- PDF ----------------------------------------------------------------------------------------
def test_eur_formatting():
    assert eur(E("17988")) == "EUR 17,988.00"
    assert eur(E("-18963.15")) == "EUR -18,963.15"
    assert eur(E("-0.00")) == "EUR 0.00"
    with pytest.raises(TypeError):
        eur(17988.0)


@pytest.fixture(scope="module")
def pdf_pages(pdf_2026):
    with pdfplumber.open(io.BytesIO(pdf_2026)) as pdf:
        return [page.extract_text() or "" for page in pdf.pages]


def test_pdf_text_matches_the_totals_and_lists_every_invoice(pdf_text):
    owed, invoiced, difference = TOTALS_2026
    assert "EUR 92,778.43" == eur(owed) and eur(owed) in pdf_text
    assert "EUR 73,815.28" == eur(invoiced) and eur(invoiced) in pdf_text
    assert "EUR -18,963.15" == eur(difference) and eur(difference) in pdf_text
    for iid in INVOICE_IDS_2026:
        assert iid in pdf_text.split(), iid
    assert "L-1" not in pdf_text.split()  # issued in 2024, ok: no open item
    for earlier in EARLIER_CAUSES:  # issued earlier, causing an open item
        assert earlier in pdf_text.split()
    for x in LINES_2026:  # every line's difference, as the statement shows it
        assert eur(x[6]) in pdf_text
    assert "Calendar year 2026" in pdf_text and "Page 1 of" in pdf_text


def test_hostile_names_render_literally(pdf_text, report_2026):
    for name in (HOSTILE_FORMULA, HOSTILE_CMD, HOSTILE_HTML, "@SUM(A1)", "-2+3 GmbH"):
        assert name in pdf_text, name
    html = render_billing_html(report_2026)
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_pdf_is_confined_and_reproducible(report_2026, pdf_2026):
    fetcher = TemplateOnlyFetcher()
    again = render_billing_pdf(report_2026, fetcher=fetcher)
    assert again == pdf_2026  # same input -> same bytes
    assert fetcher.refused == []
    assert any(path.endswith("billing.css") for _, path in fetcher.fetched)
    meta = pypdf.PdfReader(io.BytesIO(pdf_2026)).metadata  # fixed dates = the cut-off
    assert meta["/CreationDate"].startswith("D:20260915120000") and meta["/ModDate"] == meta["/CreationDate"]


# ---- CSV ----------------------------------------------------------------------------------------
def test_neutralise_cell():
    for text in ("=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "\nx"):
        assert neutralise_cell(text) == "'" + text
    for text in ("plain", "", "a=b", " =x"):
        assert neutralise_cell(text) == text


def test_csv_export_neutralises_every_text_cell(con, tmp_path):
    path = tmp_path / "billing" / "gold-reconciliation-2026.csv"
    assert write_reconciliation_csv(reconciliation_rows(con, 2026), path) == len(LINES_2026) + len(EARLIER_CAUSES)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    names = {r["customer_id"]: r["customer_name"] for r in rows}
    assert names["FULL"] == "'" + HOSTILE_FORMULA
    assert names["ENT"] == "'" + HOSTILE_CMD
    assert names["DOWN"] == "'@SUM(A1)" and names["UP"] == "'-2+3 GmbH"
    assert names["GAP"] == HOSTILE_HTML  # not a formula: unchanged
    text_columns = ("customer_id", "customer_name", "account_manager", "invoice_id", "status")
    assert not [r for r in rows for c in text_columns if r[c][:1] in ("=", "+", "-", "@", "\t", "\r")]
    # amounts stay numbers (negative differences are not text); the year's lines sum to the PDF's
    # "invoices issued in 2026" + unbilled runs; the others are the earlier lines causing open items
    year_rows = [r for r in rows if r["invoice_id"] not in EARLIER_CAUSES]
    assert sum(E(r["owed_eur"]) for r in year_rows) == TOTALS_2026[0]
    assert sum(E(r["difference_eur"]) for r in year_rows) == TOTALS_2026[2]
    assert {r["invoice_id"] for r in rows} - {""} == INVOICE_IDS_2026 | EARLIER_CAUSES
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, nothing left behind


# ---- Dagster ------------------------------------------------------------------------------------
def test_asset_materialises_one_year(export, tmp_path):
    from assets.billing import gold_reconciliation
    from assets.billing_report import gold_billing_report
    from assets.ingest import raw_import
    from assets.metrics import incident_sla
    from pipelines.partitions import yearly_partitions
    from pipelines.resources import build_resources

    assert "2026" in yearly_partitions.get_partition_keys(current_time=dt.datetime(2026, 9, 15, tzinfo=UTC))
    out = tmp_path / "out"
    resources = build_resources(export_dir=str(export), db_path=str(tmp_path / "wh.duckdb"), out_dir=str(out),
                                as_of=AS_OF.isoformat())
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([raw_import, incident_sla, gold_reconciliation, gold_billing_report],
                                resources=resources, instance=instance, partition_key="2026")
    assert result.success
    pdf_path, csv_path, xlsx_path = report_paths(out, 2026)
    assert pdf_path == out / "billing" / "gold-billing-2026.pdf"
    assert pdf_path.read_bytes().startswith(b"%PDF")
    assert csv_path.name == "gold-reconciliation-2026.csv"
    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(LINES_2026) + len(EARLIER_CAUSES)
    assert xlsx_path.name == "gold-reconciliation-2026.xlsx" and xlsx_path.read_bytes()[:2] == b"PK"
    meta = result.asset_materializations_for_node("gold_billing_report")[0].metadata
    assert meta["owed_eur"].value == str(TOTALS_2026[0]) and meta["lines"].value == 14
    first = pdf_path.read_bytes()
    # re-render later without a cut-off (as `sla report billing` does): the warehouse's cut-off
    # is used, so the bytes are the same
    later = build_resources(export_dir=str(export), db_path=str(tmp_path / "wh.duckdb"), out_dir=str(out))
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize([gold_billing_report], resources=later, instance=instance,
                              partition_key="2026").success
    assert pdf_path.read_bytes() == first


# ---- issue 14: open items, service year, covered by, exports ---------------------------------------
def test_open_items_on_page_1_equal_gold_open_items(con, report_2026, pdf_pages):
    to_invoice, to_credit, n_invoice, n_credit = con.execute(
        "SELECT sum(to_invoice_eur), sum(to_credit_eur), count(*) FILTER (WHERE to_invoice_eur > 0), "
        "count(*) FILTER (WHERE to_credit_eur > 0) FROM gold_open_items").fetchone()
    assert (report_2026.open_to_invoice, report_2026.open_to_credit) == (to_invoice, to_credit)
    assert to_invoice > 0 and to_credit > 0  # gross, never only the net
    years = {(o.customer_id, o.year) for o in report_2026.open_items}
    assert ("LEAP2", 2024) in years and ("ENDS", 2025) in years and ("RUN", 2025) in years
    page_1 = pdf_pages[0]
    assert f"TO INVOICE · {n_invoice} CUSTOMER-YEARS TO CREDIT · {n_credit} CUSTOMER-YEARS\n" \
           f"{money(to_invoice)} {money(to_credit)}\n" in page_1  # two tiles side by side
    # an open item of an earlier year (2024), with the line causing it, on page 1
    assert "LEAP2" in page_1 and "2024: EUR 51.69" in page_1 and "L2-1" in page_1.split()
    # the year's service view: the sums of gold_service_year for 2026
    owed, invoiced, ti, tc = con.execute(
        "SELECT sum(owed_eur), sum(invoiced_eur), sum(to_invoice_eur), sum(to_credit_eur) FROM gold_service_year "
        "WHERE year = 2026").fetchone()
    assert (report_2026.service.owed, report_2026.service.invoiced) == (owed, invoiced)
    assert (report_2026.service.to_invoice, report_2026.service.to_credit) == (ti, tc)
    for amount in (owed, invoiced, ti, tc):
        assert money(amount) in page_1


def test_page_1_links_to_the_customer_sections(report_2026):
    html = render_billing_html(report_2026)
    for o in report_2026.open_items:
        assert f'href="#{o.anchor}"' in html and f'id="{o.anchor}"' in html


def test_covered_by_names_the_earlier_invoice(pdf_text):
    # ENDS: no invoice issued in 2026, its 151 Gold days of 2026 are covered by E-1 (2025)
    assert "151 Gold days of 2026 covered by E-1, issued 2025-06-20" in " ".join(pdf_text.split())


def test_status_labels_for_every_status():
    from sla.report_data.models import STATUSES, status_label

    assert "credit_note" in STATUSES
    labels = [status_label(s) for s in STATUSES]
    assert "credit note" in labels and not [x for x in labels if "_" in x]


def test_csv_german_dialect_and_columns(con, tmp_path):
    rows = reconciliation_rows(con, 2026)
    en, de = tmp_path / "en.csv", tmp_path / "de.csv"
    write_reconciliation_csv(rows, en)
    write_reconciliation_csv(rows, de, locale="de")
    with en.open(encoding="utf-8-sig", newline="") as fh:
        en_rows = list(csv.DictReader(fh))
    with de.open(encoding="utf-8-sig", newline="") as fh:
        de_rows = list(csv.DictReader(fh, delimiter=";"))
    assert tuple(de_rows[0]) == CSV_COLUMNS and len(de_rows) == len(en_rows)
    assert {"days", "account_manager"} <= set(CSV_COLUMNS)
    dup = next(r for r in de_rows if r["invoice_id"] == "B-2")
    assert (dup["owed_eur"], dup["difference_eur"], dup["status"], dup["days"]) == ("0,00", "1499,00", "double billing", "0")
    assert dup["account_manager"] == "am@vendor.example"
    run = next(r for r in de_rows if r["customer_id"] == "RUN")
    assert run["difference_eur"] == "-13466,82" and run["status"] == "not invoiced" and run["open_item_years"] == "2025 2026"
    for a, b in zip(en_rows, de_rows):
        for column in ("owed_eur", "invoiced_eur", "difference_eur"):
            assert E(a[column]) == E(b[column].replace(",", "."))
    assert {r["status"] for r in en_rows} <= {"ok", "over-billed", "not Gold", "double billing", "not invoiced"}
    names = {r["customer_id"]: r["customer_name"] for r in de_rows}
    assert names["FULL"] == "'" + HOSTILE_FORMULA and names["DOWN"] == "'@SUM(A1)"
    with pytest.raises(ValueError):
        write_reconciliation_csv(rows, tmp_path / "x.csv", locale="fr")


def test_xlsx_amounts_are_numbers_in_eur_format(con, tmp_path):
    path = tmp_path / "gold-reconciliation-2026.xlsx"
    rows = reconciliation_rows(con, 2026)
    write_reconciliation_xlsx(rows, path, open_item_rows(con, 2026), created=AS_OF)
    wb = openpyxl.load_workbook(path)
    ws = wb["Reconciliation"]
    header = [c.value for c in ws[1]]
    assert tuple(header) == CSV_COLUMNS and ws.max_row == len(rows) + 1
    col = {name: i for i, name in enumerate(header)}
    total = E(0)
    for row in ws.iter_rows(min_row=2):
        for name in ("owed_eur", "invoiced_eur", "difference_eur"):
            cell = row[col[name]]
            assert cell.data_type == "n" and isinstance(cell.value, (int, float)), (name, cell.value)
            assert "EUR" in cell.number_format and "0.00" in cell.number_format
        total += E(str(row[col["owed_eur"]].value))
        assert row[col["period_start"]].is_date
        for name in ("customer_id", "customer_name", "invoice_id", "status"):  # never a formula
            assert row[col[name]].data_type in ("s", "n") and not str(row[col[name]].value or "").startswith("=")
    assert total == sum((r[CSV_COLUMNS.index("owed_eur")] for r in rows), E(0))
    names = {r[0].value: r[1].value for r in ws.iter_rows(min_row=2)}
    assert names["FULL"] == "'" + HOSTILE_FORMULA
    items = wb["Open items"]
    assert tuple(c.value for c in items[1]) == OPEN_ITEM_COLUMNS
    credit = sum(E(str(r[OPEN_ITEM_COLUMNS.index("to_credit_eur")].value)) for r in items.iter_rows(min_row=2))
    assert credit == con.execute("SELECT sum(to_credit_eur) FROM gold_open_items").fetchone()[0]


def test_years_with_open_items_are_rendered_by_a_run(con, export, tmp_path):
    from pipelines.orchestrate import billing_years

    assert open_item_years(con) == [2024, 2025, 2026]
    db = tmp_path / "wh.duckdb"
    build_warehouse(export, AS_OF, db=str(db)).close()
    assert billing_years(str(db), 2026) == [2024, 2025, 2026]
    assert billing_years(str(db), 2026, [2023]) == [2023, 2024, 2025, 2026]


def test_csv_locale_setting(monkeypatch):
    from pipelines.resources import resources_from_settings
    from pipelines.settings import ConfigError, load_settings

    monkeypatch.setenv("SLA_CSV_LOCALE", "de")
    settings = load_settings()
    assert settings.csv_locale == "de"
    assert resources_from_settings(settings)["settings"].csv_locale == "de"
    monkeypatch.setenv("SLA_CSV_LOCALE", "fr")
    with pytest.raises(ConfigError, match="SLA_CSV_LOCALE"):
        load_settings()


def test_readme_worked_example_duplicate_then_credit_note(tmp_path):
    """README "Worked example": an annual invoice across New Year, a duplicate, a credit note."""
    contracts = [contract("EX", "gold", "2025-10-01", name="Example GmbH")]
    annual = invoice("INV-A", "EX", "2025-10-01", "2025-10-01", "2026-09-30", "17988.00")
    duplicate = invoice("INV-B", "EX", "2026-02-01", "2026-01-01", "2026-03-31", "4497.00")
    credit = invoice("INV-C", "EX", "2026-03-15", "2026-01-01", "2026-03-31", "-4497.00")
    as_of = dt.datetime(2026, 4, 1, 12, tzinfo=UTC)

    def report(invoices, name):
        con = build_warehouse(write_export(tmp_path / name, [], [], contracts, invoices=invoices), as_of)
        years = con.execute("SELECT year, owed_eur, invoiced_eur FROM gold_service_year ORDER BY 1").fetchall()
        return build_billing_report(con, POLICY, 2026, as_of), years

    vm, years = report([annual], "a")
    assert years == [(2025, E("4497.00"), E("4497.00")), (2026, E("13491.00"), E("13491.00"))]
    assert vm.open_items == ()

    vm, _ = report([annual, duplicate], "ab")
    (item,) = vm.open_items
    assert (item.year, item.service.to_credit, item.service.to_invoice) == (2026, E("4497.00"), E("0.00"))
    assert [(x.invoice_id, x.label, x.owed, x.difference) for x in item.causes] == [
        ("INV-B", "double billing", E("0.00"), E("4497.00"))]
    page_1 = render_billing_html(vm).split('class="issued')[0]
    assert "EUR 4,497.00" in page_1 and "INV-B" in page_1

    vm, _ = report([annual, duplicate, credit], "abc")
    assert vm.open_items == () and (vm.open_to_invoice, vm.open_to_credit) == (E("0.00"), E("0.00"))
    statuses = {x.invoice_id: x.label for c in vm.customers for x in c.invoices}
    assert statuses == {"INV-B": "double billing", "INV-C": "credit note"}
    assert {s.status: s.label for s in vm.by_status}["credit_note"] == "credit note"
    assert '<span class="st st-open">credit note</span>' in render_billing_html(vm)
