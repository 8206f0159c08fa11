"""Metrics: per-incident SLA figures (whole history, as of the cut-off) and monthly aggregates."""

import dagster as dg

from assets.ingest import raw_import
from pipelines.partitions import monthly_partitions, partition_month
from pipelines.resources import SlaSettings, WarehouseResource
from sla.steps import compute_metrics, compute_month, month_slice_counts


@dg.asset(group_name="metrics", deps=[raw_import],
          description="One row per incident as of the data's cut-off (data-contract.md B), plus the "
          "clock segments that explain each figure (`incident_clock_segments`), the tickets whose figures "
          "rest on a tie-break (`data_warnings`) and the monthly tables of every month (`monthly_sla`, "
          "`monthly_quota`), all as of that cut-off. Incremental: only incidents whose history changed "
          "since the last computation (or that depend on the cut-off) are recomputed, unless the "
          "settings resource's `full_recompute` is set or a global input (policy, calendar) changed.")
def incident_sla(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 settings: SlaSettings) -> dg.MaterializeResult:
    as_of = settings.cutoff()
    with warehouse.connect() as con:
        run = compute_metrics(con, settings.policy(), as_of, full=settings.full_recompute)
    context.log.info(f"incident_sla as of {as_of.isoformat()}: {run.describe()}")
    return dg.MaterializeResult(metadata={"incidents": run.incidents, "as_of": as_of.isoformat(),
                                          "mode": run.mode, "recomputed": run.recomputed,
                                          "re-ranked": run.reranked,
                                          "full because": run.reason})


@dg.asset(group_name="metrics", deps=[incident_sla], partitions_def=monthly_partitions,
          description="One month's slice of `monthly_sla` and `monthly_quota` (per month x customer x tier "
          "x severity: counts, quota use, met/breached/pending, compliance rates, median and p90 business "
          "times). `incident_sla` rebuilds these tables for every month as of its cut-off; this partition "
          "reads its month and reports the row counts.")
def monthly_sla(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    month = partition_month(context.partition_key)
    with warehouse.connect() as con:
        groups = compute_month(con, month)
        counts = month_slice_counts(con, month)
    return dg.MaterializeResult(metadata={
        "month": month, "customer groups": groups, "monthly_sla rows": counts["monthly_sla_rows"],
        "monthly_quota rows": counts["monthly_quota_rows"],
        "as_of": counts["as_of"].isoformat() if counts["as_of"] else ""})
