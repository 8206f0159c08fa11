"""Billing: the yearly Gold billing report for finance (PDF + CSV), one partition per year."""

import dagster as dg

from assets.billing import gold_reconciliation
from assets.metrics import incident_sla
from pipelines.partitions import yearly_partitions
from pipelines.resources import SlaSettings, WarehouseResource
from reports.billing import report_paths, write_billing_pdf
from reports.billing_csv import write_reconciliation_csv
from sla.report_data.billing import build_billing_report, reconciliation_rows, warehouse_cutoff


@dg.asset(group_name="billing", deps=[gold_reconciliation, incident_sla], partitions_def=yearly_partitions,
          description="Finance report of one year: `<out>/billing/gold-billing-<YYYY>.pdf` (totals, one "
          "section per Gold customer, quota use and Gold compliance) and the same lines as "
          "`<out>/billing/gold-reconciliation-<YYYY>.csv` (formula-neutralised text cells).")
def gold_billing_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        settings: SlaSettings) -> dg.MaterializeResult:
    year = int(context.partition_key)
    pdf_path, csv_path = report_paths(settings.out_dir, year)
    with warehouse.connect() as con:  # read only in effect; released before the (slow) rendering
        # as of the warehouse's cut-off (that of gold_reconciliation), not settings.cutoff(): a
        # re-render (`sla report billing`) then gives the same bytes
        as_of = warehouse_cutoff(con)
        vm = build_billing_report(con, settings.policy(), year, as_of)
        rows = reconciliation_rows(con, year)
    lines = write_reconciliation_csv(rows, csv_path)
    write_billing_pdf(vm, pdf_path)
    context.log.info(f"gold_billing_report {year}: {lines} lines, {len(vm.customers)} customers -> {pdf_path}")
    return dg.MaterializeResult(metadata={
        "year": year, "as_of": as_of.isoformat(), "lines": lines, "customers": len(vm.customers),
        "owed_eur": str(vm.totals.owed), "invoiced_eur": str(vm.totals.invoiced),
        "difference_eur": str(vm.totals.difference),
        "pdf": dg.MetadataValue.path(str(pdf_path)), "csv": dg.MetadataValue.path(str(csv_path)),
    })
