"""The one Definitions object: assets, checks, jobs, schedules and resources."""

import dagster as dg

from assets import billing, checks, ingest, metrics
from pipelines.jobs import monthly_reporting_job
from pipelines.resources import resources_from_env
from pipelines.schedules import monthly_reporting_schedule

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingest, metrics, billing]),
    asset_checks=dg.load_asset_checks_from_modules([checks]),
    jobs=[monthly_reporting_job],
    schedules=[monthly_reporting_schedule],
    resources=resources_from_env(),
    # DuckDB has one writer per file: run every step of a run in one process, one after another
    # (dagster.yaml also queues runs one at a time).
    executor=dg.in_process_executor,
)
