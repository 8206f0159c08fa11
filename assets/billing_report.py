"""Billing: the yearly Gold billing report for finance (PDF + CSV), one partition per year."""

import dagster as dg

from assets.billing import gold_reconciliation
from assets.metrics import incident_sla
from pipelines.partitions import yearly_partitions
from pipelines.resources import SlaSettings, WarehouseResource
from reports import fingerprint
from reports.billing import report_paths, write_billing_pdf
from reports.billing_csv import write_reconciliation_csv, write_reconciliation_xlsx
from sla.report_data.billing import build_billing_report, open_item_rows, reconciliation_rows, warehouse_cutoff


@dg.asset(group_name="billing", deps=[gold_reconciliation, incident_sla], partitions_def=yearly_partitions,
          description="Finance report of one year: `<out>/billing/gold-billing-<YYYY>.pdf` (page 1: the "
          "year's service view and every open item of any year; then invoices issued in the year, unbilled "
          "runs, one section per customer, renewal context in an appendix) and the lines as "
          "`<out>/billing/gold-reconciliation-<YYYY>.csv` (dialect SLA_CSV_LOCALE) and `.xlsx` "
          "(formula-neutralised text cells). Rewritten only when their fingerprint (data, CSV dialect, template, "
          "renderer) changed, or with `settings.force`.")
def gold_billing_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        settings: SlaSettings) -> dg.MaterializeResult:
    year = int(context.partition_key)
    pdf_path, csv_path, xlsx_path = report_paths(settings.out_dir, year)
    with warehouse.connect() as con:  # read only in effect; released before the (slow) rendering
        # as of the warehouse's cut-off (that of gold_reconciliation), not settings.cutoff(): a
        # re-render (`sla report billing`) then gives the same bytes
        as_of = warehouse_cutoff(con)
        vm = build_billing_report(con, settings.policy(), year, as_of)
        rows = reconciliation_rows(con, year)
        open_items = open_item_rows(con, year)

    def write() -> None:
        write_reconciliation_csv(rows, csv_path, settings.csv_locale)
        write_reconciliation_xlsx(rows, xlsx_path, open_items, created=as_of)
        write_billing_pdf(vm, pdf_path)

    fp = fingerprint.fingerprint(vm, rows, open_items, settings.csv_locale, as_of)
    rendered = fingerprint.refresh([pdf_path, csv_path, xlsx_path], fp, write, root=settings.out_dir,
                                   force=settings.force)
    lines = len(rows)
    context.log.info(f"gold_billing_report {year}: {lines} lines, {len(vm.customers)} customers -> {pdf_path} "
                     f"({'rendered' if rendered else 'unchanged, reused'})")
    return dg.MaterializeResult(metadata={
        "year": year, "rendered": int(rendered), "reused": int(not rendered), "as_of": as_of.isoformat(),
        "lines": lines, "customers": len(vm.customers),
        "owed_eur": str(vm.totals.owed), "invoiced_eur": str(vm.totals.invoiced),
        "difference_eur": str(vm.totals.difference),
        "open_items": len(vm.open_items), "open_to_invoice_eur": str(vm.open_to_invoice),
        "open_to_credit_eur": str(vm.open_to_credit),
        "pdf": dg.MetadataValue.path(str(pdf_path)), "csv": dg.MetadataValue.path(str(csv_path)),
        "xlsx": dg.MetadataValue.path(str(xlsx_path)),
    })
