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
