"""Formatting per language: one case per line, with what it guards."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from reports import filters as f
from sla.report_data.models import PolicyText, Target

UTC = timezone.utc


@pytest.mark.parametrize("seconds, expected", [
    (None, "–"),
    (0, "0:00"),
    (59, "0:00"),            # seconds are truncated, never rounded up
    (60, "0:01"),
    (97505, "27:05"),        # 27 business hours 5 minutes (more than 24 h is not days)
    (201600, "56:00"),       # 7 business days of 8 h
    (360000 + 59, "100:00"),
])
def test_duration(seconds, expected):
    assert f.duration(seconds) == expected


@pytest.mark.parametrize("value, lang, expected", [
    (Decimal("0.952"), "en", "95.2\u00a0%"),
    (Decimal("0.952"), "de", "95,2\u00a0%"),
    (Decimal("0.95249"), "en", "95.2\u00a0%"),
    (Decimal("0.95250"), "en", "95.3\u00a0%"),  # half-up, not banker's rounding
    (Decimal("1"), "de", "100,0\u00a0%"),
    (Decimal("0"), "en", "0.0\u00a0%"),
    (None, "en", "–"),                       # nothing rated
])
def test_rate(value, lang, expected):
    assert f.rate(value, lang) == expected


def test_datetime_local_winter_and_summer():
    winter = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)   # CET, UTC+1
    summer = datetime(2026, 3, 30, 14, 0, tzinfo=UTC)  # CEST, UTC+2
    assert f.datetime_local(winter, "en") == "2026-03-06 16:00"
    assert f.datetime_local(winter, "de") == "06.03.2026 16:00"
    assert f.datetime_local(summer, "en") == "2026-03-30 16:00"
    assert f.datetime_local(None, "en") == "–"
    assert f.date_local(winter, "de") == "06.03.2026"
    assert f.date_local(date(2026, 1, 2), "en") == "2026-01-02"


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive"):
        f.datetime_local(datetime(2026, 3, 6, 16, 0), "en")


@pytest.mark.parametrize("month, lang, expected", [
    ("2026-03", "en", "March 2026"),
    ("2026-03", "de", "März 2026"),
    ("2025-12", "de", "Dezember 2025"),
])
def test_month_name(month, lang, expected):
    assert f.month_name(month, lang) == expected


def test_month_name_rejects_garbage():
    with pytest.raises(ValueError):
        f.month_name("2026-13", "en")


@pytest.mark.parametrize("n, lang, expected", [
    (1234567, "en", "1,234,567"),
    (1234567, "de", "1.234.567"),
    (7, "de", "7"),
    (None, "en", "–"),
])
def test_number(n, lang, expected):
    assert f.number(n, lang) == expected


@pytest.mark.parametrize("target, lang, expected", [
    (Target.hours(8), "en", "8 business hours"),
    (Target.days(7), "en", "7 business days"),
    (Target.hours(1), "en", "1 business hour"),
    (Target.hours(8), "de", "8 Geschäftsstunden"),
    (Target.days(7), "de", "7 Geschäftstage"),
    (Target.days(1), "de", "1 Geschäftstag"),
    (None, "en", "no target"),
    (None, "de", "ohne Ziel"),
])
def test_target(target, lang, expected):
    assert f.target(target, lang) == expected


def test_target_seconds_follow_business_day_length():
    assert Target.days(7).seconds == 56 * 3600
    assert Target.days(3, business_day_hours=10).seconds == 30 * 3600


def test_weekly_hours_grouping():
    p = PolicyText()
    assert f.weekly_hours(p.weekly_hours, "en") == "Monday to Friday, 09:00 to 17:00"
    assert f.weekly_hours(p.weekly_hours, "de") == "Montag bis Freitag, 09:00 bis 17:00 Uhr"
    odd = (("mon", "09:00", "17:00"), ("tue", "09:00", "17:00"), ("fri", "10:00", "14:00"))
    assert f.weekly_hours(odd, "en") == "Monday to Tuesday, 09:00 to 17:00 and Friday, 10:00 to 14:00"


def test_every_text_key_exists_in_both_languages():
    assert set(f.TEXT["en"]) == set(f.TEXT["de"])
    assert set(f.METHODOLOGY["en"]) == set(f.METHODOLOGY["de"])


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError, match="language"):
        f.rate(Decimal("0.5"), "fr")
