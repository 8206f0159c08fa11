"""Fault tests of the API sync (Zendesk connector, real recorded tickets and audits, real HTTP on
127.0.0.1): 429 with Retry-After, 500 then success, a connection dropped mid-page, and a sync
process killed between pages then rerun -> exactly the warehouse of one clean run. A sentinel
secret never shows in logs, errors or the warehouse."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pytest

from tests.connectors.test_zendesk import AUTH, TOKEN, ZD, _contracts, zenpy_route, zenpy_source
from tests.http_fixture_server import FixtureServer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not ZD.exists(), reason="shared real data not present")


def _warehouse(con) -> tuple[list, list]:
    records = con.execute("SELECT source, kind, record_id, parent_id, updated_at, CAST(payload AS VARCHAR) "
                          "FROM src_records ORDER BY ALL").fetchall()
    cursors = con.execute("SELECT source, cursor FROM sync_cursors ORDER BY ALL").fetchall()
    return records, cursors


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    contracts = _contracts(folder, [("Z3n Tests (09cace/1694303517)", "enterprise")])
    with FixtureServer(zenpy_route(), expect_auth=AUTH) as server:
        con = duckdb.connect()
        zenpy_source(server.url, contracts).sync(con)
        return _warehouse(con), contracts


def _sync_with_faults(contracts, faults, caplog):
    sleeps: list[float] = []
    with FixtureServer(zenpy_route(), expect_auth=AUTH) as server:
        for prefix, *action in faults:
            server.fault(prefix, *action)
        con = duckdb.connect()
        with caplog.at_level(logging.DEBUG):
            zenpy_source(server.url, contracts, sleep=sleeps.append).sync(con)
        assert not server.faults, "every injected fault was hit"
        return _warehouse(con), sleeps, server


def test_fault_zendesk_429_retry_after(clean_run, caplog):
    expected, contracts = clean_run
    got, sleeps, _ = _sync_with_faults(contracts, [("/api/v2/incremental/tickets/cursor", "status", 429, {"Retry-After": "7"})], caplog)
    assert sleeps == [7.0]  # Retry-After honoured exactly
    assert got == expected
    assert "HTTP 429" in caplog.text and TOKEN not in caplog.text


def test_fault_zendesk_500_then_success(clean_run, caplog):
    expected, contracts = clean_run
    got, sleeps, _ = _sync_with_faults(contracts, [("/api/v2/tickets/", "status", 500), ("/api/v2/tickets/", "status", 502)], caplog)
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # exponential backoff
    assert got == expected
    assert TOKEN not in caplog.text


def test_fault_zendesk_dropped_connection_mid_page(clean_run, caplog):
    expected, contracts = clean_run
    got, sleeps, server = _sync_with_faults(contracts, [("/api/v2/incremental/tickets/cursor", "drop")], caplog)
    assert len(sleeps) == 1
    assert got == expected
    assert TOKEN not in caplog.text


def test_fault_zendesk_kill_between_pages_then_rerun(clean_run, tmp_path):
    expected, contracts = clean_run
    reached, release = threading.Event(), threading.Event()
    base = zenpy_route()

    def route(path, query):
        if path.removesuffix(".json").endswith("/incremental/tickets/cursor") and "cursor" in query and not release.is_set():
            import base64
            import json

            if json.loads(base64.b64decode(query["cursor"]))["o"] == 50:  # the third page
                reached.set()
                release.wait(60)
        return base(path, query)

    db = tmp_path / "killed.duckdb"
    script = textwrap.dedent(f"""
        import duckdb, sys
        from tests.connectors.test_zendesk import zenpy_source
        con = duckdb.connect({str(db)!r})
        zenpy_source(sys.argv[1], {str(contracts)!r}).sync(con, lambda m: print(m, flush=True))
    """)
    with FixtureServer(route, expect_auth=AUTH) as server:
        proc = subprocess.Popen([sys.executable, "-c", script, server.url], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            if not reached.wait(60):
                proc.kill()
                pytest.fail("the sync never asked for the third page:\n" + proc.communicate()[0])
            os.kill(proc.pid, signal.SIGKILL)  # killed while waiting for page 3
            output = proc.communicate(timeout=30)[0]
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
        assert "page 2" in output and "page 3" not in output
        assert TOKEN not in output
        con = duckdb.connect(str(db))
        partial = _warehouse(con)
        assert 0 < len(partial[0]) < len(expected[0])  # two pages were committed, no more
        zenpy_source(server.url, contracts).sync(con)  # the rerun
        assert _warehouse(con) == expected
        con.close()
