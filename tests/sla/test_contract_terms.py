"""Contract terms over time (sla-semantics.md section 6, issue 17): policy versions, customer term
sets, approved exclusions and restatements. Hand-computed cases (the arithmetic is in the comments)
and random cases against tests/reference.py and tests/sla/billing_reference.py."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.csv_export import CsvExportSource
from sla.billing import compute_gold_reconciliation
from sla.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy, policy_from_dict
from sla.restatements import keep_delivered, restatements
from sla.steps import import_source
from tests.helpers import incident_rows, run_domain, write_export
from tests.reference import Contract, Exclusion, reference_incident_sla
from tests.sla.billing_reference import line_key, reference
from tests.sla.test_billing import billing_cases
from tests.sla.test_incident_sla import histories

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
D = dt.date
E = Decimal
H = 3600
BASE = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
STANDARD = load_policy()


def local(*args) -> str:
    return dt.datetime(*args, tzinfo=BERLIN).isoformat()


def policy_with(versions=(), terms=None):
    data = copy.deepcopy(BASE)
    if terms:
        data["terms"] = terms
    if versions:
        data["versions"] = list(versions)
    return policy_from_dict(data)


#: the README's example: from 2027-01-01 Gold costs EUR 1,599 and Gold severity 2 resolution is 2 business days
README_VERSION = {"in_force_from": "2027-01-01",
                  "tiers": {"gold": {"monthly_price": "1599.00", "targets": {2: {"resolution": "2 business days"}}}}}
TERMS = {"gold-6": {"monthly_incident_quota": 6, "targets": {1: {"first_response": "4 business hours"}}},
         "gold-discount": {"monthly_price": "1199.00"}}
README_POLICY = policy_with([README_VERSION], TERMS)


def contract(cid, tier, start, end="", terms=""):
    return (cid, f"Customer {cid}", tier, start, end, "am@vendor.example", terms)


def ticket(tid, cid, sev, created):
    return (tid, cid, "subject", sev, created, "web")


# ---- policy versions: the file -------------------------------------------------------------------
def test_todays_file_is_one_version():
    assert len(STANDARD.versions) == 1 and STANDARD.version_on(D(2030, 1, 1)) is STANDARD


def test_versions_merge_onto_the_previous_one():
    v1, v2 = README_POLICY.versions
    assert v1.tiers["gold"].monthly_price == E("1499.00") and v2.tiers["gold"].monthly_price == E("1599.00")
    assert v2.tiers["gold"].targets[2].resolution == "2 business days"
    assert v2.tiers["gold"].targets[1] == v1.tiers["gold"].targets[1]  # unchanged parts carry over
    assert README_POLICY.version_on(D(2026, 12, 31)) is v1 and README_POLICY.version_on(D(2027, 1, 1)) is v2


@pytest.mark.parametrize("versions, message", [
    ([{"in_force_from": "2027-01-01"}, {"in_force_from": "2026-06-01"}],
     "versions.1.in_force_from: 2026-06-01 is before the previous version's in_force_from 2027-01-01"),
    ([{"in_force_from": "2027-01-01"}, {"in_force_from": "2027-01-01"}],
     "versions.1.in_force_from: 2027-01-01 overlaps the previous version's"),
    ([{"tiers": {"gold": {"monthly_price": "1599.00"}}}], "versions.0.in_force_from: required"),
    ([{"in_force_from": "2027-01-01", "statuses": {"pause": []}}], "versions.0.statuses: cannot change"),
    ([{"in_force_from": "2027-01-01", "tiers": {"gold": {"targets": {2: {"resolution": "2 days"}}}}}],
     "versions.0.tiers.gold.targets.2.resolution: cannot read '2 days'"),
    ([{"in_force_from": "2027-01-01", "calendar": {"timezone": "Europe/London"}}],
     "versions.0.calendar.timezone: cannot change"),
])
def test_bad_versions_name_the_field(versions, message):
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(".", r"\.")):
        policy_with(versions)


def test_unknown_severity_in_terms_is_refused():
    with pytest.raises(PolicyError, match=r"terms\.x\.targets: severity \[7\]"):
        policy_with(terms={"x": {"targets": {7: {"first_response": "1 business hours"}}}})


# ---- policy versions: incidents ------------------------------------------------------------------
def test_version_change_mid_history(tmp_path):
    folder = write_export(tmp_path, [
        # created Wed 30 Dec 2026 09:00 (version 1: 3 business days = 24 h), solved Mon 4 Jan 13:00:
        # Wed 8 h + Thu 31 Dec 8 h + (Fri 1 Jan holiday) + Mon 4 h = 20 h <= 24 h: met
        ticket("DEC", "G", 2, local(2026, 12, 30, 9)),
        # created Tue 5 Jan 2027 09:00 (version 2: 2 business days = 16 h), solved Thu 7 Jan 13:00:
        # 8 + 8 + 4 = 20 h > 16 h: breached
        ticket("JAN", "G", 2, local(2027, 1, 5, 9)),
    ], [
        ("DEC", local(2026, 12, 30, 10), "reply", "agent", ""),
        ("DEC", local(2027, 1, 4, 13), "status", "a", "solved"),
        ("JAN", local(2027, 1, 5, 10), "reply", "agent", ""),
        ("JAN", local(2027, 1, 7, 13), "status", "a", "solved"),
    ], [contract("G", "gold", "2026-01-01")])
    as_of = dt.datetime(2027, 2, 1, tzinfo=BERLIN)
    con, _ = run_domain(folder, as_of, README_POLICY)
    got = incident_rows(con)
    assert (got["DEC"]["resolution_target_seconds"], got["DEC"]["resolution_business_seconds"],
            got["DEC"]["resolution_met"]) == (24 * H, 20 * H, True)
    assert (got["JAN"]["resolution_target_seconds"], got["JAN"]["resolution_business_seconds"],
            got["JAN"]["resolution_met"]) == (16 * H, 20 * H, False)
    # December's figures are those of the single-version policy
    old, _ = run_domain(folder, as_of, STANDARD)
    assert incident_rows(old)["DEC"] == got["DEC"]


def test_business_hours_follow_the_version_of_each_day(tmp_path):
    longer = policy_with([{"in_force_from": "2027-01-01", "calendar": {"weekly_hours": {
        d: "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}}}])
    folder = write_export(tmp_path, [ticket("T", "G", 3, local(2026, 12, 31, 16))],
                          [("T", local(2027, 1, 4, 9), "reply", "agent", "")],
                          [contract("G", "gold", "2026-01-01")])
    con, _ = run_domain(folder, dt.datetime(2027, 2, 1, tzinfo=BERLIN), longer)
    # Thu 31 Dec 16:00-17:00 (old hours) + Mon 4 Jan 08:00-09:00 (new hours) = 2 h
    assert incident_rows(con)["T"]["first_response_business_seconds"] == 2 * H
    # a day of the new version is 10 business hours long
    assert con.execute("SELECT business_seconds FROM business_calendar WHERE day = DATE '2027-01-04'").fetchone()[0] == 10 * H


# ---- customer terms --------------------------------------------------------------------------------
def test_term_set_overrides_targets_and_quota(tmp_path):
    tickets = [ticket("S1", "T", 1, local(2026, 3, 2, 9)), ticket("G1", "G", 1, local(2026, 3, 2, 9))]
    tickets += [ticket(f"S{i}", "T", 3, local(2026, 3, 2 + i, 9)) for i in range(2, 7)]
    events = [("S1", local(2026, 3, 2, 13, 30), "reply", "agent", ""),
              ("G1", local(2026, 3, 2, 13, 30), "reply", "agent", "")]
    folder = write_export(tmp_path, tickets, events, [
        contract("T", "gold", "2026-01-01", terms="gold-6"), contract("G", "gold", "2026-01-01"),
        contract("Z", "gold", "2026-01-01", terms="platinum")])
    con, counts = run_domain(folder, dt.datetime(2026, 4, 1, tzinfo=BERLIN), README_POLICY)
    got = incident_rows(con)
    # 4.5 h to the first reply: breached under the 4-hour terms, met under the standard 8 hours
    assert (got["S1"]["first_response_target_seconds"], got["S1"]["first_response_met"], got["S1"]["terms"]) == (
        4 * H, False, "gold-6")
    assert (got["G1"]["first_response_target_seconds"], got["G1"]["first_response_met"], got["G1"]["terms"]) == (
        8 * H, True, None)
    # six incidents in March, quota 6: none over quota (the standard 4 would make two)
    assert [got[f"S{i}"]["over_quota"] for i in range(1, 7)] == [False] * 6
    assert con.execute("SELECT quota, over_quota FROM monthly_quota WHERE customer_id = 'T'").fetchall() == [(6, 0)]
    # an unknown term set rejects the contract row, with the reason
    assert con.execute("SELECT line, reason FROM rejects WHERE source = 'contracts.csv'").fetchall() == [
        (4, "terms 'platinum' is not a term set of the policy (gold-6, gold-discount)")]
    assert {c.source: (c.rows_in, c.accepted, c.rejected) for c in counts}["contracts.csv"] == (3, 2, 1)


# ---- approved exclusions ---------------------------------------------------------------------------
EXCLUSIONS = [
    ("X1", "resolution", "customer asked to keep it open", "Head of Support", "2026-03-10T10:00:00+01:00"),
    ("X1", "first_response", "older reason", "A. Approver", "2026-03-10T09:00:00+01:00"),
    ("X1", "first_response", "mail outage at the customer", "B. Approver", "2026-03-11T09:00:00+01:00"),
    ("X2", "both", "wrong severity chosen", "C. Approver", "2026-04-15T00:00:00+02:00"),  # after the cut-off
    ("NOPE", "both", "r", "a", "2026-03-10T10:00:00+01:00"),
    ("X1", "speed", "r", "a", "2026-03-10T10:00:00+01:00"),
    ("X1", "resolution", "", "a", "2026-03-10T10:00:00+01:00"),
    ("X1", "resolution", "r", " ", "2026-03-10T10:00:00+01:00"),
    ("X1", "resolution", "r", "a", "2026-03-10T10:00:00"),
]


def test_exclusions(tmp_path):
    folder = write_export(tmp_path, [ticket("X1", "G", 1, local(2026, 3, 3, 9)), ticket("X2", "G", 3, local(2026, 3, 3, 9))], [
        # X1: first reply after 9 h (> 8 h), solved after 8 + 8 + 3 = 19 h (> 16 h): both breached
        ("X1", local(2026, 3, 4, 10), "reply", "agent", ""),
        ("X1", local(2026, 3, 5, 12), "status", "a", "solved"),
    ], [contract("G", "gold", "2026-01-01")], exclusions=EXCLUSIONS)
    con, counts = run_domain(folder, dt.datetime(2026, 4, 1, tzinfo=BERLIN))
    assert {c.source: (c.rows_in, c.accepted, c.rejected) for c in counts}["exclusions.csv"] == (9, 4, 5)
    assert con.execute("SELECT line, reason FROM rejects WHERE source = 'exclusions.csv' ORDER BY line").fetchall() == [
        (6, "ticket_id 'NOPE' is not an accepted ticket (unknown, or rejected in tickets.csv)"),
        (7, "metric 'speed' is not one of first_response, resolution, both"),
        (8, "reason is empty"),
        (9, "approved_by is empty"),
        (10, "approved_at '2026-03-10T10:00:00' has no UTC offset (timezone unknown)"),
    ]
    got = incident_rows(con)
    x1, x2 = got["X1"], got["X2"]
    assert (x1["first_response_excluded"], x1["first_response_met"], x1["first_response_exclusion_reason"]) == (
        True, None, "mail outage at the customer")  # the latest approval applies
    assert (x1["resolution_excluded"], x1["resolution_met"], x1["resolution_exclusion_reason"]) == (
        True, None, "customer asked to keep it open")
    # still measured
    assert (x1["first_response_business_seconds"], x1["resolution_business_seconds"]) == (9 * H, 19 * H)
    # approved after the cut-off: does not exist yet (both breached by 1 April)
    assert (x2["first_response_excluded"], x2["resolution_excluded"], x2["first_response_met"], x2["resolution_met"]) == (
        False, False, False, False)
    monthly = con.execute("SELECT severity, metric, incidents, met, breached, pending, no_target, excluded, compliance_rate "
                          "FROM monthly_sla ORDER BY severity, metric").fetchall()
    assert monthly == [(1, "first_response", 1, 0, 0, 0, 0, 1, None), (1, "resolution", 1, 0, 0, 0, 0, 1, None),
                       (3, "first_response", 1, 0, 1, 0, 0, 0, 0.0), (3, "resolution", 1, 0, 1, 0, 0, 0, 0.0)]
    assert con.execute("SELECT ticket_id, metric, approved_by FROM incident_exclusions").fetchall() == [
        ("X1", "first_response", "B. Approver"), ("X1", "resolution", "Head of Support")]
    # one day later the X2 approval exists: both metrics excluded
    con2, _ = run_domain(folder, dt.datetime(2026, 4, 16, tzinfo=BERLIN))
    assert incident_rows(con2)["X2"]["resolution_exclusion_reason"] == "wrong severity chosen"


# ---- restatements ----------------------------------------------------------------------------------
def test_restatement_after_a_late_event(tmp_path):
    tickets = [ticket("R1", "G", 3, local(2026, 3, 30, 9)), ticket("R2", "G", 3, local(2026, 3, 30, 9))]
    contracts = [contract("G", "gold", "2026-01-01")]
    as_of = dt.datetime(2026, 3, 31, 12, tzinfo=BERLIN)
    before = write_export(tmp_path / "before", tickets, [("R2", local(2026, 3, 30, 10), "reply", "agent", "")], contracts)
    db = str(tmp_path / "wh.duckdb")
    con, _ = run_domain(before, as_of, db=db)
    # R1: no reply by Tue 12:00, 8 + 3 = 11 h > 8 h: first response breached; R2 met
    keep_delivered(con, "2026-03", ["G"], "am@vendor.example", dt.datetime(2026, 4, 2, tzinfo=UTC))
    assert restatements(con, "2026-03") == []
    con.close()
    # the reply of R1 at 10:00 on the 30th arrives late; the same cut-off now says: met
    after = write_export(tmp_path / "after", tickets, [("R2", local(2026, 3, 30, 10), "reply", "agent", ""),
                                                       ("R1", local(2026, 3, 30, 10), "reply", "agent", "")], contracts)
    con = duckdb.connect(db)
    con.execute("SET TimeZone = 'UTC'")
    from sla.steps import compute_metrics
    import_source(con, CsvExportSource(after), STANDARD)
    compute_metrics(con, STANDARD, as_of)
    why = "R1: first response breached -> met"
    assert restatements(con, "2026-03") == [("G", "2026-03", "first_response_met", 1, 2, why),
                                            ("G", "2026-03", "first_response_breached", 1, 0, why)]
    assert restatements(con, "2026-02") == []
    con.close()
    from pipelines.cli import main
    assert main(["restatements", "--month", "2026-03", "--db", db]) == 0


def test_restatement_from_an_exclusion(tmp_path):
    tickets = [ticket("R1", "G", 3, local(2026, 3, 2, 9))]
    contracts = [contract("G", "gold", "2026-01-01")]
    as_of = dt.datetime(2026, 4, 1, tzinfo=BERLIN)
    con, _ = run_domain(write_export(tmp_path / "a", tickets, [], contracts), as_of)
    keep_delivered(con, "2026-03", ["G"], "am@vendor.example", dt.datetime(2026, 4, 2, tzinfo=UTC))
    folder = write_export(tmp_path / "b", tickets, [], contracts, exclusions=[
        ("R1", "first_response", "customer unreachable", "Head of Support", "2026-03-20T10:00:00+01:00")])
    import_source(con, CsvExportSource(folder), STANDARD)
    from sla.steps import compute_metrics
    compute_metrics(con, STANDARD, as_of)
    why = "R1: first response breached -> excluded (customer unreachable, approved by Head of Support)"
    assert restatements(con, "2026-03") == [("G", "2026-03", "first_response_breached", 1, 0, why),
                                            ("G", "2026-03", "first_response_excluded", 0, 1, why)]


# ---- billing ---------------------------------------------------------------------------------------
def billing(folder, policy, as_of):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    import_source(con, CsvExportSource(folder), policy)
    compute_gold_reconciliation(con, policy, as_of)
    return con


def test_annual_invoice_across_new_year_owes_both_prices(tmp_path):
    folder = write_export(tmp_path, [], [], [contract("G", "gold", "2026-07-01")], invoices=[
        ("A-1", "G", "2026-07-01", "2026-07-01", "2027-06-30", "18588.00")])
    con = billing(folder, README_POLICY, dt.datetime(2027, 6, 30, 12, tzinfo=UTC))
    # July-December 2026: 6 x 1499.00 = 8994.00; January-June 2027: 6 x 1599.00 = 9594.00; 18588.00 in all
    assert con.execute("SELECT owed_eur, status FROM gold_reconciliation").fetchall() == [(E("18588.00"), "ok")]
    assert con.execute("SELECT year, owed_eur, invoiced_eur FROM gold_service_year").fetchall() == [
        (2026, E("8994.00"), E("8994.00")), (2027, E("9594.00"), E("9594.00"))]


def test_fee_changes_mid_month_and_term_set_fee(tmp_path):
    mid = policy_with([{"in_force_from": "2026-03-16", "tiers": {"gold": {"monthly_price": "1599.00"}}}], TERMS)
    folder = write_export(tmp_path, [], [], [contract("G", "gold", "2026-03-01"),
                                             contract("D", "gold", "2026-03-01", terms="gold-discount")])
    con = billing(folder, mid, dt.datetime(2026, 4, 15, 12, tzinfo=UTC))
    # G, March: (15 x 1499.00 + 16 x 1599.00) / 31 = 48069 / 31 = 1550.6129 -> 1550.61;
    #    April 1-15: 1599.00 x 15 / 30 = 799.50; D (its terms: 1199.00 throughout): 1199.00 + 599.50
    assert con.execute("SELECT customer_id, month, days, owed_eur FROM gold_pieces ORDER BY customer_id, month").fetchall() == [
        ("D", D(2026, 3, 1), 31, E("1199.00")), ("D", D(2026, 4, 1), 15, E("599.50")),
        ("G", D(2026, 3, 1), 31, E("1550.61")), ("G", D(2026, 4, 1), 15, E("799.50"))]


BILLING_POLICY = policy_with([{"in_force_from": "2024-06-15", "tiers": {"gold": {"monthly_price": "1599.00"}},
                               "terms": {"gold-discount": {"monthly_price": "1250.00"}}}], TERMS)


def day_fee(day, terms):
    return BILLING_POLICY.version_on(day).tier_figures("gold", terms)[1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=billing_cases())
def test_billing_matches_reference_with_versions_and_terms(tmp_path_factory, case):
    contracts, invoices, as_of = case
    contracts = [(c, t, s, e, "gold-discount" if c == "B" else None) for c, t, s, e in contracts]
    folder = write_export(
        tmp_path_factory.mktemp("bill"), [], [],
        [contract(c, t, s.isoformat(), e.isoformat() if e else "", terms or "") for c, t, s, e, terms in contracts],
        invoices=[(i, c, iss.isoformat(), s.isoformat(), e.isoformat(), f"{a:.2f}") for i, c, iss, s, e, a in invoices],
    )
    con = billing(folder, BILLING_POLICY, as_of)
    want_lines, want_years = reference(contracts, invoices, as_of.astimezone(BERLIN).date(), day_fee)
    got = [tuple(r) for r in con.execute("SELECT customer_id, invoice_id, period_start, period_end, owed_eur, "
                                          "invoiced_eur, difference_eur, status FROM gold_reconciliation").fetchall()]
    assert sorted(got, key=line_key) == want_lines
    assert [tuple(r) for r in con.execute(
        "SELECT customer_id, year, owed_eur, invoiced_eur, difference_eur, to_invoice_eur, to_credit_eur "
        "FROM gold_service_year ORDER BY customer_id, year").fetchall()] == want_years


# ---- incident_sla against the reference, with versions, terms and exclusions ----------------------
PROPERTY_POLICY = policy_with([{
    "in_force_from": "2026-03-09",
    "calendar": {"weekly_hours": {d: "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}},
    "tiers": {"gold": {"targets": {1: {"resolution": "12 business hours"}}}, "enterprise": {"monthly_incident_quota": 3}},
}], {"gold-6": {"monthly_incident_quota": 6, "targets": {1: {"first_response": "4 business hours"},
                                                         4: {"resolution": "2 business days"}}}})
PROPERTY_CONTRACTS = [
    Contract("G", "gold", dt.date(2025, 1, 1), None, "gold-6"),
    Contract("E", "enterprise", dt.date(2025, 1, 1), None),
    Contract("P", "professional", dt.date(2025, 1, 1), dt.date(2026, 12, 31)),
    Contract("U", "enterprise", dt.date(2025, 1, 1), dt.date(2026, 3, 10)),
    Contract("U", "gold", dt.date(2026, 3, 11), None),
]
COMPARED = ["tier", "terms", "first_response_severity", "resolution_severity", "first_response_at", "resolved_at",
            "first_response_business_seconds", "first_response_target_seconds", "first_response_due_at",
            "first_response_met", "resolution_business_seconds", "paused_business_seconds",
            "resolution_target_seconds", "resolution_met", "over_quota", "first_response_excluded",
            "resolution_excluded", "first_response_exclusion_reason", "resolution_exclusion_reason"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=histories(), data=st.data())
def test_incident_sla_matches_reference_with_versions_terms_exclusions(tmp_path_factory, case, data):
    tickets, events, as_of = case
    exclusions = []
    for n in range(data.draw(st.integers(0, 4))):
        t = data.draw(st.sampled_from(tickets))
        at = t.created_at + dt.timedelta(hours=data.draw(st.integers(0, 60 * 24)))
        exclusions.append(Exclusion(t.ticket_id, data.draw(st.sampled_from(["first_response", "resolution", "both"])),
                                    f"reason {n}", "approver", at))
    folder = write_export(
        tmp_path_factory.mktemp("prop"),
        [(t.ticket_id, t.customer_id, "s", t.severity, t.created_at.isoformat(), "web") for t in tickets],
        [(e.ticket_id, e.occurred_at.isoformat(), e.kind, e.actor, e.value or "") for e in events],
        [(c.customer_id, c.customer_id, c.tier, c.valid_from.isoformat(), c.valid_to.isoformat() if c.valid_to else "",
          "am@x", c.terms or "") for c in PROPERTY_CONTRACTS],
        exclusions=[(x.ticket_id, x.metric, x.reason, x.approved_by, x.approved_at.isoformat()) for x in exclusions],
    )
    con, counts = run_domain(folder, as_of, PROPERTY_POLICY)
    assert sum(c.rejected for c in counts) == 0
    got = incident_rows(con)
    expected = reference_incident_sla(tickets, events, PROPERTY_CONTRACTS, PROPERTY_POLICY, as_of, exclusions)
    assert set(got) == set(expected)
    for ticket_id, exp in expected.items():
        for column in COMPARED:
            assert got[ticket_id][column] == exp[column], (ticket_id, column)
