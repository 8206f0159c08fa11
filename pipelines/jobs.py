"""Asset jobs: the monthly reporting, the yearly Gold billing report and the hourly sync."""

import dagster as dg

#: import, metrics and every report of one month (the yearly billing report has its own job)
monthly_reporting_job = dg.define_asset_job(
    "monthly_reporting",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets("gold_billing_report"),
    description="Import the ticket source, recompute the SLA figures and render the month's reports.",
)

gold_billing_job = dg.define_asset_job(
    "gold_billing", selection=dg.AssetSelection.assets("gold_billing_report"),
    description="Render the Gold billing report (PDF + CSV) of one year.",
)

#: sync every configured API source, then import and recompute the unpartitioned figures
hourly_sync_job = dg.define_asset_job(
    "hourly_sync",
    selection=dg.AssetSelection.groups("sync") | dg.AssetSelection.assets("raw_import", "incident_sla",
                                                                          "gold_reconciliation"),
    description="Fetch what changed in the ticket system, import it and recompute the incident figures.",
)

#: the monthly aggregates of one month, rebuilt for the months a sync touched
refresh_month_job = dg.define_asset_job(
    "refresh_changed_month", selection=dg.AssetSelection.assets("monthly_sla"),
    description="Rebuild one month's aggregates after a sync changed incidents created in it.",
)
