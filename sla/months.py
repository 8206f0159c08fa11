"""Months as the reports name them: 'YYYY-MM', a local calendar month of the business timezone.

One home for month arithmetic, compliance rates and other small rules that every report product
shares, so a change lands in one place.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal


def parse_month(month: str) -> tuple[int, int]:
    """'2026-02' -> (2026, 2); a clear ValueError for anything else."""
    try:
        year, mon = (int(x) for x in month.split("-"))
    except (ValueError, AttributeError):
        raise ValueError(f"month must be YYYY-MM, got {month!r}") from None
    if len(month) != 7 or not 1 <= mon <= 12 or year < 1:
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return year, mon


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """'2026-02' -> (2026-02-01, 2026-02-28), local dates."""
    year, mon = parse_month(month)
    first = dt.date(year, mon, 1)
    return first, shift_month_start(first, 1) - dt.timedelta(days=1)


def shift_month(month: str, k: int) -> str:
    """'2026-11' shifted by 2 -> '2027-01'."""
    year, mon = parse_month(month)
    n = year * 12 + (mon - 1) + k
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def shift_month_start(day: dt.date, k: int) -> dt.date:
    """The first day of the month k months after `day`'s month."""
    n = day.year * 12 + (day.month - 1) + k
    return dt.date(n // 12, n % 12 + 1, 1)


def month_range(first: str, last: str) -> list[str]:
    """Every month from `first` to `last`, both included."""
    out, m = [], first
    while m <= last:
        out.append(m)
        m = shift_month(m, 1)
    return out


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def local_month(instant: dt.datetime, tz) -> str:
    """The local calendar month of an instant."""
    return month_of(instant.astimezone(tz).date())


def last_complete_month(as_of: dt.datetime, tz) -> str:
    """The default reporting month: the last local month that ended before the cut-off."""
    return shift_month(local_month(as_of, tz), -1)


def rate(met: int, breached: int) -> Decimal | None:
    """Compliance rate met / (met + breached), exact; None when nothing was rated."""
    return Decimal(met) / Decimal(met + breached) if met + breached else None
