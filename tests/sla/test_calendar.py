"""Business calendar against an independent brute-force reference (day-by-day walk)."""

import datetime as dt
from zoneinfo import ZoneInfo

import duckdb
import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar, write_business_calendar
from sla.policy import load_policy

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
POLICY = load_policy().calendar
CAL = BusinessCalendar.from_policy(POLICY, dt.date(2023, 1, 1), dt.date(2029, 12, 31))
DE_HOLIDAYS = holidays.country_holidays("DE", years=range(2023, 2030))


# -- the reference: walk the local days, build each window from wall-clock times ---------------
def ref_windows(first: dt.date, last: dt.date):
    day = first
    while day <= last:
        if day.weekday() < 5 and day not in DE_HOLIDAYS:
            yield (dt.datetime(day.year, day.month, day.day, 9, tzinfo=BERLIN),
                   dt.datetime(day.year, day.month, day.day, 17, tzinfo=BERLIN))
        day += dt.timedelta(days=1)


def ref_business_seconds(a: dt.datetime, b: dt.datetime) -> int:
    total = 0
    for open_, close in ref_windows(a.astimezone(BERLIN).date(), b.astimezone(BERLIN).date()):
        overlap = (min(b, close) - max(a, open_)).total_seconds()
        total += max(0, int(overlap))
    return total


def ref_due(start: dt.datetime, target: int) -> dt.datetime:
    remaining = target
    for open_, close in ref_windows(start.astimezone(BERLIN).date(), dt.date(2029, 12, 31)):
        begin = max(open_, start)
        if begin >= close:
            continue
        available = int((close - begin).total_seconds())
        if available >= remaining:
            return begin + dt.timedelta(seconds=remaining)
        remaining -= available
    raise AssertionError("beyond the reference range")


# -- instants biased to the hard places ---------------------------------------------------------
SPECIAL_DAYS = [
    dt.date(2025, 3, 30), dt.date(2025, 3, 31), dt.date(2025, 10, 26), dt.date(2025, 10, 27),  # DST
    dt.date(2026, 3, 27), dt.date(2026, 3, 29), dt.date(2026, 10, 23), dt.date(2026, 10, 25),
    dt.date(2025, 12, 24), dt.date(2025, 12, 25), dt.date(2025, 12, 26), dt.date(2026, 1, 1),   # holidays
    dt.date(2026, 4, 3), dt.date(2026, 4, 6), dt.date(2026, 5, 1), dt.date(2026, 10, 3),
    dt.date(2026, 3, 6), dt.date(2026, 3, 7), dt.date(2026, 3, 8),                               # a weekend
]
SPECIAL_TIMES = [dt.time(9), dt.time(17), dt.time(8, 59, 59), dt.time(9, 0, 1), dt.time(16, 59, 59),
                 dt.time(17, 0, 1), dt.time(0), dt.time(2, 30), dt.time(23, 59, 59), dt.time(12)]

days = st.one_of(st.sampled_from(SPECIAL_DAYS), st.dates(dt.date(2024, 1, 1), dt.date(2027, 12, 31)))
times = st.one_of(st.sampled_from(SPECIAL_TIMES), st.times().map(lambda t: t.replace(microsecond=0)))
instants = st.builds(lambda d, t: dt.datetime.combine(d, t, tzinfo=BERLIN).astimezone(UTC), days, times)
targets = st.one_of(st.sampled_from([1, 3600, 8 * 3600, 16 * 3600, 24 * 3600, 56 * 3600, 112 * 3600]),
                    st.integers(1, 200 * 3600))


@settings(max_examples=1500, deadline=None)
@given(a=instants, b=instants)
def test_business_seconds_equal_reference(a, b):
    expected = ref_business_seconds(a, b) if a <= b else 0
    assert CAL.business_seconds(a, b) == expected


@settings(max_examples=1500, deadline=None)
@given(start=instants, target=targets)
def test_due_equals_reference_and_inverts_duration(start, target):
    due = CAL.due(start, target)
    assert due == ref_due(start, target)
    assert CAL.business_seconds(start, due) == target
    # earliest: one second earlier is not enough
    assert CAL.business_seconds(start, due - dt.timedelta(seconds=1)) == target - 1


@settings(max_examples=300, deadline=None)
@given(a=instants, b=instants, c=instants)
def test_additive_over_a_split_point(a, b, c):
    a, b, c = sorted([a, b, c])
    assert CAL.business_seconds(a, c) == CAL.business_seconds(a, b) + CAL.business_seconds(b, c)


def berlin(*args):
    return dt.datetime(*args, tzinfo=BERLIN)


@pytest.mark.parametrize(
    "start, end, seconds, why",
    [
        (berlin(2026, 3, 6, 16), berlin(2026, 3, 9, 10), 2 * 3600, "Fri 16:00 -> Mon 10:00 skips the weekend"),
        (berlin(2026, 3, 9, 9), berlin(2026, 3, 9, 17), 8 * 3600, "exactly one business day"),
        (berlin(2026, 3, 9, 17), berlin(2026, 3, 10, 9), 0, "closing to opening is zero"),
        (berlin(2026, 3, 27, 16), berlin(2026, 3, 30, 10), 2 * 3600, "DST weekend (29 Mar) does not stretch the day"),
        (berlin(2026, 4, 2, 16), berlin(2026, 4, 7, 10), 2 * 3600, "Good Friday and Easter Monday closed"),
        (berlin(2025, 12, 23, 12), berlin(2025, 12, 29, 12), 5 * 3600 + 8 * 3600 + 3 * 3600,
         "24 Dec is a working day nationwide, 25/26 Dec are holidays"),
        (berlin(2026, 3, 10, 12), berlin(2026, 3, 10, 11), 0, "reversed interval is zero"),
        (berlin(2026, 3, 7, 10), berlin(2026, 3, 8, 18), 0, "weekend only"),
    ],
)
def test_hand_computed_durations(start, end, seconds, why):
    assert CAL.business_seconds(start, end) == seconds, why


@pytest.mark.parametrize(
    "start, target, due, why",
    [
        (berlin(2026, 3, 9, 9), 8 * 3600, berlin(2026, 3, 9, 17), "a target ending at closing is due 17:00, not next 09:00"),
        (berlin(2026, 3, 6, 16), 8 * 3600, berlin(2026, 3, 9, 16), "Fri 16:00 + 8h -> Mon 16:00"),
        (berlin(2026, 3, 7, 11), 3600, berlin(2026, 3, 9, 10), "created on Saturday: clock starts Monday 09:00"),
        (berlin(2026, 3, 9, 17), 1, berlin(2026, 3, 10, 9, 0, 1), "created at closing: next opening + 1 s"),
        (berlin(2026, 3, 27, 12), 16 * 3600, berlin(2026, 3, 31, 12), "over the DST switch"),
        (berlin(2026, 4, 2, 12), 8 * 3600, berlin(2026, 4, 7, 12), "over Easter"),
    ],
)
def test_hand_computed_due_instants(start, target, due, why):
    assert CAL.due(start, target) == due, why


def test_extra_closed_and_open_dates():
    policy = POLICY.model_copy(update={"extra_closed_dates": [dt.date(2026, 12, 24)]})
    policy = policy.model_validate({**policy.model_dump(), "extra_open_dates": [{"date": "2026-12-26", "hours": "10:00-12:00"}]})
    cal = BusinessCalendar.from_policy(policy, dt.date(2026, 12, 1), dt.date(2027, 1, 31))
    assert cal.business_seconds(berlin(2026, 12, 24, 0), berlin(2026, 12, 25, 0)) == 0
    assert cal.business_seconds(berlin(2026, 12, 26, 0), berlin(2026, 12, 27, 0)) == 2 * 3600


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive"):
        CAL.business_seconds(dt.datetime(2026, 3, 9, 9), berlin(2026, 3, 9, 10))


def test_duckdb_table_holds_the_same_rows():
    con = duckdb.connect()
    n = write_business_calendar(con, CAL)
    assert n == len(CAL.days)
    again = BusinessCalendar.from_duckdb(con)
    assert again.days == CAL.days
    # open/close instants are the local 09:00 / 17:00 in UTC on both sides of a DST switch
    rows = dict(con.execute("SELECT day, open_utc FROM business_calendar WHERE day IN ('2026-03-27','2026-03-30')").fetchall())
    assert rows[dt.date(2026, 3, 27)].astimezone(UTC).hour == 8
    assert rows[dt.date(2026, 3, 30)].astimezone(UTC).hour == 7
