"""Reliability: fuzzed CSV input, kill -9 at every stage, two runs at once, determinism."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.csv_export import CsvExportSource
from connectors.demo_export import write_demo_export
from sla.policy import load_policy
from sla.sources import ExportError
from sla.steps import import_source
from tests.helpers import HEADERS, write_export

AS_OF = "2026-04-02T12:00:00+02:00"
POLICY = load_policy()
CONTRACT_TABLES = ["incident_sla", "gold_reconciliation", "rejects", "incident_clock_segments", "monthly_sla",
                   "monthly_quota", "tickets", "ticket_events", "contracts", "invoices"]


def table_digest(db: Path) -> dict[str, str]:
    """A content hash per table, independent of physical row order."""
    con = duckdb.connect(str(db), read_only=True)
    out = {}
    for table in CONTRACT_TABLES:
        rows = sorted(repr(r) for r in con.execute(f"SELECT * FROM {table}").fetchall())
        out[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    con.close()
    return out


def file_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def sla_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def run_args(export: Path, db: Path, out: Path) -> list[str]:
    return sla_cmd("run", "--export-dir", str(export), "--db", str(db), "--out", str(out), "--as-of", AS_OF)


# ---- fuzzing -------------------------------------------------------------------------------------
cell = st.one_of(st.text(alphabet=list('ab1-:T+Z ,"\r\n\t=<>é\ufeff'), max_size=12),
                st.sampled_from(["2026-03-02T10:00:00Z", "2026-03-02T10:00:00", "1", "5", "C1", "T1"]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(cell, min_size=0, max_size=8), max_size=8), raw_tail=st.binary(max_size=40))
def test_fuzzed_tickets_file_never_crashes_or_loses_rows(tmp_path_factory, rows, raw_tail):
    folder = write_export(tmp_path_factory.mktemp("fuzz"), [], [], [("C1", "A", "gold", "2025-01-01", "", "a@x")])
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADERS["tickets.csv"])
    w.writerows(rows)
    (folder / "tickets.csv").write_bytes(buf.getvalue().encode("utf-8") + raw_tail)
    con = duckdb.connect()
    try:
        counts = {c.source: c for c in import_source(con, CsvExportSource(folder), POLICY)}
    except ExportError:
        return  # a clear one-line error (e.g. an unterminated quote) is an acceptable outcome
    t = counts["tickets.csv"]
    assert t.rows_in == t.accepted + t.rejected
    accepted = con.execute("SELECT count(*) FROM tickets").fetchall()[0][0]
    assert accepted == t.accepted - t.duplicates_collapsed


# ---- crash safety ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    import datetime as dt

    # 10 customers at ~80 incidents a month each: the density of the demo, a third of the PDFs
    write_demo_export(folder, customers=10, months=3, seed=11, incidents=800,
                      as_of=dt.datetime.fromisoformat(AS_OF))
    return folder


@pytest.fixture(scope="module")
def clean_run(big_export, tmp_path_factory):
    base = tmp_path_factory.mktemp("clean")
    r = subprocess.run(run_args(big_export, base / "wh.duckdb", base / "out"), capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr
    return table_digest(base / "wh.duckdb"), file_digest(base / "out")


@pytest.mark.parametrize("stage", ["import the export", "compute per-incident SLA figures",
                                   "render the customer PDFs"])
def test_kill_9_then_rerun_equals_one_clean_run(big_export, clean_run, tmp_path, stage):
    db, out = tmp_path / "wh.duckdb", tmp_path / "out"
    proc = subprocess.Popen(run_args(big_export, db, out), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    for line in proc.stderr:
        if stage in line and line.rstrip().endswith("..."):
            time.sleep(0.1)  # inside the step (the import and the metrics take about 0.5 s here)
            break
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: worker processes and chromium too
    proc.wait()
    finished = [line for line in proc.stderr.read().splitlines() if stage in line and ": done in" in line]
    assert not finished, f"the kill came after the step: {finished}"
    r = subprocess.run(run_args(big_export, db, out), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    tables, files = clean_run
    assert table_digest(db) == tables
    assert file_digest(out) == files  # no half-written or left-over temporary file


# ---- concurrency ---------------------------------------------------------------------------------
def test_two_runs_at_once_one_is_told_the_database_is_busy(big_export, tmp_path):
    db = tmp_path / "wh.duckdb"
    first = subprocess.Popen(run_args(big_export, db, tmp_path / "out1"), stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True)
    for line in first.stderr:
        if "[1/" in line:
            break
    started = time.monotonic()
    second = subprocess.run(run_args(big_export, db, tmp_path / "out2"), capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    assert "is busy: sla run (pid" in second.stderr
    assert time.monotonic() - started < 30
    first.stderr.read()
    assert first.wait(timeout=900) == 0


# ---- determinism ---------------------------------------------------------------------------------
def test_same_input_same_tables_and_same_bytes(big_export, clean_run, tmp_path):
    r = subprocess.run(run_args(big_export, tmp_path / "wh.duckdb", tmp_path / "out"), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    tables, files = clean_run
    assert table_digest(tmp_path / "wh.duckdb") == tables
    assert file_digest(tmp_path / "out") == files


# ---- secrets ---------------------------------------------------------------------------------------
SENTINEL = "S3NTINEL-9f2c7"


def test_secrets_never_reach_logs_storage_warehouse_or_outputs(tmp_path):
    """Run the pipeline (Dagster storage on disk) and a delivery with sentinel secrets set."""
    import datetime as dt

    export = tmp_path / "export"
    write_demo_export(export, customers=6, months=2, seed=4, as_of=dt.datetime.fromisoformat(AS_OF))
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), "SLA_SMTP_PASSWORD": SENTINEL,
           "SLA_SMTP_USER": "reports", "SLA_SMTP_HOST": "127.0.0.1", "SLA_SMTP_PORT": "1",
           "SLA_ZENDESK_TOKEN": SENTINEL, "SLA_RT_PASSWORD": SENTINEL, "SLA_JIRA_TOKEN": SENTINEL}
    (tmp_path / "dagster_home").mkdir()
    db, out = tmp_path / "wh.duckdb", tmp_path / "out"
    runs = [subprocess.run(run_args(export, db, out), capture_output=True, text=True, env=env, timeout=600),
            subprocess.run(sla_cmd("deliver", "--db", str(db), "--out", str(out), "--month", "2026-03"),
                           capture_output=True, text=True, env=env, timeout=120)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[1].returncode == 1 and "FAILED" in runs[1].stdout  # nothing listens on port 1
    for r in runs:
        assert SENTINEL not in r.stdout + r.stderr
    for path in [*tmp_path.rglob("*")]:
        if path.is_file() and path.suffix != ".csv" and "export" not in path.parts:
            assert SENTINEL.encode() not in path.read_bytes(), path
    con = duckdb.connect(str(db), read_only=True)
    columns = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                          "WHERE data_type = 'VARCHAR'").fetchall()
    for table, column in columns:
        hits = con.execute(f'SELECT count(*) FROM "{table}" WHERE contains("{column}", ?)', [SENTINEL]).fetchall()[0][0]
        assert hits == 0, (table, column)
