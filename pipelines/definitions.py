"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources."""

import dagster as dg

from assets import billing, billing_report, checks, dashboard, delivery, ingest, metrics, reports
from assets.sync import sync_assets
from pipelines.jobs import (
    customer_reports_fanout_job,
    gold_billing_job,
    hourly_sync_job,
    monthly_reporting_job,
    refresh_month_job,
)
from pipelines.resources import configured_api_sources, resources_from_settings
from pipelines.schedules import gold_billing_schedule, hourly_sync_schedule, monthly_reporting_schedule
from pipelines.sensors import changed_months_sensor
from pipelines.settings import load_settings

SETTINGS = load_settings()

ASSET_MODULES = [ingest, metrics, billing, billing_report, reports, dashboard, delivery]

defs = dg.Definitions(
    assets=[*dg.load_assets_from_modules(ASSET_MODULES), *sync_assets(configured_api_sources(SETTINGS))],
    asset_checks=dg.load_asset_checks_from_modules([checks]),
    jobs=[monthly_reporting_job, gold_billing_job, hourly_sync_job, refresh_month_job, customer_reports_fanout_job],
    schedules=[monthly_reporting_schedule, gold_billing_schedule, hourly_sync_schedule],
    sensors=[changed_months_sensor],
    resources=resources_from_settings(SETTINGS),
    # DuckDB has one writer per file: run every step of a run in one process, one after another
    # (dagster.yaml also queues runs one at a time). customer_reports_fanout has its own executor:
    # only its first step reads the warehouse.
    executor=dg.in_process_executor,
)


def customer_reports_fanout() -> dg.JobDefinition:
    """`customer_reports_fanout` with its resources, as a module-level target for
    `dg.execute_job(dg.reconstructable(customer_reports_fanout), ...)`: every step process imports
    this module and resolves the job again, with the settings of its environment (SLA_*)."""
    return defs.resolve_job_def("customer_reports_fanout")
