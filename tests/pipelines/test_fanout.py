"""The customer-report fan-out (issue 18): `customer_reports_fanout` under Dagster's
multiprocess executor renders its batches in separate processes at the same time, and the
PDFs are byte for byte those of the in-process run (`sla run`)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from connectors.demo_export import write_demo_export
from pipelines.orchestrate import ALL_ASSETS, ALL_CHECKS
from pipelines.resources import build_resources

AS_OF = dt.datetime(2026, 4, 2, 12, tzinfo=dt.timezone.utc)
PARTITION = "2026-03-01"


def folder_bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """A demo warehouse computed up to monthly_sla of March, and the month's PDFs rendered in process."""
    base = tmp_path_factory.mktemp("fanout")
    write_demo_export(base / "export", customers=12, months=2, seed=5, as_of=AS_OF)
    resources = build_resources(export_dir=str(base / "export"), db_path=str(base / "wh.duckdb"),
                                out_dir=str(base / "in-process"), as_of=AS_OF.isoformat())
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], resources=resources, instance=instance,
                                partition_key=PARTITION, raise_on_error=True,
                                selection=dg.AssetSelection.assets("raw_import", "incident_sla", "monthly_sla",
                                                                   "customer_reports"))
    meta = next(e.event_specific_data.materialization.metadata for e in result.get_asset_materialization_events()
                if e.event_specific_data.materialization.asset_key == dg.AssetKey("customer_reports"))
    assert meta["batches"].value == 1 and meta["rendered"].value >= 8  # in process: one batch, a pool
    return base


def run_fanout(monkeypatch, base, out, *, batch_size: int | None = None, start_method=None):
    """Run `customer_reports_fanout` as `dagster dev` would (the job's default start method is a
    forkserver: its step processes inherit the environment of the first run in this process)."""
    start_method = start_method or {"forkserver": {}}
    home = base / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name, value in {"DAGSTER_HOME": str(home), "SLA_DB": str(base / "wh.duckdb"), "SLA_OUT": str(out),
                        "SLA_AS_OF": AS_OF.isoformat(), "SLA_EXPORT_DIR": str(base / "export"),
                        "SLA_IO_STORAGE": str(base / "io")}.items():
        monkeypatch.setenv(name, value)
    if batch_size:
        monkeypatch.setenv("SLA_REPORT_BATCH_SIZE", str(batch_size))
    from pipelines.definitions import customer_reports_fanout

    instance = dg.DagsterInstance.get()
    result = dg.execute_job(dg.reconstructable(customer_reports_fanout), instance=instance,
                            tags={"dagster/partition": PARTITION},
                            run_config={"execution": {"config": {"max_concurrent": 2, "start_method": start_method}}})
    assert result.success
    (event,) = [e for e in result.get_asset_materialization_events()]
    return instance, result, event.event_specific_data.materialization.metadata


def test_the_fanout_job_forks_its_steps_and_names_missing_executor_packages():
    from pipelines.definitions import defs
    from pipelines.jobs import fanout_executor
    from pipelines.settings import ConfigError

    job = defs.resolve_job_def("customer_reports_fanout")
    assert job.executor_def.name == "multiprocess"
    # the run config a launch of a month gets unless it names its own (launchpad, schedule, backfill)
    default = job.partitioned_config.get_run_config_for_partition_key(PARTITION)
    assert default["execution"]["config"]["start_method"] == {"forkserver": {}}
    assert {n.name for n in job.graph.node_defs} >= {"customer_reports"}
    for name, package in (("k8s", "dagster-k8s"), ("celery", "dagster-celery")):
        try:
            fanout_executor(name)
        except ConfigError as exc:
            assert f"SLA_FANOUT_EXECUTOR={name} needs the {package} package" in str(exc)
    with pytest.raises(ConfigError, match="expected multiprocess, celery or k8s"):
        fanout_executor("ray")


@pytest.mark.slow
def test_batches_run_in_parallel_processes_and_give_the_same_bytes(warehouse, monkeypatch):
    out = warehouse / "fanout"
    instance, result, meta = run_fanout(monkeypatch, warehouse, out, batch_size=4)
    assert meta["batches"].value >= 3 and meta["reused"].value == 0
    # the batches (the month's view models) went through the IO storage named by SLA_IO_STORAGE
    assert [p for p in (warehouse / "io").rglob("*") if p.is_file() and "batch_" in p.as_posix()]
    pids = {int(p) for p in meta["render pids"].value.split(", ")}
    assert len(pids) >= 2 and meta["render processes"].value == len(pids)
    # two render steps were running at the same time (max_concurrent 2)
    spans: dict[str, list[float]] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event and event.step_key and event.step_key.endswith("]") and "render_customer_batch" in event.step_key:
            if event.event_type_value in ("STEP_START", "STEP_SUCCESS"):
                spans.setdefault(event.step_key, []).append(entry.timestamp)
    intervals = sorted(tuple(v) for v in spans.values())
    assert len(intervals) == meta["batches"].value
    assert any(b[0] < a[1] for a, b in zip(intervals, intervals[1:])), intervals
    march = "2026-03/customers"
    expected = folder_bytes(warehouse / "in-process" / march)
    assert expected and folder_bytes(out / march) == expected  # the PDFs, byte for byte
    manifests = folder_bytes(warehouse / "in-process" / ".fingerprints" / march)
    assert len(manifests) == len(expected) and folder_bytes(out / ".fingerprints" / march) == manifests

    # the same job again: nothing to render, every PDF reused, no render step at all
    _, again, meta = run_fanout(monkeypatch, warehouse, out, batch_size=4)
    assert meta["rendered"].value == 0 and meta["reused"].value == len(expected)
    assert not [e for e in again.all_events if e.step_key and "render_customer_batch" in e.step_key]
    assert folder_bytes(out / march) == expected
