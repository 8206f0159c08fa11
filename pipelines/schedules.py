import datetime as dt

import dagster as dg

from pipelines.jobs import gold_billing_job, monthly_reporting_job

#: On the 1st of each month at 06:00 Berlin time, the month that just ended is reported.
monthly_reporting_schedule = dg.build_schedule_from_partitioned_job(
    monthly_reporting_job, hour_of_day=6, minute_of_hour=0,
)


@dg.schedule(job=gold_billing_job, cron_schedule="0 7 1 * *", execution_timezone="Europe/Berlin")
def gold_billing_schedule(context: dg.ScheduleEvaluationContext):
    """Monthly refresh of the year of the month that just ended (January refreshes last year)."""
    day_before = context.scheduled_execution_time - dt.timedelta(days=1)
    return dg.RunRequest(run_key=f"gold-billing-{day_before:%Y-%m}", partition_key=str(day_before.year))
