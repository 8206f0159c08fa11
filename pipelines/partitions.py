"""Monthly partitions in the business timezone (a month = local calendar month of creation)."""

import dagster as dg

BUSINESS_TIMEZONE = "Europe/Berlin"

monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date="2015-01-01", timezone=BUSINESS_TIMEZONE, end_offset=0
)


def partition_month(partition_key: str) -> str:
    """'2026-03-01' -> '2026-03'."""
    return partition_key[:7]


def month_partition_key(month: str) -> str:
    """'2026-03' -> '2026-03-01'."""
    return f"{month}-01"
