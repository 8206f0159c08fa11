"""Reports: the monthly customer compliance PDFs (one per customer of the month).

`customer_reports` is a graph of three ops, so that Dagster schedules the rendering in pieces:

1. `plan_customer_reports` reads the warehouse once (the only op that does), builds the month's
   view models, fingerprints them (`reports.fingerprint`) and yields one dynamic output per batch
   of reports to render. The batches, stored by the run's IO manager, are the read-only snapshot
   of the month that the render steps read: no render step opens the warehouse.
2. `render_customer_batch`, once per batch: renders its PDFs and writes each one's manifest.
3. `collect_customer_reports`: deletes PDFs that are no longer the month's and reports
   "rendered N, reused M" as the asset's metadata.

How the batches are cut follows the executor. In process (the `sla` command, the
`monthly_reporting` job) there is one batch, rendered by a process pool over every core. Under
any other executor (`multiprocess_executor` of the `customer_reports_fanout` job, Celery,
Kubernetes) there are about two batches per core (10 to 200 reports each, or
`SLA_REPORT_BATCH_SIZE`), each rendered in its own step process with one chromium, and the
executor spreads them over processes or machines; the code is the same.
"""

import os
import time
from dataclasses import dataclass

import dagster as dg

from pipelines.partitions import monthly_partitions, partition_month
from pipelines.resources import SlaSettings, WarehouseResource
from reports import batch as report_batch
from sla.report_data.customer import build_customer_reports


@dataclass(frozen=True)
class MonthPlan:
    """What the plan step decided (small: passed to the collect step)."""

    month: str
    out_dir: str
    folder: str
    names: tuple[str, ...]  # every report file of the month
    reused: tuple[str, ...]  # current on disk, kept
    to_render: int
    batches: int
    cutoff: str
    plan_s: float  # view models, fingerprints and the check of what is on disk
    started: float  # wall-clock start of the plan step (time.time(): steps may run on other machines)


@dataclass(frozen=True)
class CustomerBatch:
    """A batch of reports to render, with their view models (the snapshot a render step reads)."""

    key: str
    jobs: tuple[report_batch.RenderJob, ...]
    workers: int  # processes to render with: every core in process, else 1 (the executor parallelises)


@dataclass(frozen=True)
class BatchResult:
    key: str
    rendered: tuple[report_batch.Rendered, ...]
    pid: int  # the step's process
    wall_s: float


def _in_process(context: dg.OpExecutionContext) -> bool:
    """True under the in-process executor (`dg.materialize`, the `sla` command, jobs of the
    Definitions' default executor), where only a process pool inside the step can use the cores."""
    return "in_process" in context.job_def.executor_def.name


@dg.op(ins={"monthly_sla": dg.In(dg.Nothing)},
       out={"batches": dg.DynamicOut(CustomerBatch), "plan": dg.Out(MonthPlan)},
       description="Build the month's customer view models from the warehouse, keep the PDFs whose "
       "fingerprint is unchanged and cut the rest into batches.")
def plan_customer_reports(context: dg.OpExecutionContext, warehouse: WarehouseResource, settings: SlaSettings):
    started, t0 = time.time(), time.perf_counter()
    month = partition_month(context.partition_key)
    in_process = _in_process(context)
    # closed before rendering: no lock held for minutes. In its own process (fan-out) the step only
    # reads, so the warehouse may be a read-only copy or mount; in process it keeps the run's open mode.
    with warehouse.connect(read_only=not in_process) as con:
        reports = build_customer_reports(con, settings.policy(), month)
    plan = report_batch.plan_customer_reports(reports, settings.out_dir, month, force=settings.force)
    todo = len(plan.todo)
    size = settings.report_batch_size or (todo if in_process else report_batch.auto_batch_size(todo))
    parts = report_batch.split_batches(plan.todo, size)
    workers = report_batch.default_workers() if in_process else 1
    context.log.info(f"{month}: {len(plan.names)} customer reports, {len(plan.reused)} unchanged (reused), "
                     f"{todo} to render in {len(parts)} batch(es)" + (" (--force)" if settings.force else ""))
    for i, part in enumerate(parts):
        key = f"batch_{i:04d}"
        yield dg.DynamicOutput(CustomerBatch(key, part, workers), mapping_key=key, output_name="batches")
    yield dg.Output(MonthPlan(month=month, out_dir=settings.out_dir, folder=str(plan.folder), names=plan.names, reused=plan.reused,
                              to_render=todo, batches=len(parts),
                              cutoff=reports[0].cutoff.isoformat() if reports else "n/a",
                              plan_s=time.perf_counter() - t0, started=started), output_name="plan")


@dg.op(description="Render one batch of customer PDFs (and their manifests); reads no warehouse.")
def render_customer_batch(context: dg.OpExecutionContext, batch: CustomerBatch) -> BatchResult:
    t0 = time.perf_counter()
    total = len(batch.jobs)

    def progress(done: int, _total: int) -> None:
        if done == total or done % 100 == 0:
            context.log.info(f"{batch.key}: {done}/{total} customer PDFs")

    rendered = report_batch.render_reports(batch.jobs, workers=batch.workers, progress=progress)
    wall = time.perf_counter() - t0
    context.log.info(f"{batch.key}: rendered {total} customer PDFs in {wall:.1f}s (pid {os.getpid()})")
    return BatchResult(batch.key, tuple(rendered), os.getpid(), wall)


@dg.op(out=dg.Out(dg.Nothing),
       description="Delete PDFs that are no longer the month's; report rendered and reused.")
def collect_customer_reports(context: dg.OpExecutionContext, plan: MonthPlan, batches: list[BatchResult]) -> None:
    removed = report_batch.finish_customer_reports(plan.out_dir, plan.month, plan.names)
    rendered = [r for b in sorted(batches, key=lambda b: b.key) for r in b.rendered]
    stages = {k: sum(getattr(r, f"{k}_s") for r in rendered) for k in ("charts", "html", "pdf")}
    pids = sorted({r.pid for r in rendered})
    context.log.info(f"{plan.month}: rendered {len(rendered)}, reused {len(plan.reused)} customer PDFs"
                     + (f" in {len(pids)} process(es)" if rendered else ""))
    context.add_output_metadata({
        "month": plan.month,
        "count": len(plan.names),
        "rendered": len(rendered),
        "reused": len(plan.reused),
        "batches": len(batches),
        "render processes": len(pids),
        "render pids": ", ".join(str(p) for p in pids),
        "output folder": dg.MetadataValue.path(plan.folder),
        "cut-off": plan.cutoff,
        "wall seconds": round(time.time() - plan.started, 1),
        "plan seconds": round(plan.plan_s, 2),
        "stale PDFs removed": len(removed),
        "batch seconds (summed)": round(sum(b.wall_s for b in batches), 1),
        "render CPU seconds (workers and their chromium)": round(sum(r.cpu_s + r.chromium_cpu_s for r in rendered), 1),
        **{f"{k} seconds (summed over workers)": round(v, 1) for k, v in stages.items()},
    })


@dg.graph_asset(group_name="reports", partitions_def=monthly_partitions,
                ins={"monthly_sla": dg.AssetIn(dagster_type=dg.Nothing)},
                description="One compliance PDF per customer with a contract or incidents in the month: "
                "`<out>/<YYYY-MM>/customers/<customer_id>-<slug>.pdf`, each written to a temporary name and "
                "renamed, with a manifest of its fingerprint; only new or changed reports are rendered "
                "(`--force` / `settings.force`: all). Rendered in batches that the executor spreads over "
                "processes or machines (in process: one batch over every core).")
def customer_reports(monthly_sla):
    batches, plan = plan_customer_reports(monthly_sla)
    return collect_customer_reports(plan, batches.map(render_customer_batch).collect())
