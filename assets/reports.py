"""Reports: the monthly customer compliance PDFs (one per customer of the month)."""

import dagster as dg

from assets.metrics import monthly_sla
from pipelines.partitions import monthly_partitions, partition_month
from pipelines.resources import SlaSettings, WarehouseResource
from reports.batch import write_customer_reports
from sla.report_data.customer import build_customer_reports


@dg.asset(group_name="reports", deps=[monthly_sla], partitions_def=monthly_partitions,
          description="One compliance PDF per customer with a contract or incidents in the month: "
          "`<out>/<YYYY-MM>/customers/<customer_id>-<slug>.pdf`, rendered in parallel over the "
          "machine's cores, each written to a temporary name and renamed.")
def customer_reports(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                     settings: SlaSettings) -> dg.MaterializeResult:
    month = partition_month(context.partition_key)
    with warehouse.connect() as con:  # closed before rendering: no lock held for minutes
        reports = build_customer_reports(con, settings.policy(), month)
    written = write_customer_reports(
        reports, settings.out_dir, month,
        progress=lambda done, total: context.log.info(f"{done}/{total} customer PDFs")
        if done == total or done % 100 == 0 else None)
    stages = {k: sum(getattr(r, f"{k}_s") for r in written.rendered) for k in ("charts", "html", "pdf")}
    return dg.MaterializeResult(metadata={
        "month": month,
        "count": len(written.paths),
        "output folder": dg.MetadataValue.path(str(written.folder)),
        "cut-off": reports[0].cutoff.isoformat() if reports else "n/a",
        "wall seconds": round(written.wall_s, 1),
        "stale PDFs removed": len(written.removed),
        **{f"{k} seconds (summed over workers)": round(v, 1) for k, v in stages.items()},
    })
