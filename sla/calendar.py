"""Business calendar: business time between instants and due instants, exact to the second.

One row per business day holds the day's opening and closing instants in UTC (so DST is
handled once, when the row is built) and the business seconds of all earlier business days
(`cum_before`). Then, for an instant t,

    clock(t) = cum_before(d) + clamp(t - open(d), 0, length(d))   where d = last day opened <= t

is the business time elapsed since the calendar's start. The business time between a and b
is clock(b) - clock(a) (0 for a reversed interval), and a due instant is the inverse lookup.
DuckDB does the same with an ASOF join over the same rows (see `sla/sql/metrics.sql`),
and this module's Python API answers single calls over the same rows.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import holidays as holidays_lib
import pyarrow as pa

from sla.db import derived_tables_current, record_derived_tables
from sla.policy import CalendarPolicy, parse_hours

UTC = dt.timezone.utc


@dataclass(frozen=True)
class BusinessDay:
    day: dt.date
    open_epoch: int  # seconds since 1970-01-01T00:00Z
    close_epoch: int
    cum_before: int  # business seconds of all earlier business days in the table

    @property
    def seconds(self) -> int:
        return self.close_epoch - self.open_epoch


def _epoch(local_day: dt.date, t: dt.time, tz) -> int:
    # fold=0: for a wall time that does not exist or repeats (DST), take the first reading.
    return int(dt.datetime.combine(local_day, t, tzinfo=tz).timestamp())


def _holiday_dates(policy: CalendarPolicy, first: dt.date, last: dt.date) -> dict[dt.date, str]:
    if policy.holidays.country is None:
        return {}
    hol = holidays_lib.country_holidays(
        policy.holidays.country,
        subdiv=policy.holidays.subdivision,
        years=range(first.year, last.year + 1),
    )
    return dict(hol.items())


def build_business_days(policy: CalendarPolicy, first: dt.date, last: dt.date, cum: int = 0) -> list[BusinessDay]:
    """Business days from `first` to `last` (local dates, inclusive); `cum` = business seconds before `first`."""
    tz = policy.tz
    holidays = _holiday_dates(policy, first, last)
    closed = set(policy.extra_closed_dates)
    opened = {o.date: (parse_hours(o.hours) if o.hours else policy.default_open_window()) for o in policy.extra_open_dates}
    days: list[BusinessDay] = []
    day = first
    one = dt.timedelta(days=1)
    while day <= last:
        window = opened.get(day)
        if window is None and day not in closed and day not in holidays:
            window = policy.window_for_weekday(day.weekday())
        if window is not None:
            open_e = _epoch(day, window[0], tz)
            close_e = _epoch(day, window[1], tz) + (1 if window[1] == dt.time.max.replace(microsecond=0) else 0)
            days.append(BusinessDay(day, open_e, close_e, cum))
            cum += close_e - open_e
        day += one
    return days


def build_versioned_business_days(periods: list[tuple[dt.date, dt.date, CalendarPolicy]], first: dt.date,
                                  last: dt.date) -> list[BusinessDay]:
    """Business days from `first` to `last`, each day by the calendar of the policy version in force that
    day (sla-semantics.md section 6): `periods` are (first day, last day, calendar) covering the range.
    One table of rows, so every lookup stays the same single set-based join."""
    days: list[BusinessDay] = []
    cum = 0
    for start, end, calendar in periods:
        s, e = max(start, first), min(end, last)
        if s > e:
            continue
        part = build_business_days(calendar, s, e, cum)
        if part:
            cum = part[-1].cum_before + part[-1].seconds
        days.extend(part)
    return days


def _to_epoch(t: dt.datetime) -> int:
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t!r}: business time needs an offset")
    return int(t.timestamp() // 1)


class BusinessCalendar:
    """Single-call API over the calendar rows (the DuckDB table holds the same rows)."""

    def __init__(self, days: list[BusinessDay]):
        if not days:
            raise ValueError("the business calendar has no business day")
        self.days = days
        self._opens = [d.open_epoch for d in days]
        self._cum_end = [d.cum_before + d.seconds for d in days]

    @classmethod
    def from_policy(cls, policy: CalendarPolicy, first: dt.date, last: dt.date) -> "BusinessCalendar":
        return cls(build_business_days(policy, first, last))

    @classmethod
    def from_duckdb(cls, con, table: str = "business_calendar") -> "BusinessCalendar":
        rows = con.execute(f"SELECT day, open_epoch, close_epoch, cum_before FROM {table} ORDER BY open_epoch").fetchall()
        return cls([BusinessDay(*r) for r in rows])

    @cached_property
    def first_day(self) -> dt.date:
        return self.days[0].day

    @cached_property
    def last_day(self) -> dt.date:
        return self.days[-1].day

    def clock(self, t: dt.datetime) -> int:
        """Business seconds elapsed from the calendar's start up to instant t."""
        e = _to_epoch(t)
        i = bisect.bisect_right(self._opens, e) - 1
        if i < 0:
            return 0
        d = self.days[i]
        return d.cum_before + min(max(e - d.open_epoch, 0), d.seconds)

    def business_seconds(self, start: dt.datetime, end: dt.datetime) -> int:
        """Length in seconds of the overlap of [start, end] with business hours; 0 if end <= start."""
        return max(self.clock(end) - self.clock(start), 0)

    def due(self, start: dt.datetime, target_seconds: int) -> dt.datetime:
        """Earliest instant at which `target_seconds` of business time have elapsed since start.

        A target that is reached exactly at closing time is due at closing time that day.
        """
        if target_seconds <= 0:
            return start
        goal = self.clock(start) + target_seconds
        i = bisect.bisect_left(self._cum_end, goal)
        if i >= len(self.days):
            raise ValueError(f"due instant beyond the calendar's last day {self.last_day}")
        d = self.days[i]
        return dt.datetime.fromtimestamp(d.open_epoch + goal - d.cum_before, UTC)

    def is_open(self, t: dt.datetime) -> bool:
        e = _to_epoch(t)
        i = bisect.bisect_right(self._opens, e) - 1
        return i >= 0 and e < self.days[i].close_epoch

    def to_arrow(self) -> pa.Table:
        return pa.table(
            {
                "day": pa.array([d.day for d in self.days], pa.date32()),
                "open_epoch": pa.array(self._opens, pa.int64()),
                "close_epoch": pa.array([d.close_epoch for d in self.days], pa.int64()),
                "business_seconds": pa.array([d.seconds for d in self.days], pa.int64()),
                "cum_before": pa.array([d.cum_before for d in self.days], pa.int64()),
                "cum_end": pa.array(self._cum_end, pa.int64()),
            }
        )


@dataclass(frozen=True)
class ClockBuckets:
    """Bucketing that turns the calendar's ASOF lookups into hash equi-joins.

    Every opening epoch is a multiple of `clock_bucket` seconds (from `clock_base`), so the last
    business day opened at or before t is the same for all t in one bucket: row
    k = least(greatest(t - clock_base, 0) // clock_bucket, clock_max) of `business_clock_buckets`.
    Every day length is a multiple of `due_bucket`, so the day holding business second `goal`
    (cum_before < goal <= cum_end) is row (goal - 1) // due_bucket of `business_due_buckets`.
    """

    clock_bucket: int
    clock_base: int
    clock_max: int
    due_bucket: int
    due_rows: int

    @classmethod
    def of(cls, calendar: "BusinessCalendar") -> "ClockBuckets":
        opens = calendar._opens
        b = math.gcd(*opens)
        g = math.gcd(*(d.seconds for d in calendar.days))
        base = opens[0] - opens[0] % b
        last = calendar.days[-1]
        return cls(b, base, (last.close_epoch - base) // b + 1, g, (last.cum_before + last.seconds) // g)

    def sql_params(self) -> dict[str, int]:
        return {"clock_bucket": self.clock_bucket, "clock_base": self.clock_base,
                "clock_max": self.clock_max, "due_bucket": self.due_bucket}


def write_business_calendar(con, calendar: BusinessCalendar, table: str = "business_calendar") -> int:
    """(Re)create the calendar table in DuckDB from the same rows the Python API uses,
    plus its two bucket tables (`<table>` -> `business_clock_buckets`, `business_due_buckets`)."""
    arrow_days = calendar.to_arrow()  # noqa: F841 - referenced by name in the SQL below
    con.execute(f"DROP TABLE IF EXISTS {table}")
    con.execute(
        f"""
        CREATE TABLE {table} AS
        SELECT day,
               to_timestamp(open_epoch)  AS open_utc,
               to_timestamp(close_epoch) AS close_utc,
               open_epoch, close_epoch, business_seconds, cum_before, cum_end
        FROM arrow_days ORDER BY open_epoch
        """
    )
    bk = ClockBuckets.of(calendar)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE business_clock_buckets AS
        SELECT r.k, coalesce(c.open_epoch, 0) AS open_epoch, coalesce(c.business_seconds, 0) AS business_seconds,
               coalesce(c.cum_before, 0) AS cum_before
        FROM range(0, {bk.clock_max + 1}) r(k)
        ASOF LEFT JOIN {table} c ON {bk.clock_base} + r.k * {bk.clock_bucket} >= c.open_epoch
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE business_due_buckets AS
        SELECT r.q, c.open_epoch, c.cum_before
        FROM range(0, {bk.due_rows}) r(q) ASOF JOIN {table} c ON r.q * {bk.due_bucket} >= c.cum_before
        """
    )
    return len(calendar.days)


#: the tables write_business_calendar writes
CALENDAR_TABLES = ("business_calendar", "business_clock_buckets", "business_due_buckets")


def calendar_source_key(periods: list[tuple[dt.date, dt.date, CalendarPolicy]], first: dt.date, last: dt.date) -> str:
    """Everything the calendar tables are built from: the calendars of the policy versions and their
    dates, the date range, the holidays package's version and this module's code."""
    spec = [[start.isoformat(), end.isoformat(), calendar.model_dump(mode="json")] for start, end, calendar in periods]
    text = json.dumps([spec, first.isoformat(), last.isoformat(), holidays_lib.__version__], sort_keys=True)
    return hashlib.sha256(text.encode() + Path(__file__).read_bytes()).hexdigest()


def ensure_business_calendar(con, periods: list[tuple[dt.date, dt.date, CalendarPolicy]], first: dt.date,
                             last: dt.date) -> ClockBuckets:
    """The calendar tables of `periods` from `first` to `last` in `con`, and their bucketing.

    Built (in Python, about 0.07 s) and written only when what they are built from changed, or the
    tables did, since they were written: an incremental metrics run at an unchanged policy and
    range reuses them."""
    key = calendar_source_key(periods, first, last)
    stored = derived_tables_current(con, "business_calendar", key, CALENDAR_TABLES)
    if stored is not None:
        return ClockBuckets(**json.loads(stored))
    calendar = BusinessCalendar(build_versioned_business_days(periods, first, last))
    write_business_calendar(con, calendar)
    buckets = ClockBuckets.of(calendar)
    record_derived_tables(con, "business_calendar", key, CALENDAR_TABLES, json.dumps(dataclasses.asdict(buckets)))
    return buckets
