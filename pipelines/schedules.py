"""Schedules: monthly reports, the Gold billing refresh and the hourly sync (shipped stopped)."""

import datetime as dt

import dagster as dg

from pipelines.jobs import gold_billing_job, hourly_sync_job, monthly_reporting_job
from pipelines.partitions import BUSINESS_TIMEZONE


@dg.schedule(job=monthly_reporting_job, cron_schedule="0 6 1 * *", execution_timezone=BUSINESS_TIMEZONE)
def monthly_reporting_schedule(context: dg.ScheduleEvaluationContext):
    """On the 1st of each month at 06:00 local time, the month that just ended is reported (the
    partitions include the month in progress, so the schedule names the month it means)."""
    day_before = context.scheduled_execution_time - dt.timedelta(days=1)
    return dg.RunRequest(run_key=f"monthly-{day_before:%Y-%m}", partition_key=f"{day_before:%Y-%m}-01")


@dg.schedule(job=gold_billing_job, cron_schedule="0 7 1 * *", execution_timezone=BUSINESS_TIMEZONE)
def gold_billing_schedule(context: dg.ScheduleEvaluationContext):
    """Monthly refresh of the year of the month that just ended (January refreshes last year)."""
    day_before = context.scheduled_execution_time - dt.timedelta(days=1)
    return dg.RunRequest(run_key=f"gold-billing-{day_before:%Y-%m}", partition_key=str(day_before.year))


hourly_sync_schedule = dg.ScheduleDefinition(
    name="hourly_sync_schedule", job=hourly_sync_job, cron_schedule="5 * * * *",
    execution_timezone=BUSINESS_TIMEZONE, default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every hour at :05. Start it in the UI or with `dagster schedule start` once a connector is set.",
)
