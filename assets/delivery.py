"""Delivery: e-mail the month's customer PDFs to account managers (off unless SLA_DELIVER=1)."""

import dagster as dg

from assets.reports import customer_reports
from pipelines.partitions import monthly_partitions, partition_month
from pipelines.resources import SlaSettings, SmtpResource, WarehouseResource
from sla.delivery import deliver


@dg.asset(group_name="delivery", deps=[customer_reports], partitions_def=monthly_partitions,
          description="One e-mail per account manager with their customers' PDFs; idempotent via "
          "`delivery_log`. Does nothing unless delivery is enabled (SLA_DELIVER=1).")
def report_delivery(context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SlaSettings,
                    smtp: SmtpResource) -> dg.MaterializeResult:
    month = partition_month(context.partition_key)
    if not smtp.enabled:
        context.log.info("delivery is disabled (set SLA_DELIVER=1 and SLA_SMTP_HOST to enable)")
        return dg.MaterializeResult(metadata={"month": month, "enabled": False})
    settings_smtp = smtp.settings()
    if settings_smtp is None:
        raise dg.Failure("delivery is enabled but SLA_SMTP_HOST is not set")
    with warehouse.connect() as con:
        result = deliver(con, settings.out_dir, month, settings_smtp)
    context.log.info(result.text())
    if result.failed:
        raise dg.Failure(f"{len(result.failed)} message(s) failed; they are retried on the next run",
                         metadata={"failed": ", ".join(result.failed)})
    return dg.MaterializeResult(metadata={"month": month, "sent": len(result.sent), "skipped": len(result.skipped)})
