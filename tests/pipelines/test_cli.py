"""The `sla` command as users run it: exit codes, one-line errors, progress and the summary."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from tests.helpers import write_export
from tests.reports.conftest import pdf_text, squash

AS_OF = "2026-04-02T12:00:00+02:00"


def sla(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def export(tmp_path):
    return write_export(tmp_path / "export",
                        [("T1", "C1", "<b>hi</b>", 1, "2026-03-02T10:00:00+01:00", "web")],
                        [("T1", "2026-03-02T11:00:00+01:00", "reply", "agent", "")],
                        [("C1", "Acme", "gold", "2025-01-01", "", "am@vendor.example")])


def test_run_prints_summary_and_output_locations(export, tmp_path):
    r = sla("run", "--export-dir", str(export), "--db", str(tmp_path / "wh.duckdb"), "--out", str(tmp_path / "out"),
            "--as-of", AS_OF)
    assert r.returncode == 0, r.stderr
    assert "reporting month 2026-03" in r.stdout
    assert "first response 100.0 % compliant (1 met, 0 breached)" in r.stdout
    assert f"warehouse: {tmp_path / 'wh.duckdb'}" in r.stdout
    assert "[1/" in r.stderr  # progress


def test_metrics_are_incremental_after_the_first_run_and_full_on_request(export, tmp_path):
    """The summary says how the metrics step computed: everything on a new warehouse, then only
    what changed (here nothing), and everything again with --full."""
    args = ["run", "--export-dir", str(export), "--db", str(tmp_path / "wh.duckdb"), "--out", str(tmp_path / "out"),
            "--as-of", AS_OF]
    lines = []
    for extra in ([], [], ["--full"]):
        r = sla(*args, *extra)
        assert r.returncode == 0, r.stderr
        lines.append(next(line.strip() for line in r.stdout.splitlines() if line.strip().startswith("metrics:")))
    assert lines == ["metrics: full recompute of 1 incidents (no earlier computation to build on)",
                     "metrics: incremental: recomputed 0 of 1 incidents",
                     "metrics: full recompute of 1 incidents (--full)"]


def test_missing_export_folder_is_one_line(tmp_path):
    r = sla("run", "--export-dir", str(tmp_path / "nope"), "--db", str(tmp_path / "wh.duckdb"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"sla: error: export folder not found: {tmp_path / 'nope'}"


def test_bad_policy_names_the_field(export, tmp_path):
    policy = Path("config/sla-policy.yaml").read_text().replace("resolution: 3 business days", "resolution: 3 busines days")
    (tmp_path / "policy.yaml").write_text(policy)
    r = sla("run", "--export-dir", str(export), "--db", str(tmp_path / "wh.duckdb"), "--policy", str(tmp_path / "policy.yaml"))
    assert r.returncode == 2
    assert "tiers.gold.targets.2.resolution: cannot read '3 busines days'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_as_of_without_offset_is_refused(export, tmp_path):
    r = sla("run", "--export-dir", str(export), "--db", str(tmp_path / "wh.duckdb"), "--as-of", "2026-04-01T00:00:00")
    assert r.returncode == 2 and "has no UTC offset" in r.stderr


def test_busy_database_fails_fast_and_clearly(export, tmp_path):
    db = tmp_path / "wh.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db)!r}); con.execute('CREATE TABLE x (i INT)')
        print('locked', flush=True); time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        r = sla("run", "--export-dir", str(export), "--db", str(db), "--as-of", AS_OF)
        assert r.returncode == 2
        assert "is busy" in r.stderr
        assert time.monotonic() - started < 30
    finally:
        holder.kill()


def test_demo_runs_end_to_end(tmp_path):
    r = sla("demo", "--customers", "12", "--months", "2", "--seed", "5", "--export-dir", str(tmp_path / "export"),
            "--db", str(tmp_path / "wh.duckdb"), "--out", str(tmp_path / "out"), "--as-of", AS_OF)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "export" / "tickets.csv").exists()
    assert "incidents in warehouse:" in r.stdout and "rejected input rows:" in r.stdout
    # issue 17: the demo records February as delivered at 2026-03-04 00:00 local and approves
    # resolution exclusions of February tickets a week later, so March's reports restate February
    assert "recording the 2026-02 reports as delivered at 2026-03-04T00:00:00+01:00" in r.stderr + r.stdout
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        delivered = con.execute("SELECT count(DISTINCT customer_id), min(month), max(month), min(delivered_at) "
                                "FROM delivered_figures").fetchone()
        excluded_later = con.execute(
            "SELECT i.customer_id, i.ticket_id FROM restatements r, incident_sla i, incident_exclusions x "
            "WHERE r.month = '2026-02' AND r.figure = 'resolution_excluded' AND r.now > r.was "
            "AND i.customer_id = r.customer_id AND i.month = '2026-02' AND x.ticket_id = i.ticket_id "
            "AND x.metric = 'resolution' AND x.approved_at > r.delivered_at ORDER BY 1, 2").fetchall()
    assert delivered[0] > 0 and delivered[1] == delivered[2] == "2026-02"
    assert excluded_later, "no exclusion approved after the earlier delivery restates February"
    customer, ticket = excluded_later[0]
    pdf = next((tmp_path / "out" / "2026-03" / "customers").glob(f"{customer}-*.pdf")).read_bytes()
    text = squash(pdf_text(pdf))  # table cells wrap anywhere
    assert squash("Changes to earlier reports") in text
    assert squash(f"{ticket}: resolution") in text and squash("-> excluded (Outage on the") in text
    others = [p for p in (tmp_path / "out" / "2026-03" / "customers").glob("*.pdf") if not p.name.startswith(customer)]
    assert all(ticket not in pdf_text(p.read_bytes()) for p in others)  # never in another customer's report


def test_month_to_date_works_and_a_month_after_the_cut_off_is_refused(tmp_path):
    """Issue 13, item 4: nothing depends on the machine's clock but the default cut-off. The
    cut-off's own month is reported "month to date"; a later month is one line, exit 2, and
    nothing is written."""
    export = write_export(tmp_path / "export",
                          [("T1", "C1", "today", 2, "2026-12-01T09:30:00+01:00", "web")],
                          [("T1", "2026-12-01T10:00:00+01:00", "reply", "agent", "")],
                          [("C1", "Acme", "gold", "2025-01-01", "", "am@vendor.example")])
    db, out = tmp_path / "wh.duckdb", tmp_path / "out"
    r = sla("run", "--export-dir", str(export), "--db", str(db), "--out", str(out),
            "--as-of", "2026-12-01T12:00:00+01:00", "--month", "2026-12")
    assert r.returncode == 0, r.stderr
    assert "reporting month 2026-12" in r.stdout and "Traceback" not in r.stderr
    assert len(list((out / "2026-12" / "customers").glob("*.pdf"))) == 1
    later_db, later_out = tmp_path / "later.duckdb", tmp_path / "later"
    r = sla("run", "--export-dir", str(export), "--db", str(later_db), "--out", str(later_out),
            "--as-of", "2026-12-01T12:00:00+01:00", "--month", "2027-01")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "after the cut-off's month 2026-12" in r.stderr
    assert not later_db.exists() and not later_out.exists()


def test_rerun_reuses_unchanged_reports_and_force_renders_them(export, tmp_path):
    """Issue 18: the progress and the summary say how many outputs were rendered and reused."""
    args = ("--db", str(tmp_path / "wh.duckdb"), "--out", str(tmp_path / "out"))
    first = sla("run", "--export-dir", str(export), *args, "--as-of", AS_OF)
    assert first.returncode == 0, first.stderr
    assert "render the customer PDFs of 2026-03: done in" in first.stderr and "(rendered 1, reused 0)" in first.stderr
    again = sla("run", "--export-dir", str(export), *args, "--as-of", AS_OF)
    assert again.returncode == 0, again.stderr
    assert "(rendered 0, reused 1)" in again.stderr
    # the customer PDF, the dashboard and the billing report of each year rendered (2025 has an open item)
    assert re.search(r"rendered 0, reused [34] \(unchanged since the last run; --force renders all\)", again.stdout)
    forced = sla("report", "customers", "--month", "2026-03", *args, "--force")
    assert forced.returncode == 0 and "(rendered 1, reused 0)" in forced.stderr, forced.stderr
    one = sla("report", "customers", "--month", "2026-03", "--customer", "C1", *args)
    assert one.returncode == 0 and "C1: unchanged, reused" in one.stderr, one.stderr
    billing = sla("report", "billing", "--year", "2026", *args)
    assert billing.returncode == 0 and "Gold billing report 2026: unchanged, reused" in billing.stderr, billing.stderr
