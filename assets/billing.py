"""Billing: Gold reconciliation of invoices against Gold contract days."""

import dagster as dg

from assets.ingest import raw_import
from pipelines.resources import SlaSettings, WarehouseResource
from sla.billing import compute_gold_reconciliation
from sla.steps import transaction


@dg.asset(group_name="billing", deps=[raw_import],
          description="One line per invoice and per run of unbilled Gold days up to the cut-off "
          "(data-contract.md B): owed vs invoiced, status ok / under_billed / over_billed / not_gold / "
          "overlap / not_invoiced.")
def gold_reconciliation(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        settings: SlaSettings) -> dg.MaterializeResult:
    as_of = settings.cutoff()
    with warehouse.connect() as con, transaction(con):
        lines = compute_gold_reconciliation(con, settings.policy(), as_of)
        by_status = dict(con.execute("SELECT status, count(*) FROM gold_reconciliation GROUP BY 1 ORDER BY 1").fetchall())
    context.log.info(f"gold_reconciliation: {lines} lines {by_status}")
    return dg.MaterializeResult(metadata={"lines": lines, **{f"status {k}": v for k, v in by_status.items()}})
