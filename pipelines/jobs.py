import dagster as dg

#: import, metrics and every report of one month
monthly_reporting_job = dg.define_asset_job(
    "monthly_reporting", selection=dg.AssetSelection.all(),
    description="Import the ticket source, recompute the SLA figures and render the month's reports.",
)
