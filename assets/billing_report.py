"""Billing: the yearly Gold billing report for finance (PDF + CSV), one partition per year."""

import dagster as dg

from assets.billing import gold_reconciliation
from assets.metrics import incident_sla
from pipelines.partitions import BUSINESS_TIMEZONE
from pipelines.resources import SlaSettings, WarehouseResource
from reports.billing import write_billing_pdf
from sla.billing_report import build_billing_report, export_reconciliation_csv, report_paths, warehouse_cutoff

#: one partition per calendar year (key 'YYYY'), local time; end_offset=1 so that the year in
#: progress (usually the cut-off's year) is a partition too
yearly_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *", fmt="%Y", start="2015", timezone=BUSINESS_TIMEZONE, end_offset=1,
)


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
        lines = export_reconciliation_csv(con, year, csv_path)
    write_billing_pdf(vm, pdf_path)
    context.log.info(f"gold_billing_report {year}: {lines} lines, {len(vm.customers)} customers -> {pdf_path}")
    return dg.MaterializeResult(metadata={
        "year": year, "as_of": as_of.isoformat(), "lines": lines, "customers": len(vm.customers),
        "owed_eur": str(vm.totals.owed), "invoiced_eur": str(vm.totals.invoiced),
        "difference_eur": str(vm.totals.difference),
        "pdf": dg.MetadataValue.path(str(pdf_path)), "csv": dg.MetadataValue.path(str(csv_path)),
    })
