"""Row order carries no meaning (sla-semantics.md section 3, "Order of events").

Events of one ticket at the same instant apply in a fixed order: replies, then severity changes
(least to most severe), then status changes in lifecycle order (new, open, on_hold, pending, solved,
closed). Tickets with two different statuses or severities at one instant are listed in
`data_warnings`. Shuffling the rows of an export changes no table.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla.policy import load_policy
from tests.helpers import HEADERS, incident_rows, run_domain, write_export
from tests.reference import Contract, Event, Ticket, reference_incident_sla

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
H = 3600
POLICY = load_policy()
AS_OF = dt.datetime(2026, 10, 1, tzinfo=BERLIN)
CONTRACTS = [("COR", "Corvus AG", "gold", "2025-01-01", "", "am@vendor.example")]


def table(con, name: str) -> list[tuple]:
    """A whole table as a sorted list of rows (NULLs sort first), for order-free comparison."""
    rows = con.execute(f"SELECT * FROM {name}").fetchall()
    return sorted(rows, key=lambda r: tuple((v is not None, str(type(v)), v) for v in r))


# --------------------------------------------------------------------------------------------
# Two status changes at one instant (the example).
#
# O1: gold, severity 2, created Tue 2026-09-15 09:00 (+02:00). Agent reply 10:00. At 12:00 the
# agent sets solved and the customer sets open: same second, no order in the data.
# Lifecycle order applies open, then solved, so the ticket ends solved at 12:00 in both row orders:
#   first response 10:00 -> 1 business hour (gold sev 2 target 8 h: met)
#   resolved 12:00 -> 09:00-12:00 = 3 business hours running, 0 paused
#   (gold sev 2 resolution target 3 business days = 24 h: met; enterprise's 7 days would be met too)
# File order would have made it end "open" (unresolved) when the customer's row comes last.
O1_TICKET = [("O1", "COR", "same-second status", 2, "2026-09-15T09:00:00+02:00", "email")]
O1_EVENTS = [
    ("O1", "2026-09-15T10:00:00+02:00", "reply", "agent", ""),
    ("O1", "2026-09-15T12:00:00+02:00", "status", "agent", "solved"),
    ("O1", "2026-09-15T12:00:00+02:00", "status", "customer", "open"),
]
O1_WARNING = ("O1", "status changes 'open' and 'solved' at 2026-09-15 12:00:00+02 have no order; "
                    "applied open, then solved (lifecycle order: the ticket ends solved)")


@pytest.mark.parametrize("events", [O1_EVENTS, [O1_EVENTS[0], O1_EVENTS[2], O1_EVENTS[1]]],
                         ids=["solved-row-first", "open-row-first"])
def test_same_instant_statuses_end_in_the_furthest_state(tmp_path, events):
    con, counts = run_domain(write_export(tmp_path, O1_TICKET, events, CONTRACTS), AS_OF)
    assert sum(c.rejected for c in counts) == 0
    row = incident_rows(con)["O1"]
    assert row["current_status"] == "solved"
    assert row["resolved_at"] == dt.datetime(2026, 9, 15, 10, tzinfo=UTC)      # 12:00 +02:00
    assert row["first_response_business_seconds"] == 1 * H                      # 09:00 -> 10:00
    assert row["resolution_business_seconds"] == 3 * H                           # 09:00 -> 12:00
    assert row["paused_business_seconds"] == 0
    assert row["resolution_target_seconds"] == 24 * H                            # 3 business days x 8 h
    assert (row["first_response_met"], row["resolution_met"]) == (True, True)
    assert con.execute("SELECT * FROM data_warnings").fetchall() == [O1_WARNING]
    # the clock: new from 09:00 running until the resolution at 12:00 (open lasted no time)
    segs = con.execute("SELECT seq, status, state, business_seconds FROM incident_clock_segments "
                       "WHERE ticket_id = 'O1' ORDER BY seq").fetchall()
    assert segs == [(0, "new", "running", 3 * H)]


# --------------------------------------------------------------------------------------------
# Two severity changes at one instant.
#
# S1: gold, created severity 2 on Tue 2026-09-15 09:00 (+02:00). At 10:00 one row sets severity 3
# and another severity 1. Least to most severe: 3, then 1, so severity 1 is in effect afterwards.
# Agent reply 11:00, solved 13:00.
#   first response 2 business hours, severity 1: gold target 8 h -> met
#   resolution 4 business hours, severity 1: gold target 16 h (not sev 3's 7 days = 56 h) -> met
S1_TICKET = [("S1", "COR", "same-second severity", 2, "2026-09-15T09:00:00+02:00", "phone")]
S1_EVENTS = [
    ("S1", "2026-09-15T10:00:00+02:00", "severity", "agent", "3"),
    ("S1", "2026-09-15T10:00:00+02:00", "severity", "manager", "1"),
    ("S1", "2026-09-15T11:00:00+02:00", "reply", "agent", ""),
    ("S1", "2026-09-15T13:00:00+02:00", "status", "agent", "solved"),
]


@pytest.mark.parametrize("events", [S1_EVENTS, [S1_EVENTS[1], S1_EVENTS[0], *S1_EVENTS[2:]]],
                         ids=["sev3-row-first", "sev1-row-first"])
def test_same_instant_severities_leave_the_most_severe(tmp_path, events):
    con, _ = run_domain(write_export(tmp_path, S1_TICKET, events, CONTRACTS), AS_OF)
    row = incident_rows(con)["S1"]
    assert (row["first_response_severity"], row["resolution_severity"]) == (1, 1)
    assert row["first_response_target_seconds"] == 8 * H
    assert row["resolution_target_seconds"] == 16 * H
    assert row["first_response_business_seconds"] == 2 * H
    assert row["resolution_business_seconds"] == 4 * H
    assert (row["first_response_met"], row["resolution_met"]) == (True, True)
    assert con.execute("SELECT * FROM data_warnings").fetchall() == [
        ("S1", "severity changes '3' and '1' at 2026-09-15 10:00:00+02 have no order; "
               "applied 3, then 1 (least to most severe: severity 1 applies)")]


def test_kinds_at_one_instant_and_equal_values_need_no_warning(tmp_path):
    # W1: gold sev 3, created Mon 2026-09-14 09:00 (+02:00). At 11:00: a reply, a severity change to 2
    # and two actors setting the same status 'solved': one value per kind, so nothing is ambiguous.
    # Replies apply first, then severity, then status: at 11:00 the response and the resolution both
    # stop with severity 2 in effect (gold sev 2: 8 h / 24 h): 2 h each, both met. No warning.
    # A conflict after the cut-off (W2, 2026-10-02) does not exist yet: no warning either.
    tickets = [("W1", "COR", "one per kind", 3, "2026-09-14T09:00:00+02:00", "web"),
               ("W2", "COR", "later conflict", 3, "2026-09-14T09:00:00+02:00", "web")]
    events = [("W1", "2026-09-14T11:00:00+02:00", "status", "customer", "solved"),
              ("W1", "2026-09-14T11:00:00+02:00", "severity", "agent", "2"),
              ("W1", "2026-09-14T11:00:00+02:00", "status", "agent", "solved"),
              ("W1", "2026-09-14T11:00:00+02:00", "reply", "agent", ""),
              ("W2", "2026-10-02T11:00:00+02:00", "status", "agent", "pending"),
              ("W2", "2026-10-02T11:00:00+02:00", "status", "agent", "on_hold")]
    con, _ = run_domain(write_export(tmp_path, tickets, events, CONTRACTS), AS_OF)
    row = incident_rows(con)["W1"]
    assert (row["first_response_severity"], row["resolution_severity"]) == (2, 2)
    assert (row["first_response_business_seconds"], row["resolution_business_seconds"]) == (2 * H, 2 * H)
    assert (row["first_response_met"], row["resolution_met"]) == (True, True)
    assert con.execute("SELECT count(*) FROM data_warnings").fetchall() == [(0,)]
    # the same export with a cut-off after W2's conflict: on_hold, then pending (pending wins)
    con, _ = run_domain(write_export(tmp_path / "later", tickets, events, CONTRACTS),
                        dt.datetime(2026, 10, 3, tzinfo=BERLIN))
    assert incident_rows(con)["W2"]["current_status"] == "pending"
    assert [r[0] for r in con.execute("SELECT * FROM data_warnings").fetchall()] == ["W2"]


def test_reference_applies_the_same_order():
    # O1 with both row orders through the independent reference: solved at 12:00, 3 h, met.
    ticket = Ticket("O1", "COR", 2, dt.datetime(2026, 9, 15, 7, tzinfo=UTC))
    for order in ([0, 1, 2], [0, 2, 1]):
        events = [Event(e[0], dt.datetime.fromisoformat(e[1]), e[2], e[3], e[4] or None, pos)
                  for pos, e in enumerate(O1_EVENTS[k] for k in order)]
        ref = reference_incident_sla([ticket], events, [Contract("COR", "gold", dt.date(2025, 1, 1), None)],
                                     POLICY, AS_OF)["O1"]
        assert ref["resolved_at"] == dt.datetime(2026, 9, 15, 10, tzinfo=UTC)
        assert (ref["resolution_business_seconds"], ref["resolution_met"]) == (3 * H, True)


# --------------------------------------------------------------------------------------------
# Rows the import never accepts (written into ticket_events by hand, or statuses a later policy no
# longer ranks) still apply in the documented order: ties of kind and rank break on actor, then
# value. incident_sla.sql keeps that with a small tie table instead of text sort keys (issue 18).
U1_TICKET = [("U1", "COR", "unranked statuses", 2, "2026-09-15T09:00:00+02:00", "email")]
U1_ROWS = [  # (occurred_at, kind, actor, value): at 11:00 two statuses the policy does not rank
    ("2026-09-15T10:00:00+02:00", "status", "agent", "open"),
    ("2026-09-15T11:00:00+02:00", "status", "zed", "waiting"),
    ("2026-09-15T11:00:00+02:00", "status", "amy", "triage"),
    ("2026-09-15T11:00:00+02:00", "status", "amy", "blocked"),
    ("2026-09-15T11:00:00+02:00", "severity", "zed", "02"),
    ("2026-09-15T11:00:00+02:00", "severity", "amy", "2"),
]


@pytest.mark.parametrize("order", [0, 1, 2])
def test_rows_the_import_would_reject_still_break_ties_on_actor_then_value(tmp_path, order):
    import duckdb

    from connectors.csv_export import CsvExportSource
    from sla.steps import compute_metrics, import_source

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    import_source(con, CsvExportSource(write_export(tmp_path, U1_TICKET, [], CONTRACTS)), POLICY)
    rows = list(U1_ROWS)
    random.Random(order).shuffle(rows)
    con.executemany("INSERT INTO ticket_events VALUES ('U1', CAST(? AS TIMESTAMPTZ), ?, ?, ?, ?)",
                    [(*r, 100 + i) for i, r in enumerate(rows)])
    compute_metrics(con, POLICY, AS_OF)
    segs = con.execute("SELECT seq, status FROM incident_clock_segments WHERE ticket_id = 'U1' ORDER BY seq").fetchall()
    # 11:00: severities first, then statuses; unranked ones by actor (amy before zed), then value
    # (blocked before triage); seq counts every event, the severities included
    assert segs == [(0, "new"), (1, "open"), (4, "blocked"), (5, "triage"), (6, "waiting")]
    row = incident_rows(con)["U1"]
    assert row["current_status"] == "waiting" and row["resolved_at"] is None


# --------------------------------------------------------------------------------------------
# Property: shuffling the rows of the three CSV files changes no table.
STATUSES = ["new", "open", "pending", "on_hold", "solved", "closed"]
START = dt.datetime(2026, 3, 20, 8, tzinfo=UTC)
TABLES = ["incident_sla", "incident_clock_segments", "monthly_sla", "monthly_quota", "data_warnings"]
PROPERTY_CONTRACTS = [
    ("G", "Gold", "gold", "2025-01-01", "", "am@x"),
    ("E", "Ent", "enterprise", "2025-01-01", "2026-04-08", "am@x"),
    ("E", "Ent", "gold", "2026-04-09", "", "am@x"),
    ("P", "Pro", "professional", "2026-04-01", "", "am@x"),   # P's March incidents have no contract
]


@st.composite
def exports(draw):
    """Tickets and events on a coarse time grid (hours), so many events share an instant."""
    tickets, events = [], []
    for i in range(draw(st.integers(1, 10))):
        created = START + dt.timedelta(hours=draw(st.integers(0, 24 * 25)))
        tickets.append((f"T{i}", draw(st.sampled_from(["G", "E", "P", "X"])), "s", draw(st.integers(1, 4)),
                        created.isoformat(), "web"))
        t = created
        for _ in range(draw(st.integers(0, 10))):
            t += dt.timedelta(hours=draw(st.sampled_from([0, 0, 0, 1, 2, 24])))
            kind = draw(st.sampled_from(["reply", "status", "status", "severity"]))
            actor = draw(st.sampled_from(["agent", "customer", "system"])) if kind == "reply" \
                else draw(st.sampled_from(["a1", "a2"]))
            value = (draw(st.sampled_from(STATUSES)) if kind == "status"
                     else str(draw(st.integers(1, 4))) if kind == "severity" else "")
            # the same instant written in another offset now and then: still the same instant
            stamp = t.astimezone(BERLIN).isoformat() if draw(st.booleans()) else t.isoformat()
            events.append((f"T{i}", stamp, kind, actor, value))
        if events and draw(st.booleans()):
            events.append(draw(st.sampled_from(events)))       # an identical duplicate row counts once
    as_of = START + dt.timedelta(hours=draw(st.integers(24, 24 * 40)))
    seed = draw(st.integers(0, 2**32 - 1))
    return tickets, events, as_of, seed


def _all_tables(folder, as_of):
    con, counts = run_domain(folder, as_of)
    assert sum(c.rejected for c in counts) == 0
    return {name: table(con, name) for name in TABLES}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(case=exports())
def test_shuffled_rows_give_identical_tables(tmp_path_factory, case):
    tickets, events, as_of, seed = case
    folder = write_export(tmp_path_factory.mktemp("ordered"), tickets, events, PROPERTY_CONTRACTS)
    rng = random.Random(seed)
    shuffled = tmp_path_factory.mktemp("shuffled")
    for name in ("tickets.csv", "ticket_events.csv", "contracts.csv"):
        with (folder / name).open(newline="", encoding="utf-8") as fh:
            header, *rows = list(csv.reader(fh))
        assert header == HEADERS[name]
        rng.shuffle(rows)
        with (shuffled / name).open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([header, *rows])
    assert _all_tables(folder, as_of) == _all_tables(shuffled, as_of)
