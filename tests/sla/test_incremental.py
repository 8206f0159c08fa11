"""Incremental metrics (issue 18): after any change to the input, an incremental metrics run leaves
every table it writes identical, row for row, to a full recompute of the same input; and it
recomputes only what can have changed, or says why it recomputed everything."""

from __future__ import annotations

import copy
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.csv_export import CsvExportSource
from sla.metrics import compute_incident_sla
from sla.policy import load_policy
from sla.steps import compute_metrics, import_source, transaction
from tests.helpers import write_export
from tests.sla.test_contract_terms import PROPERTY_POLICY
from tests.sla.test_incident_sla import histories

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
TABLES = ("incident_sla", "incident_clock_segments", "incident_exclusions", "data_warnings",
          "monthly_sla", "monthly_quota")
CUSTOMERS = ("G", "E", "P", "X", "U")
#: alternative contract sets per customer, so a change set can swap one (tier, dates, term set)
CONTRACT_CHOICES = {
    "G": [[("gold", "2025-01-01", "", "gold-6")], [("gold", "2025-01-01", "", "")],
          [("enterprise", "2025-01-01", "2026-03-04", ""), ("gold", "2026-03-05", "", "gold-6")]],
    "E": [[("enterprise", "2025-01-01", "", "")], [("professional", "2025-01-01", "", "")]],
    "P": [[("professional", "2025-01-01", "2026-12-31", "")], [("professional", "2025-01-01", "2026-03-01", "")]],
    "X": [[], [("gold", "2026-03-01", "", "")]],
    "U": [[("enterprise", "2025-01-01", "2026-03-10", ""), ("gold", "2026-03-11", "", "")],
          [("enterprise", "2025-01-01", "2026-02-27", ""), ("gold", "2026-02-28", "", "gold-6")]],
}
STATUSES = ["new", "open", "pending", "on_hold", "solved", "closed"]


@dataclass
class Export:
    """The canonical export as a model that change sets edit."""

    tickets: dict = field(default_factory=dict)      # id -> [customer, severity, created_at]
    events: list = field(default_factory=list)       # (id, occurred_at, kind, actor, value)
    contracts: dict = field(default_factory=dict)    # customer -> index into CONTRACT_CHOICES
    exclusions: list = field(default_factory=list)   # (id, metric, reason, approved_by, approved_at)

    def write(self, folder: Path) -> Path:
        return write_export(
            folder,
            [(t, c, "s", sev, created.isoformat(), "web") for t, (c, sev, created) in self.tickets.items()],
            [(t, at.isoformat(), kind, actor, value or "") for t, at, kind, actor, value in self.events],
            [(c, c, tier, start, end, "am@x", terms) for c, i in self.contracts.items()
             for tier, start, end, terms in CONTRACT_CHOICES[c][i]],
            exclusions=[(t, m, r, a, at.isoformat()) for t, m, r, a, at in self.exclusions],
        )


def snapshot(con) -> dict:
    out = {}
    for table in TABLES:
        cur = con.execute(f"SELECT * FROM {table} ORDER BY ALL")
        out[table] = ([d[0] for d in cur.description], cur.fetchall())
    return out


def connect():
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    return con


def full_snapshot(folder: Path, policy, as_of) -> dict:
    con = connect()
    import_source(con, CsvExportSource(folder), policy)
    run = compute_metrics(con, policy, as_of)
    assert run.mode == "full"
    return snapshot(con)


def incremental(con, policy, as_of, **kw):
    with transaction(con):
        return compute_incident_sla(con, policy, as_of, **kw)


def assert_same(got: dict, want: dict) -> None:
    for table in TABLES:
        assert got[table][0] == want[table][0], table
        assert got[table][1] == want[table][1], table


# ---- change sets ---------------------------------------------------------------------------------
@st.composite
def change_sets(draw, export: Export, as_of: dt.datetime, tag: str):
    """Edit `export` in place with a random change set; returns the new cut-off."""
    ids = sorted(export.tickets)
    start = dt.datetime(2026, 2, 20, tzinfo=UTC)
    # removed tickets (with their events and exclusions)
    for t in draw(st.lists(st.sampled_from(ids), max_size=2, unique=True)) if ids else []:
        del export.tickets[t]
        export.events = [e for e in export.events if e[0] != t]
        export.exclusions = [x for x in export.exclusions if x[0] != t]
    ids = sorted(export.tickets)
    # modified tickets: severity, creation time (within its first event) or customer
    for t in draw(st.lists(st.sampled_from(ids), max_size=2, unique=True)) if ids else []:
        row = export.tickets[t]
        what = draw(st.sampled_from(["severity", "customer", "created"]))
        if what == "severity":
            row[1] = draw(st.integers(1, 4))
        elif what == "customer":
            row[0] = draw(st.sampled_from(CUSTOMERS))
        else:
            first = min([e[1] for e in export.events if e[0] == t], default=row[2] + dt.timedelta(days=3))
            row[2] = row[2] - dt.timedelta(seconds=draw(st.integers(0, 3 * 86400)))
            row[2] = min(row[2], first)
    # new events on existing tickets (some after the cut-off)
    for t in draw(st.lists(st.sampled_from(ids), max_size=4)) if ids else []:
        last = max([e[1] for e in export.events if e[0] == t], default=export.tickets[t][2])
        at = last + dt.timedelta(seconds=draw(st.sampled_from([0, 3600, 86400]) | st.integers(0, 6 * 86400)))
        export.events.append(_event(draw, t, at))
    # new tickets with events
    for i in range(draw(st.integers(0, 3))):
        t = f"N{tag}{i}"
        created = start + dt.timedelta(seconds=draw(st.integers(0, 45 * 86400)))
        export.tickets[t] = [draw(st.sampled_from(CUSTOMERS)), draw(st.integers(1, 4)), created]
        at = created
        for _ in range(draw(st.integers(0, 4))):
            at = at + dt.timedelta(seconds=draw(st.integers(0, 3 * 86400)))
            export.events.append(_event(draw, t, at))
    # contracts: another choice for a customer
    if draw(st.booleans()):
        c = draw(st.sampled_from(CUSTOMERS))
        export.contracts[c] = draw(st.integers(0, len(CONTRACT_CHOICES[c]) - 1))
    # exclusions: approve one (maybe after the cut-off), withdraw one
    ids = sorted(export.tickets)
    if ids and draw(st.booleans()):
        t = draw(st.sampled_from(ids))
        at = export.tickets[t][2] + dt.timedelta(seconds=draw(st.integers(0, 20 * 86400)))
        export.exclusions.append((t, draw(st.sampled_from(["first_response", "resolution", "both"])),
                                  f"reason {tag}", "approver", at))
    if export.exclusions and draw(st.booleans()):
        export.exclusions.pop(draw(st.integers(0, len(export.exclusions) - 1)))
    # the cut-off: unchanged, earlier or later
    if draw(st.booleans()):
        as_of = as_of + dt.timedelta(seconds=draw(st.integers(-10 * 86400, 20 * 86400)))
    return as_of


def _event(draw, t, at):
    kind = draw(st.sampled_from(["reply", "status", "status", "severity"]))
    actor = draw(st.sampled_from(["agent", "customer", "system"])) if kind == "reply" else "someone"
    value = (draw(st.sampled_from(STATUSES)) if kind == "status"
             else str(draw(st.integers(1, 4))) if kind == "severity" else None)
    return (t, at, kind, actor, value)


def initial_export(draw) -> tuple[Export, dt.datetime]:
    tickets, events, as_of = draw(histories())
    export = Export(
        tickets={t.ticket_id: [t.customer_id, t.severity, t.created_at] for t in tickets},
        events=[(e.ticket_id, e.occurred_at, e.kind, e.actor, e.value) for e in events],
        contracts={c: draw(st.integers(0, len(CONTRACT_CHOICES[c]) - 1)) for c in CUSTOMERS},
    )
    for t in draw(st.lists(st.sampled_from(sorted(export.tickets)), max_size=2)):
        export.exclusions.append((t, draw(st.sampled_from(["first_response", "resolution", "both"])), "initial",
                                  "approver", export.tickets[t][2] + dt.timedelta(days=draw(st.integers(0, 9)))))
    return export, as_of


@settings(max_examples=int(os.environ.get("SLA_INCR_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_incremental_equals_full_recompute(tmp_path_factory, data):
    """Random history -> full; then rounds of random change sets (one or two imports each) ->
    incremental; after every round each table equals a fresh full recompute, row for row."""
    policy = PROPERTY_POLICY
    export, as_of = initial_export(data.draw)
    folder = tmp_path_factory.mktemp("incr")
    con = connect()
    import_source(con, CsvExportSource(export.write(folder / "0")), policy)
    assert compute_metrics(con, policy, as_of).mode == "full"
    for r in range(data.draw(st.integers(1, 3), label="rounds")):
        for i in range(data.draw(st.integers(1, 2), label="imports")):
            as_of = data.draw(change_sets(export, as_of, f"{r}{i}"))
            last = export.write(folder / f"{r}-{i}")
            import_source(con, CsvExportSource(last), policy)
        run = incremental(con, policy, as_of, full_share=float("inf"))
        assert run.mode == "incremental", run.reason
        assert_same(snapshot(con), full_snapshot(last, policy, as_of))


# ---- hand-made cases: what is recomputed, and when everything is ------------------------------------
AS_OF = dt.datetime(2026, 4, 1, tzinfo=BERLIN)
POLICY = load_policy()


def base_export() -> Export:
    def at(*args):
        return dt.datetime(*args, tzinfo=BERLIN).astimezone(UTC)

    export = Export(contracts={c: 0 for c in CUSTOMERS})
    # 40 resolved incidents of customer E over February and March, one open in March for G
    for i in range(40):
        created = at(2026, 2 + i // 20, 2 + (i % 20), 10)
        export.tickets[f"T{i:02d}"] = ["E", 3, created]
        export.events += [(f"T{i:02d}", created + dt.timedelta(hours=1), "reply", "agent", None),
                          (f"T{i:02d}", created + dt.timedelta(hours=2), "status", "a", "solved")]
    export.tickets["OPEN"] = ["G", 2, at(2026, 3, 30, 9)]
    return export


@pytest.fixture
def warehouse(tmp_path):
    export = base_export()
    con = connect()
    import_source(con, CsvExportSource(export.write(tmp_path / "0")), POLICY)
    run = compute_metrics(con, POLICY, AS_OF)
    assert (run.mode, run.reason) == ("full", "no earlier computation to build on")
    return con, export, tmp_path


def reimport(con, export, folder):
    import_source(con, CsvExportSource(export.write(folder)), POLICY)
    return folder


def test_nothing_changed_recomputes_nothing(warehouse):
    con, export, tmp = warehouse
    before = snapshot(con)
    reimport(con, export, tmp / "1")
    run = compute_metrics(con, POLICY, AS_OF)
    assert (run.mode, run.recomputed, run.reranked, run.incidents) == ("incremental", 0, 0, 41)
    assert run.describe() == "incremental: recomputed 0 of 41 incidents"
    assert_same(snapshot(con), before)


def test_a_new_event_recomputes_its_incident(warehouse):
    """A reopening of T25: its own figures change, no other incident's (its quota rank stays)."""
    con, export, tmp = warehouse
    export.events.append(("T25", export.tickets["T25"][2] + dt.timedelta(hours=5), "status", "c", "open"))
    last = reimport(con, export, tmp / "1")
    run = compute_metrics(con, POLICY, AS_OF)
    assert (run.mode, run.recomputed) == ("incremental", 1)
    assert con.execute("SELECT resolved_at FROM incident_sla WHERE ticket_id = 'T25'").fetchall() == [(None,)]
    assert_same(snapshot(con), full_snapshot(last, POLICY, AS_OF))


def test_a_removed_ticket_moves_the_quota_of_its_month(warehouse):
    con, export, tmp = warehouse
    assert con.execute("SELECT over_quota FROM incident_sla WHERE ticket_id = 'T02'").fetchall() == [(True,)]
    del export.tickets["T00"], export.tickets["T01"]  # E has 2 included incidents a month
    export.events = [e for e in export.events if e[0] not in ("T00", "T01")]
    last = reimport(con, export, tmp / "1")
    run = incremental(con, POLICY, AS_OF, full_share=float("inf"))
    # T02..T19 move up two ranks and nothing else of theirs changed: re-ranked, not recomputed
    assert (run.mode, run.recomputed, run.reranked, run.incidents) == ("incremental", 0, 18, 39)
    assert run.describe() == "incremental: recomputed 0 and re-ranked 18 of 39 incidents"
    assert con.execute("SELECT over_quota FROM incident_sla WHERE ticket_id = 'T02'").fetchall() == [(False,)]
    assert_same(snapshot(con), full_snapshot(last, POLICY, AS_OF))


def test_a_later_cutoff_recomputes_running_incidents(warehouse):
    """Only OPEN runs at the old cut-off; nothing else happened in between."""
    con, export, tmp = warehouse
    later = AS_OF + dt.timedelta(days=3)
    run = compute_metrics(con, POLICY, later)
    assert (run.mode, run.recomputed) == ("incremental", 1)
    assert con.execute("SELECT DISTINCT as_of FROM incident_sla").fetchall() == [(later,)]
    assert_same(snapshot(con), full_snapshot(export.write(tmp / "1"), POLICY, later))


def test_a_contract_change_recomputes_the_customer(warehouse):
    con, export, tmp = warehouse
    export.contracts["E"] = 1  # professional now
    last = reimport(con, export, tmp / "1")
    run = incremental(con, POLICY, AS_OF, full_share=float("inf"))
    assert (run.mode, run.recomputed) == ("incremental", 40)
    assert_same(snapshot(con), full_snapshot(last, POLICY, AS_OF))


def test_two_imports_before_one_metrics_run_accumulate(warehouse):
    """A new incident in February, then a reopening in March: NEW, the February incidents ranked
    after it (T05..T19: same creation time as T05, and 'NEW' sorts before 'T05') and T25."""
    con, export, tmp = warehouse
    export.tickets["NEW"] = ["E", 2, export.tickets["T05"][2]]
    reimport(con, export, tmp / "1")
    export.events.append(("T25", export.tickets["T25"][2] + dt.timedelta(hours=5), "status", "c", "open"))
    last = reimport(con, export, tmp / "2")
    run = incremental(con, POLICY, AS_OF, full_share=float("inf"))
    assert (run.mode, run.recomputed, run.reranked) == ("incremental", 2, 15)  # NEW, T25; T05..T19
    assert_same(snapshot(con), full_snapshot(last, POLICY, AS_OF))


@pytest.mark.parametrize("change, reason", [
    ("full", "--full"),
    ("policy", "the SLA policy changed"),
    ("tickets", "the input tables were changed outside the import"),
    ("output", "incident_sla was changed outside the metrics step"),
    ("share", "41 of 41 incidents to recompute: a full recompute is as fast"),
])
def test_full_recompute_and_why(warehouse, change, reason):
    con, export, tmp = warehouse
    policy, kw = POLICY, {}
    if change == "full":
        kw["full"] = True
    elif change == "policy":
        policy = copy.deepcopy(PROPERTY_POLICY)
    elif change == "tickets":
        con.execute("DELETE FROM tickets WHERE ticket_id = 'T00'")
    elif change == "output":
        con.execute("DELETE FROM incident_sla WHERE ticket_id = 'T00'")
    elif change == "share":
        export.contracts = {c: 1 if c in ("E", "G") else 0 for c in CUSTOMERS}
        reimport(con, export, tmp / "1")
    run = incremental(con, policy, AS_OF, **kw)
    assert (run.mode, run.reason) == ("full", reason)
    assert run.describe().startswith(f"full recompute of {run.incidents} incidents (")
    # and the next run builds on it
    assert incremental(con, policy, AS_OF).mode == "incremental"
