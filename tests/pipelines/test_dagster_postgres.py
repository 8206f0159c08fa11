"""Dagster's instance storage on a real PostgreSQL server (the storage a deployment beyond one
machine shares between webserver, daemon and run workers): deploy/dagster-postgres.yaml as
shipped, a run started by the `dagster` CLI in its own process, read back from a second instance
and straight from the database. `.ci/run` starts the server (scripts/postgres.sh); locally the test
is skipped unless DAGSTER_PG_PASSWORD is set, in CI a missing server is a failure."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from connectors.demo_export import write_demo_export

ROOT = Path(__file__).resolve().parents[2]
AS_OF = dt.datetime(2026, 4, 2, 12, tzinfo=dt.timezone.utc)
PARTITION = "2026-03-01"


def _pg_env() -> dict[str, str]:
    if not os.environ.get("DAGSTER_PG_PASSWORD"):
        if os.environ.get("CI"):
            pytest.fail("CI must start PostgreSQL for Dagster (scripts/postgres.sh) and export DAGSTER_PG_*")
        pytest.skip("no PostgreSQL: run DAGSTER_PG_PASSWORD=... scripts/postgres.sh and export it")
    return {"DAGSTER_PG_HOST": os.environ.get("DAGSTER_PG_HOST", "127.0.0.1"),
            "DAGSTER_PG_PORT": os.environ.get("DAGSTER_PG_PORT", "5433"),
            "DAGSTER_PG_USER": os.environ.get("DAGSTER_PG_USER", "dagster"),
            "DAGSTER_PG_DB": os.environ.get("DAGSTER_PG_DB", "dagster"),
            "DAGSTER_PG_PASSWORD": os.environ["DAGSTER_PG_PASSWORD"]}


def test_cli_run_is_stored_in_postgres_and_seen_by_another_instance(tmp_path, monkeypatch):
    pg = _pg_env()
    for key, value in pg.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    export = tmp_path / "export"
    write_demo_export(export, customers=6, months=2, seed=11, as_of=AS_OF)
    env = {**os.environ, **pg, "DAGSTER_HOME": str(home), "SLA_EXPORT_DIR": str(export),
           "SLA_DB": str(tmp_path / "wh.duckdb"), "SLA_OUT": str(tmp_path / "out"),
           "SLA_AS_OF": AS_OF.isoformat()}

    # one process runs the assets, the way an operator or a run worker on another machine does
    cli = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "pipelines.definitions",
         "--select", "raw_import,incident_sla,monthly_sla", "--partition", PARTITION],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-3000:]

    # ... and another one (this test, standing for the webserver) reads it from the shared storage
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        runs = instance.get_runs(limit=1)
        assert runs and runs[0].status == dg.DagsterRunStatus.SUCCESS
        run_id = runs[0].run_id
        assert runs[0].tags.get("dagster/partition") == PARTITION
        for key in ("raw_import", "incident_sla", "monthly_sla"):
            event = instance.get_latest_materialization_event(dg.AssetKey(key))
            assert event is not None and event.run_id == run_id
        # the monthly asset is partitioned; the import and incident_sla cover the whole history
        monthly = instance.get_latest_materialization_event(dg.AssetKey("monthly_sla"))
        assert monthly.asset_materialization.partition == PARTITION
        assert PARTITION in instance.get_materialized_partitions(dg.AssetKey("monthly_sla"))

    # the rows really are in PostgreSQL, and the password is in none of them
    import psycopg2

    with psycopg2.connect(host=pg["DAGSTER_PG_HOST"], port=int(pg["DAGSTER_PG_PORT"]), user=pg["DAGSTER_PG_USER"],
                          password=pg["DAGSTER_PG_PASSWORD"], dbname=pg["DAGSTER_PG_DB"]) as con, con.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
        assert cur.fetchall() == [("SUCCESS",)]
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                    (run_id,))
        assert cur.fetchone()[0] == 3
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s AND position(%s in event) > 0",
                    (run_id, pg["DAGSTER_PG_PASSWORD"]))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM runs WHERE run_id = %s AND position(%s in run_body) > 0",
                    (run_id, pg["DAGSTER_PG_PASSWORD"]))
        assert cur.fetchone()[0] == 0
