"""Customer compliance PDFs end to end: warehouse -> view models -> PDFs (issue 3).

Real DuckDB, real Dagster (`run_all`), real WeasyPrint and kaleido/chromium. The expected
figures are read from the warehouse tables (`incident_sla`, `monthly_sla`, `contracts`),
not from the view models, so a bug in the report builder cannot hide behind itself.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from pypdf import PdfReader

from connectors.demo_export import write_demo_export
from pipelines import cli
from pipelines.orchestrate import run_all
from reports import filters
from reports.batch import report_filename, slug
from reports.render import render_customer_pdf
from sla.policy import load_policy
from sla.report_data.customer import NoSuchCustomer, build_customer_reports
from tests.helpers import run_domain, write_export

AS_OF = dt.datetime(2026, 4, 1, 6, 0, tzinfo=dt.timezone.utc)
MONTH = "2026-03"
GERMAN = "C0003"  # contracts.csv gets a `language` column: this customer reads German
TICKET_ID = re.compile(r"T\d{8}")
WORD_ID = re.compile(r"\bT\d{8}\b")


# --------------------------------------------------------------------------- helpers
def squash(s: str) -> str:
    return re.sub(r"\s+", "", s.replace("\u00a0", " "))


def flat(s: str) -> str:
    return re.sub(r"\s+", " ", s.replace("\u00a0", " "))


def poppler_pages(path: Path) -> list[list[tuple[float, float, float, float, str]]]:
    """Words with their boxes per page (pdftotext -bbox).

    Poppler, not pdfplumber, for the text: WeasyPrint embeds a small font subset as a simple
    TrueType font with a custom encoding, whose text pdfminer (under pdfplumber) drops and
    pypdf letter-spaces; poppler reads it through its ToUnicode map, as a PDF viewer does.
    """
    xhtml = subprocess.run(["pdftotext", "-bbox", str(path), "-"], check=True,
                           capture_output=True, text=True).stdout
    pages = []
    for page in xhtml.split("<page ")[1:]:
        pages.append([(float(a), float(b), float(c), float(d), html.unescape(w)) for a, b, c, d, w in
                      re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" '
                                 r'yMax="([\d.]+)">(.*?)</word>', page)])
    return pages


class Pdf:
    def __init__(self, path: Path):
        self.path = path
        self.bytes = path.read_bytes()
        self.text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True,
                                   text=True).stdout
        self.flat = flat(self.text)
        self.squashed = squash(self.text)
        column = []
        for words in poppler_pages(path):  # the ticket column: a wrapped id stays in one piece
            left = [w for w in words if w[4] == "TICKET"]
            right = [w for w in words if w[4] in ("SUBJECT", "BETREFF") and left and abs(w[1] - left[0][1]) < 2]
            if not (left and right):
                continue
            top = left[0][3]
            notes = [w[1] for w in words if w[4] in ("Times", "Zeiten") and w[1] > top]
            bottom = min(notes) if notes else 790.0  # the table ends at its note (or the footer)
            cells = [w for w in words if w[0] >= left[0][0] - 0.5 and w[2] <= right[0][0]
                     and w[1] > top and w[3] < bottom]
            column.append("".join(w[4] for w in sorted(cells, key=lambda w: (w[1], w[0]))))
        self.ticket_column = "".join(column)

    def ticket_ids(self) -> set[str]:
        """Ids in the incident table (wrapped ids joined) and anywhere else in the text."""
        return set(TICKET_ID.findall(self.ticket_column)) | set(WORD_ID.findall(self.flat))


def add_language_column(export: Path, german: str) -> None:
    path = export / "contracts.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    rows[0].append("language")
    for r in rows[1:]:
        r.append("de" if r[0] == german else "")  # empty: English
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def query(con, sql: str, params=()) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


# --------------------------------------------------------------------------- the demo month
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("customer-pdfs")
    export = root / "export"
    write_demo_export(export, customers=25, months=3, as_of=AS_OF)
    add_language_column(export, GERMAN)
    db, out = str(root / "warehouse.duckdb"), root / "out"
    outcome = run_all(export_dir=str(export), db_path=db, out_dir=str(out), as_of=AS_OF,
                      month=MONTH, progress=lambda _m: None)
    con = duckdb.connect(db, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    pdfs = {p.name.split("-", 1)[0]: Pdf(p) for p in sorted((out / MONTH / "customers").glob("*.pdf"))}
    yield {"root": root, "db": db, "out": out, "outcome": outcome, "con": con, "pdfs": pdfs}
    con.close()


def test_run_all_writes_one_pdf_per_customer_of_the_month(demo):
    con = demo["con"]
    expected = {r[0] for r in query(con, """
        SELECT customer_id FROM contracts
        WHERE valid_from <= DATE '2026-03-31' AND coalesce(valid_to, DATE '9999-12-31') >= DATE '2026-03-01'
        UNION SELECT customer_id FROM incident_sla WHERE month = ?""", [MONTH])}
    assert set(demo["pdfs"]) == expected and len(expected) == 25
    names = dict(query(con, "SELECT customer_id, any_value(customer_name) FROM contracts GROUP BY 1"))
    for cid, pdf in demo["pdfs"].items():
        assert pdf.path.name == f"{cid}-{slug(names[cid])}.pdf"
    folder = demo["out"] / MONTH / "customers"
    assert not [p for p in folder.iterdir() if not p.name.endswith(".pdf")]  # no temporary files
    assert any(str(folder) in line and "25 customer PDFs" in line for line in demo["outcome"].outputs)


def test_pdf_figures_match_the_warehouse(demo):
    con = demo["con"]
    lang_of = dict(query(con, "SELECT customer_id, any_value(language) FROM contracts GROUP BY 1"))
    month_end_quota = dict(query(con, """
        SELECT c.customer_id, t.monthly_incident_quota FROM contracts c JOIN sla_tiers t USING (tier)
        WHERE DATE '2026-03-31' BETWEEN c.valid_from AND coalesce(c.valid_to, DATE '9999-12-31')"""))
    checked_rates = 0
    for cid, pdf in demo["pdfs"].items():
        lang = lang_of[cid]
        ids = {r[0] for r in query(con, "SELECT ticket_id FROM incident_sla WHERE month = ? AND customer_id = ?",
                                   [MONTH, cid])}
        carried = {r[0] for r in query(con, CARRIED + " AND customer_id = ?", [MONTH, MONTH, cid])}
        # every incident of the customer and month, those carried over, and nothing else
        assert set(TICKET_ID.findall(pdf.ticket_column)) >= ids, cid
        assert pdf.ticket_ids() == ids | carried, cid
        used = query(con, "SELECT count(*) FROM incident_sla WHERE month = ? AND customer_id = ? "
                          "AND over_quota = false", [MONTH, cid])[0][0]
        quota = max(month_end_quota.get(cid, 0), used)
        tiers = query(con, "SELECT count(DISTINCT tier) FROM contracts WHERE customer_id = ? AND valid_from <= "
                           "DATE '2026-03-31' AND coalesce(valid_to, DATE '9999-12-31') >= DATE '2026-03-01'",
                      [cid])[0][0]
        if tiers <= 1:  # a tier change shows one allowance per tier
            assert flat(filters.text("quota_of", lang, used=filters.number(used, lang),
                                     quota=filters.number(quota, lang))) in pdf.flat, cid
        for metric in ("first_response", "resolution"):
            met, breached, pending, no_target = query(con, """
                SELECT coalesce(sum(met), 0), coalesce(sum(breached), 0), coalesce(sum(pending), 0),
                       coalesce(sum(no_target), 0)
                FROM monthly_sla WHERE month = ? AND customer_id = ? AND metric = ?""", [MONTH, cid, metric])[0]
            t = lambda key: filters.text(key, lang)  # noqa: E731
            if metric == "resolution" and met + breached + pending == 0 and no_target:
                continue  # a plan without resolution targets: one sentence instead of the tile
            assert f"{met} {t('met')} · {breached} {t('breached')}" in pdf.flat, (cid, metric)
            assert f"{pending} {t('pending')}" in pdf.flat, (cid, metric)
            if met + breached >= 5:
                assert flat(filters.rate(Decimal(met) / Decimal(met + breached), lang)) in pdf.flat
                checked_rates += 1
            elif met + breached:  # counts below 5 rated incidents (sla-semantics.md section 7)
                assert flat(filters.text("counts", lang, met=met, rated=met + breached)) in pdf.flat
                checked_rates += 1
        # every breached or pending incident is explained (its id appears again, unwrapped)
        explained = {r[0] for r in query(con, """
            SELECT ticket_id FROM incident_sla WHERE month = ? AND customer_id = ? AND (
              first_response_met = false OR resolution_met = false
              OR (first_response_met IS NULL AND first_response_target_seconds IS NOT NULL)
              OR (resolution_met IS NULL AND resolution_target_seconds IS NOT NULL))""", [MONTH, cid])}
        for tid in explained:
            assert tid in pdf.text, (cid, tid)
        # PDF dates are the cut-off; no attachments
        reader = PdfReader(io.BytesIO(pdf.bytes))
        assert reader.metadata.creation_date.astimezone(dt.timezone.utc) == AS_OF
        assert reader.metadata.modification_date.astimezone(dt.timezone.utc) == AS_OF
        assert not reader.attachments
    assert checked_rates >= 10


CARRIED = """SELECT ticket_id, customer_id FROM incident_sla
    WHERE month < ? AND (resolved_at IS NULL OR strftime(resolved_at AT TIME ZONE 'Europe/Berlin', '%Y-%m') = ?)"""


def test_carried_over_incidents_are_in_their_customers_report_and_no_other(demo):
    carried = query(demo["con"], CARRIED, [MONTH, MONTH])
    assert carried, "the demo has incidents carried over into the month"
    for tid, cid in carried:
        assert tid in demo["pdfs"][cid].ticket_ids(), (cid, tid)
        others = [other for other, pdf in demo["pdfs"].items() if other != cid and tid in pdf.ticket_ids()]
        assert not others, (tid, others)
    for cid in {c for _, c in carried}:
        assert filters.text("carried_title", "de" if cid == GERMAN else "en") in demo["pdfs"][cid].flat


def test_german_contract_gives_a_german_report(demo):
    pdf = demo["pdfs"][GERMAN]
    assert "März 2026" in pdf.text and "March 2026" not in pdf.text
    assert "Einhaltungsquote" in pdf.flat or "eingehalten" in pdf.flat


def test_tenant_isolation_no_other_customers_ids_or_names(demo):
    con = demo["con"]
    owner = dict(query(con, "SELECT ticket_id, customer_id FROM tickets"))
    names = dict(query(con, "SELECT customer_id, any_value(customer_name) FROM contracts GROUP BY 1"))
    for cid, pdf in demo["pdfs"].items():
        foreign = {t for t in pdf.ticket_ids() if owner.get(t) != cid}
        assert not foreign, (cid, foreign)
        own = squash(names[cid])
        assert own in pdf.squashed  # the name, literally (the demo has "<b>Acme</b> & \"Co\"")
        for other, name in names.items():
            if other != cid and squash(name) not in own:
                assert squash(name) not in pdf.squashed, (cid, other, name)
        others = [t for t, c in owner.items() if c != cid]
        assert not [t for t in others if t in pdf.flat or t in pdf.ticket_column], cid


def test_same_input_same_bytes_and_cli_rerender(demo, tmp_path):
    policy = load_policy()
    with duckdb.connect(demo["db"], read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        vms = {vm.customer.id: vm for vm in build_customer_reports(con, policy, MONTH)}
        again = build_customer_reports(con, policy, MONTH, customer_id="C0024")
    assert again == [vms["C0024"]]
    # a customer with explanations and a tier change, rendered in this process, gives the bytes the
    # worker process wrote during `sla run`
    vm = vms["C0024"]
    pdf = render_customer_pdf(vm)
    assert pdf == render_customer_pdf(vm)
    written = demo["out"] / MONTH / "customers" / report_filename(vm)
    assert pdf == written.read_bytes()
    # `sla report customers --month --customer` re-renders the same bytes
    out = tmp_path / "out"
    rc = cli.main(["report", "customers", "--month", MONTH, "--customer", "C0024",
                   "--db", demo["db"], "--out", str(out)])
    assert rc == 0
    assert (out / MONTH / "customers" / written.name).read_bytes() == pdf
    assert cli.main(["report", "customers", "--month", MONTH, "--customer", "NOPE",
                     "--db", demo["db"], "--out", str(out)]) == 2


# --------------------------------------------------------------------------- hand-made cases
def _ts(local: str) -> str:
    return dt.datetime.fromisoformat(local).replace(
        tzinfo=load_policy().calendar.tz).isoformat()


def test_tier_changes_no_contract_and_resolution_due(tmp_path):
    """Tier change mid-month, a contract ending mid-month, incidents without a contract,
    contracts outside the month, and the due instants of a breached resolution."""
    contracts = [
        ("A", "Alpha AG", "enterprise", "2025-01-01", "2026-03-15", "am@x"),
        ("A", "Alpha AG", "gold", "2026-03-16", "", "am@x"),
        ("C", "Gamma (ended in Feb)", "professional", "2025-01-01", "2026-02-20", ""),
        ("D", "Delta (starts in April)", "gold", "2026-04-01", "", ""),
        ("E", "Epsilon (ten days)", "enterprise", "2026-03-10", "2026-03-20", ""),
    ]
    tickets = [
        # sev 1 enterprise: resolution target 32 business hours from Mon 2 Mar 09:00 -> due
        # Thu 5 Mar 17:00 (a target ending at closing time is due that day); solved Tue 10 Mar
        ("A-1", "A", "Database down", 1, _ts("2026-03-02T09:00:00"), "email"),
        ("B-1", "B", "No contract at all", 2, _ts("2026-03-03T10:00:00"), "email"),
        ("C-0", "C", "Last month", 3, _ts("2026-02-10T10:00:00"), "email"),
    ]
    events = [
        ("A-1", _ts("2026-03-02T10:00:00"), "reply", "agent", ""),
        ("A-1", _ts("2026-03-02T10:00:00"), "status", "agent", "open"),
        ("A-1", _ts("2026-03-04T10:00:00"), "severity", "agent", "2"),
        ("A-1", _ts("2026-03-04T10:00:00"), "severity", "agent", "1"),
        ("A-1", _ts("2026-03-10T17:00:00"), "status", "agent", "solved"),
    ]
    con, _ = run_domain(write_export(tmp_path / "export", tickets, events, contracts), AS_OF)
    policy = load_policy()
    reports = {r.customer.id: r for r in build_customer_reports(con, policy, MONTH)}
    # C's contract ended in February, but its February incident is still open: the March report
    # lists it under "from earlier months" (sla-semantics.md section 4), so C gets one
    assert set(reports) == {"A", "B", "C", "E"}
    c = reports["C"]
    assert c.customer.tier is None and not c.incidents and c.summary.incidents_opened == 0
    assert [i.ticket_id for i in c.carried_over] == ["C-0"] and c.summary.carried_open == 1
    utc = dt.timezone.utc

    a = reports["A"]
    assert a.customer.tier == "gold" and a.customer.name == "Alpha AG"
    assert [(c.at, c.from_tier, c.to_tier) for c in a.customer.tier_changes] == [
        (dt.datetime(2026, 3, 15, 23, 0, tzinfo=utc), "enterprise", "gold")]
    (inc,) = a.incidents
    assert inc.resolution_met is False and inc.resolution_seconds == 7 * 8 * 3600
    assert inc.resolution_target_seconds == 32 * 3600  # the enterprise target of its creation date
    assert [(c.from_severity, c.to_severity) for c in inc.severity_changes] == [(1, 2), (2, 1)]
    (exp,) = a.explanations
    assert exp.resolution_due_at == dt.datetime(2026, 3, 5, 16, 0, tzinfo=utc)
    assert exp.first_response_due_at == dt.datetime(2026, 3, 2, 16, 0, tzinfo=utc)
    assert [s.state for s in exp.segments] == ["running"]  # new -> open merged
    assert a.summary.quota_used == 1 and a.summary.quota == 4 and a.summary.over_quota == 0
    # one allowance per tier of the month, and each tier's targets
    assert [(x.tier, x.quota, x.used) for x in a.summary.allowances] == [("enterprise", 2, 1), ("gold", 4, 0)]
    assert [t for t, _ in a.tiers_targets] == ["enterprise", "gold"]
    assert [t[0] for t in a.severities[0].tier_targets] == ["enterprise", "gold"]
    assert [(b.ticket_id, b.metric, b.over_seconds) for b in a.breaches] == [("A-1", "resolution", 24 * 3600)]
    sev2 = next(r for r in a.severities if r.severity == 2)
    assert (sev2.resolution_target.amount, sev2.resolution_target.unit) == (3, "business_days")
    assert [p.month for p in a.trend] == ["2026-02", "2026-03"]  # the warehouse starts in Feb

    b = reports["B"]
    assert b.customer.tier is None and b.customer.name == "B" and b.summary.incidents_opened == 1
    assert b.incidents[0].first_response_target_seconds is None and not b.explanations

    e = reports["E"]
    assert e.customer.tier == "enterprise" and e.summary.incidents_opened == 0
    assert [(c.from_tier, c.to_tier) for c in e.customer.tier_changes] == [(None, "enterprise"),
                                                                          ("enterprise", None)]
    with pytest.raises(NoSuchCustomer):
        build_customer_reports(con, policy, MONTH, customer_id="D")
    assert [r.customer.id for r in build_customer_reports(con, policy, MONTH, customer_id="A")] == ["A"]
