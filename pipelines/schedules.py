import dagster as dg

from pipelines.jobs import monthly_reporting_job

#: On the 1st of each month at 06:00 Berlin time, the month that just ended is reported.
monthly_reporting_schedule = dg.build_schedule_from_partitioned_job(
    monthly_reporting_job, hour_of_day=6, minute_of_hour=0,
)
