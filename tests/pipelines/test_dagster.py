"""Dagster wiring: the definitions load, the graph is what the UI shows, and the whole graph
materialises end to end on a demo export (real DuckDB, in process)."""

from __future__ import annotations

import datetime as dt
import shutil

import dagster as dg
import duckdb
import pytest

from connectors.demo_export import write_demo_export
from pipelines.definitions import defs
from pipelines.orchestrate import ALL_ASSETS, ALL_CHECKS
from pipelines.partitions import monthly_partitions
from pipelines.resources import build_resources

AS_OF = dt.datetime(2026, 4, 2, 12, tzinfo=dt.timezone.utc)
#: everything of one month (the yearly billing report has its own partitions)
MONTHLY_GRAPH = dg.AssetSelection.all() - dg.AssetSelection.assets("gold_billing_report")


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_asset_graph_checks_partitions_and_schedule():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw_import", "incident_sla", "gold_reconciliation", "monthly_sla", "customer_reports",
            "gold_billing_report", "dashboard", "report_delivery"} <= keys
    check_names = {c.name for c in graph.asset_check_keys}
    assert {"unique_ticket_ids", "incidents_have_contract", "events_in_order", "no_rejects"} <= check_names
    assert monthly_partitions.timezone == "Europe/Berlin"
    schedule = defs.resolve_schedule_def("monthly_reporting_schedule")
    assert schedule.cron_schedule == "0 6 1 * *" and schedule.execution_timezone == "Europe/Berlin"


def test_instance_config_serialises_runs(tmp_path):
    shutil.copy("dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    write_demo_export(folder, customers=15, months=3, seed=3, as_of=AS_OF, bad_rows=True)
    return folder


def test_whole_graph_materialises_end_to_end(demo_export, tmp_path):
    db = tmp_path / "wh.duckdb"
    resources = build_resources(export_dir=str(demo_export), db_path=str(db), out_dir=str(tmp_path / "out"),
                                as_of=AS_OF.isoformat())
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], resources=resources, instance=instance,
                                selection=MONTHLY_GRAPH, partition_key="2026-03-01", raise_on_error=False)
    materialized = {e.event_specific_data.materialization.asset_key.to_user_string()
                    for e in result.get_asset_materialization_events()}
    assert {"raw_import", "incident_sla", "gold_reconciliation", "monthly_sla", "customer_reports",
            "dashboard", "report_delivery"} <= materialized
    assert len(list((tmp_path / "out" / "2026-03" / "customers").glob("*.pdf"))) >= 10
    assert (tmp_path / "out" / "dashboard" / "index.html").exists()
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["unique_ticket_ids"] and checks["incidents_have_contract"] and checks["events_in_order"]
    assert checks["no_rejects"] is False  # the demo carries a few deliberate bad rows
    con = duckdb.connect(str(db), read_only=True)
    tickets = con.execute("SELECT count(*) FROM tickets").fetchall()[0][0]
    assert con.execute("SELECT count(*) FROM incident_sla").fetchall()[0][0] == tickets > 0
    # monthly tables hold every month as of the run's cut-off (sla-semantics.md section 4), not only
    # the materialised partition's month
    months = con.execute("SELECT DISTINCT month FROM monthly_sla ORDER BY month").fetchall()
    assert months == con.execute("SELECT DISTINCT month FROM incident_sla ORDER BY month").fetchall()
    assert ("2026-03",) in months
    in_month = con.execute("SELECT count(*) FROM incident_sla WHERE month = '2026-03'").fetchall()[0][0]
    assert con.execute("SELECT sum(incidents) FROM monthly_quota WHERE month = '2026-03'").fetchall()[0][0] == in_month
    assert con.execute("SELECT DISTINCT as_of FROM monthly_quota").fetchall() == \
        con.execute("SELECT DISTINCT as_of FROM incident_sla").fetchall()
    log = con.execute("SELECT source, rows_in, accepted, rejected FROM import_log").fetchall()
    assert all(rows_in == accepted + rejected for _, rows_in, accepted, rejected in log)


def test_blocking_check_stops_downstream_in_the_same_run(tmp_path, demo_export):
    folder = tmp_path / "export"
    shutil.copytree(demo_export, folder)
    with (folder / "tickets.csv").open("a", encoding="utf-8") as fh:
        fh.write("ORPHAN-1,NO-CONTRACT,lost,2,2026-03-10T10:00:00+01:00,web\n")
    resources = build_resources(export_dir=str(folder), db_path=str(tmp_path / "wh.duckdb"),
                                out_dir=str(tmp_path / "out"), as_of=AS_OF.isoformat())
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], resources=resources, instance=instance,
                                selection=MONTHLY_GRAPH, partition_key="2026-03-01", raise_on_error=False)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["incidents_have_contract"].passed
    assert "ORPHAN-1 (NO-CONTRACT)" in checks["incidents_have_contract"].description
    materialized = {e.event_specific_data.materialization.asset_key.to_user_string()
                    for e in result.get_asset_materialization_events()}
    assert "incident_sla" in materialized and "monthly_sla" not in materialized
