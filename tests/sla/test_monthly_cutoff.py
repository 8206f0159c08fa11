"""Monthly figures are recomputed for every month on every run and carry the run's cut-off
(sla-semantics.md section 4): no table mixes figures of two cut-offs."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

import duckdb

from connectors.csv_export import CsvExportSource
from sla.policy import load_policy
from sla.steps import compute_metrics, compute_month, import_source, month_slice_counts
from tests.helpers import write_export

BERLIN = ZoneInfo("Europe/Berlin")
POLICY = load_policy()
FIRST_CUTOFF = dt.datetime(2026, 2, 27, 12, tzinfo=BERLIN)
SECOND_CUTOFF = dt.datetime(2026, 3, 10, 12, tzinfo=BERLIN)

CONTRACTS = [("G", "Gold GmbH", "gold", "2025-01-01", "", "am@vendor.example")]
TICKETS = [
    ("F1", "G", "pending at the first cut-off", 2, "2026-02-27T09:00:00+01:00", "web"),
    ("F2", "G", "february, already solved", 1, "2026-02-26T09:00:00+01:00", "web"),
    ("M1", "G", "march", 3, "2026-03-02T09:00:00+01:00", "web"),
]
EVENTS = [
    ("F1", "2026-02-27T10:00:00+01:00", "reply", "agent", ""),
    ("F1", "2026-03-02T10:00:00+01:00", "status", "agent", "solved"),
    ("F2", "2026-02-26T09:30:00+01:00", "reply", "agent", ""),
    ("F2", "2026-02-26T11:00:00+01:00", "status", "agent", "solved"),
    ("M1", "2026-03-02T10:00:00+01:00", "reply", "agent", ""),
]
# F1 (gold sev 2, created Fri 27 Feb 09:00): at the first cut-off (Fri 12:00) it is unresolved with
# 3 business hours running (target 3 business days = 24 h): resolution pending. Solved Mon 2 Mar 10:00:
# Fri 09:00-17:00 (8 h) + Mon 09:00-10:00 (1 h) = 9 h <= 24 h: met at the second cut-off.
# F2 is solved in 2 h (gold sev 1, 16 h): met at both cut-offs. M1 exists only at the second.


def recount(con) -> tuple[dict, dict]:
    """monthly_sla / monthly_quota counts recomputed in Python from incident_sla."""
    sla: dict = defaultdict(lambda: [0, 0, 0, 0, 0])
    quota: dict = defaultdict(lambda: [0, 0, 0])
    cur = con.execute("SELECT * FROM incident_sla")
    names = [d[0] for d in cur.description]
    for r in (dict(zip(names, row)) for row in cur.fetchall()):
        for metric in ("first_response", "resolution"):
            met, target = r[f"{metric}_met"], r[f"{metric}_target_seconds"]
            c = sla[(r["month"], r["customer_id"], r["tier"], r[f"{metric}_severity"], metric)]
            c[0] += 1
            c[1] += met is True
            c[2] += met is False
            c[3] += met is None and target is not None
            c[4] += target is None
        q = quota[(r["month"], r["customer_id"], r["tier"])]
        q[0] += 1
        q[1] += r["over_quota"] is True
        q[2] += r["resolved_at"] is None
    return {k: tuple(v) for k, v in sla.items()}, {k: tuple(v) for k, v in quota.items()}


def test_two_runs_leave_every_month_at_the_second_cutoff(tmp_path):
    folder = write_export(tmp_path / "export", TICKETS, EVENTS, CONTRACTS)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    import_source(con, CsvExportSource(folder), POLICY)

    # run 1: the February partition
    compute_metrics(con, POLICY, FIRST_CUTOFF)
    assert compute_month(con, "2026-02") == 1
    assert con.execute("SELECT pending FROM monthly_sla WHERE month = '2026-02' AND metric = 'resolution' "
                       "AND severity = 2").fetchall() == [(1,)]
    # run 2: a later cut-off, and only the March partition asked for
    compute_metrics(con, POLICY, SECOND_CUTOFF)
    assert compute_month(con, "2026-03") == 1
    assert month_slice_counts(con, "2026-03") == {
        "monthly_sla_rows": 2, "monthly_quota_rows": 1, "as_of": SECOND_CUTOFF}

    # February shows F1 met, not the first run's pending
    assert con.execute("SELECT met, pending FROM monthly_sla WHERE month = '2026-02' AND metric = 'resolution' "
                       "AND severity = 2").fetchall() == [(1, 0)]
    sla, quota = recount(con)
    got_sla = {r[:5]: r[5:] for r in con.execute(
        "SELECT month, customer_id, tier, severity, metric, incidents, met, breached, pending, no_target "
        "FROM monthly_sla").fetchall()}
    got_quota = {r[:3]: r[3:] for r in con.execute(
        "SELECT month, customer_id, tier, incidents, over_quota, open_at_cutoff FROM monthly_quota").fetchall()}
    assert got_sla == sla and got_quota == quota
    assert {m for m, *_ in sla} == {"2026-02", "2026-03"}
    for name in ("monthly_sla", "monthly_quota"):
        assert con.execute(f"SELECT DISTINCT as_of FROM {name}").fetchall() == [(SECOND_CUTOFF,)]


def test_monthly_tables_of_an_older_cutoff_are_rebuilt_by_the_slice(tmp_path):
    """A warehouse whose monthly tables predate incident_sla (written by an older version, without
    as_of) gets them rebuilt for every month before a slice is read."""
    folder = write_export(tmp_path / "export", TICKETS, EVENTS, CONTRACTS)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    import_source(con, CsvExportSource(folder), POLICY)
    compute_metrics(con, POLICY, SECOND_CUTOFF)
    con.execute("CREATE OR REPLACE TABLE monthly_sla AS SELECT * EXCLUDE (as_of) FROM monthly_sla_view "
                "WHERE month = '2026-03'")
    assert compute_month(con, "2026-03") == 1
    assert con.execute("SELECT DISTINCT month, as_of FROM monthly_sla ORDER BY month").fetchall() == [
        ("2026-02", SECOND_CUTOFF), ("2026-03", SECOND_CUTOFF)]
