"""Contract terms in the customer's report (issue 17): an approved exclusion is shown with its
reason and is outside the rates, a contract's own terms are named and their targets listed, and
a change to a delivered month is listed as "changes to earlier reports"."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import duckdb

from connectors.csv_export import CsvExportSource
from reports.render import render_customer_html
from sla.policy import load_policy
from sla.report_data.customer import build_customer_reports
from sla.restatements import keep_delivered
from sla.steps import compute_metrics, import_source
from tests.helpers import write_export

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
POLICY = load_policy()  # defines the term set gold-6: 6 included, severity-1 response in 4 business hours


def local(*args) -> str:
    return dt.datetime(*args, tzinfo=BERLIN).isoformat()


def build(folder, as_of, db):
    con = duckdb.connect(db)
    con.execute("SET TimeZone = 'UTC'")
    import_source(con, CsvExportSource(folder), POLICY)
    compute_metrics(con, POLICY, as_of)
    return con


def test_exclusion_terms_and_restatement_in_the_report(tmp_path):
    contracts = [("G", "Gold Six GmbH", "gold", "2026-01-01", "", "am@vendor.example", "gold-6")]
    # X1 (severity 3, Mon 2 Mar 09:00) is never answered: breached by the cut-off (8 business hours)
    # X2 (severity 1, Mon 2 Mar 09:00), answered at 14:00: 5 h against the term set's 4 h -> breached
    tickets = [("X1", "G", "never answered", 3, local(2026, 3, 2, 9), "email"),
               ("X2", "G", "answered late", 1, local(2026, 3, 2, 9), "email")]
    events = [("X2", local(2026, 3, 2, 14), "reply", "agent", "")]
    as_of = dt.datetime(2026, 4, 1, 12, tzinfo=BERLIN)
    db = str(tmp_path / "wh.duckdb")
    con = build(write_export(tmp_path / "a", tickets, events, contracts), as_of, db)
    keep_delivered(con, "2026-03", ["G"], "am@vendor.example", dt.datetime(2026, 4, 2, tzinfo=UTC))
    con.close()
    # later: X1's first response is excluded by agreement; the March report already went out
    folder = write_export(tmp_path / "b", tickets, events, contracts, exclusions=[
        ("X1", "first_response", "Customer's mail server rejected our replies", "Head of Support",
         "2026-04-03T10:00:00+02:00")])
    con = build(folder, dt.datetime(2026, 5, 1, 12, tzinfo=BERLIN), db)

    march = build_customer_reports(con, POLICY, "2026-03", customer_id="G")[0]
    x1 = next(i for i in march.incidents if i.ticket_id == "X1")
    assert x1.first_response_excluded and x1.first_response_met is None
    # one rated first response (X2, breached) and one excluded: X1 is neither pending nor breached
    fr = march.summary.first_response
    assert (fr.met, fr.breached, fr.pending, fr.excluded) == (0, 1, 0, 1)
    assert march.terms_description.startswith("Gold with 6 included incidents")
    sev1 = next(r for r in march.severities if r.severity == 1)
    assert sev1.first_response_target.seconds == 4 * 3600  # the term set's target, not Gold's 8 h
    html = render_customer_html(march, with_charts=False)
    assert "Taken out of the SLA by agreement: Customer&#39;s mail server rejected our replies" in html
    assert "Your contract&#39;s terms apply: Gold with 6 included incidents" in html

    april = build_customer_reports(con, POLICY, "2026-04", customer_id="G")[0]
    assert [(r.month, r.figure, r.was, r.now) for r in april.restatements] == [
        ("2026-03", "first_response_breached", 2, 1), ("2026-03", "first_response_excluded", 0, 1)]
    html = render_customer_html(april, with_charts=False)
    assert "Changes to earlier reports" in html and "first response excluded" in html
