"""Benchmark (issue 18): a month's customer PDFs through the Dagster fan-out on one machine.

    python benchmarks/customer_fanout.py [--customers 5000] [--incidents 1000000] [--months 24]
                                         [--max-concurrent 0] [--batch-size 0] [--compare-in-process]
                                         [--keep DIR] [--tag _x]

Writes a seeded demo export with the demo's policy (not timed), computes the warehouse up to the
month's `monthly_sla` in process (timed apart, not counted), then runs the `customer_reports_fanout`
job — `plan_customer_reports` -> one `render_customer_batch` step per batch -> `collect` — with
Dagster's multiprocess executor (`max_concurrent` = the machine's cores unless given) on a
persistent temporary DAGSTER_HOME, exactly as `dagster dev` or a run worker would. Recorded: total
wall time of the job, CPU seconds and peak memory (PSS) of the process tree (this process, the
executor's step processes, their chromium; sampled every second from /proc), the batches and the
processes they ran in, each step's duration from the event log (from its launch to its success),
and how much of the render steps was start-up (their durations minus the time spent rendering).
With `--compare-in-process`, the same month is rendered again in process (`sla run`'s way: one
batch, a process pool over every core) and the PDFs are compared byte for byte. The 1-minute load
average is recorded before and after: the machine is shared. Results:
benchmarks/results/customer_fanout<tag>.json (section 8 of benchmarks/README.md).

Target (issue 18): 5,000 customer PDFs in under 15 minutes with the multiprocess executor on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, save_results  # noqa: E402
from customer_pdfs import PeakMemory  # noqa: E402  (the process tree's CPU and PSS, sampled from /proc)

AS_OF = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.timezone.utc)  # reporting month 2026-10
MONTH = "2026-10"


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.pdf"))}


def prepare(work: Path, args) -> dict:
    import dagster as dg

    from connectors.demo_export import write_demo_export
    from pipelines.orchestrate import ALL_ASSETS, ALL_CHECKS
    from pipelines.resources import build_resources

    t = time.perf_counter()
    counts = write_demo_export(work / "export", customers=args.customers, months=args.months,
                               incidents=args.incidents, seed=args.seed, as_of=AS_OF)
    export_s = time.perf_counter() - t
    print(f"demo export: {export_s:.0f} s, {counts}", file=sys.stderr, flush=True)
    t = time.perf_counter()
    resources = build_resources(export_dir=str(work / "export"), db_path=str(work / "warehouse.duckdb"),
                                out_dir=str(work / "out-unused"), as_of=AS_OF.isoformat(),
                                policy_path=str(work / "export" / "sla-policy.yaml"))
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize([*ALL_ASSETS, *ALL_CHECKS], resources=resources, instance=instance,
                       partition_key=f"{MONTH}-01", raise_on_error=True,
                       selection=dg.AssetSelection.assets("raw_import", "incident_sla", "monthly_sla"))
    warehouse_s = time.perf_counter() - t
    print(f"warehouse up to monthly_sla {MONTH}: {warehouse_s:.0f} s", file=sys.stderr, flush=True)
    return {"rows": counts, "demo_export_s_not_counted": round(export_s, 1),
            "warehouse_s_not_counted": round(warehouse_s, 1)}


def run_fanout(work: Path, args) -> dict:
    import dagster as dg

    home = work / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # a throwaway SQLite instance
    os.environ.update({"DAGSTER_HOME": str(home), "SLA_DB": str(work / "warehouse.duckdb"),
                       "SLA_OUT": str(work / "out"), "SLA_AS_OF": AS_OF.isoformat(),
                       "SLA_EXPORT_DIR": str(work / "export"), "SLA_POLICY": str(work / "export" / "sla-policy.yaml"),
                       "SLA_FANOUT_EXECUTOR": "multiprocess",
                       "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)})
    if args.batch_size:
        os.environ["SLA_REPORT_BATCH_SIZE"] = str(args.batch_size)
    from pipelines.definitions import customer_reports_fanout

    max_concurrent = args.max_concurrent or os.cpu_count() or 1
    execution = {"max_concurrent": max_concurrent, "start_method": {args.start_method: {}}}
    instance = dg.DagsterInstance.get()
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with PeakMemory(interval=1.0) as sampler:
        result = dg.execute_job(dg.reconstructable(customer_reports_fanout), instance=instance,
                                tags={"dagster/partition": f"{MONTH}-01"},
                                run_config={"execution": {"config": execution}})
    wall, cpu = time.perf_counter() - t0, sampler.cpu_seconds
    if not result.success:
        raise SystemExit("the fan-out job failed (see the Dagster log above)")
    (event,) = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    starts, steps = {}, {}  # from the executor's first event of a step (its launch) to its success
    for entry in instance.all_logs(result.run_id):
        ev = entry.dagster_event
        if ev is None or not ev.step_key:
            continue
        starts.setdefault(ev.step_key, entry.timestamp)
        if ev.event_type_value == "STEP_SUCCESS":
            steps[ev.step_key] = round(entry.timestamp - starts[ev.step_key], 2)
    render_steps = {k: v for k, v in steps.items() if "render_customer_batch" in k}
    rendering = meta.get("batch seconds (summed)", 0)
    return {
        "max_concurrent": max_concurrent,
        "start_method": args.start_method,
        "wall_s": round(wall, 1),
        "cpu_s_process_tree": round(cpu, 1),
        "peak_memory_mib": round(sampler.peak_kib / 1024),
        "load_avg_1min_before": round(load_before, 2),
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
        "metadata": {k: (str(v) if not isinstance(v, (int, float)) else v) for k, v in meta.items()},
        "step_seconds": steps,
        "render_steps": len(render_steps),
        "render_step_seconds_sum": round(sum(render_steps.values()), 1),
        "batch_rendering_seconds_sum": round(rendering, 1),
        "step_overhead_seconds_sum": round(sum(render_steps.values()) - rendering, 1),
        "seconds_per_report_wall": round(wall / max(1, meta.get("rendered", 0)), 3),
    }


def run_in_process(work: Path) -> dict:
    """The same month the way `sla run` renders it: in process, one batch over a process pool."""
    import dagster as dg

    from pipelines.orchestrate import ALL_ASSETS, ALL_CHECKS
    from pipelines.resources import build_resources

    resources = build_resources(export_dir=str(work / "export"), db_path=str(work / "warehouse.duckdb"),
                                out_dir=str(work / "out-in-process"), as_of=AS_OF.isoformat(),
                                policy_path=str(work / "export" / "sla-policy.yaml"))
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with PeakMemory(interval=1.0) as sampler, dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], resources=resources, instance=instance,
                                partition_key=f"{MONTH}-01", raise_on_error=True,
                                selection=dg.AssetSelection.assets("customer_reports"))
    wall, cpu = time.perf_counter() - t0, sampler.cpu_seconds
    (event,) = result.get_asset_materialization_events()
    meta = event.event_specific_data.materialization.metadata
    return {"wall_s": round(wall, 1), "cpu_s_process_tree": round(cpu, 1), "peak_memory_mib": round(sampler.peak_kib / 1024),
            "metadata": {k: (v.value if isinstance(v.value, (int, float)) else str(v.value)) for k, v in meta.items()},
            "rendered": meta["rendered"].value,
            "batches": meta["batches"].value, "load_avg_1min_before": round(load_before, 2),
            "load_avg_1min_after": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--incidents", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--max-concurrent", type=int, default=0, help="step processes at once (default: cores)")
    ap.add_argument("--batch-size", type=int, default=0, help="reports per batch (default: automatic)")
    ap.add_argument("--start-method", choices=["spawn", "forkserver"], default="forkserver",
                    help="how the executor starts step processes (default: forkserver, the job's default; "
                    "run config that sets `execution` replaces the job's default, so it is always named)")
    ap.add_argument("--compare-in-process", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    if args.incidents <= 0:
        args.incidents = None  # the demo's own volume per customer

    work = (args.keep or Path(tempfile.mkdtemp(prefix="bench-fanout-"))).resolve()
    if args.keep and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        prepared = prepare(work, args)
        print("fan-out ...", file=sys.stderr, flush=True)
        fanout = run_fanout(work, args)
        pdfs = digests(work / "out" / MONTH / "customers")
        print(f"fan-out: {fanout['wall_s']} s for {len(pdfs)} PDFs in {fanout['render_steps']} batches",
              file=sys.stderr, flush=True)
        in_process = None
        if args.compare_in_process:
            print("in process ...", file=sys.stderr, flush=True)
            in_process = run_in_process(work)
            in_process["pdfs_identical_to_fanout"] = digests(work / "out-in-process" / MONTH / "customers") == pdfs
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    result = {
        "benchmark": "customer_fanout",
        "machine": machine(),
        "input": {"customers": args.customers, "incidents": args.incidents, "months": args.months,
                  "seed": args.seed, "as_of": AS_OF.isoformat(), "month": MONTH, **prepared},
        "customer_pdfs": len(pdfs),
        "fanout": fanout,
        "in_process": in_process,
        "target": "5,000 customer PDFs < 15 min with the multiprocess executor on 2 cores",
    }
    path = save_results(f"customer_fanout{args.tag}", result)
    m = fanout["metadata"]
    print("\n| executor | PDFs | batches | processes | wall | CPU | s per report | start-up in render steps | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    print(f"| multiprocess (max_concurrent {fanout['max_concurrent']}) | {m.get('rendered')} | {m.get('batches')} | "
          f"{m.get('render processes')} | {fanout['wall_s']} s | {fanout['cpu_s_process_tree']} s | "
          f"{fanout['seconds_per_report_wall']} | {fanout['step_overhead_seconds_sum']} s | "
          f"{fanout['load_avg_1min_before']}-{fanout['load_avg_1min_after']} |")
    if in_process:
        print(f"| in process (pool) | {in_process['rendered']} | {in_process['batches']} | - | {in_process['wall_s']} s | "
              f"{in_process['cpu_s_process_tree']} s | {in_process['wall_s'] / max(1, in_process['rendered']):.3f} | - | "
              f"{in_process['load_avg_1min_before']}-{in_process['load_avg_1min_after']} |")
        print(f"\nPDFs identical: {in_process['pdfs_identical_to_fanout']}")
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
