"""Monthly and yearly partitions in the business timezone of the policy (`calendar.timezone`).

A month is a local calendar month of creation; a year is a calendar year of Gold service.
"""

import dagster as dg

from pipelines.settings import load_settings
from sla.policy import load_policy

#: the partitions follow the policy's calendar, read once when the definitions load
BUSINESS_TIMEZONE = load_policy(load_settings().policy).calendar.timezone

#: end_offset=1: the month in progress is a partition too (a report "month to date")
monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date="2015-01-01", timezone=BUSINESS_TIMEZONE, end_offset=1
)

#: one partition per calendar year (key 'YYYY'); end_offset=1 so that the year in progress is one too
yearly_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *", fmt="%Y", start="2015", timezone=BUSINESS_TIMEZONE, end_offset=1,
)


def partition_month(partition_key: str) -> str:
    """'2026-03-01' -> '2026-03'."""
    return partition_key[:7]


def month_partition_key(month: str) -> str:
    """'2026-03' -> '2026-03-01'."""
    return f"{month}-01"
