"""Formatting per language: one case per line, with what it guards."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from reports import filters as f
from sla.report_data.models import PolicyText, Target

UTC = timezone.utc


@pytest.mark.parametrize("seconds, lang, expected", [
    (None, "en", "–"),
    (0, "en", "0 min"),
    (59, "en", "1 min"),              # rounded UP: a second over is a minute over
    (60, "en", "1 min"),
    (28801, "en", "8 h 1 min"),       # 1 s over an 8 h target never prints "8 h"
    (97505, "en", "27 h 6 min"),      # a duration, not a clock time ("27:05")
    (201600, "de", "56 h"),           # 7 business days of 8 h
    (3600 * 1234, "de", "1.234 h"),
])
def test_duration_reads_as_a_duration_rounded_up(seconds, lang, expected):
    assert f.duration(seconds, lang) == expected


def test_the_old_clock_form_is_gone():
    for seconds in (59, 3600, 97505, 201600):
        assert ":" not in f.duration(seconds, "en")


@pytest.mark.parametrize("met, rated, lang, expected", [
    (1, 1, "en", "1 of 1 met"),
    (3, 4, "de", "3 von 4 eingehalten"),
    (4, 5, "en", "80.0\u00a0%"),        # from 5 rated incidents: a rate
    (0, 0, "en", "–"),
])
def test_compliance_counts_below_five_rated(met, rated, lang, expected):
    from sla.months import rate
    from sla.report_data.models import MetricSummary
    m = MetricSummary(met, rated - met, 0, 0, rate(met, rated - met))
    assert f.compliance(m, lang) == expected


def test_delta_only_between_solid_months():
    from sla.report_data.models import MetricSummary
    now = MetricSummary(9, 1, 0, 0, Decimal("0.9"))
    before = MetricSummary(8, 2, 0, 0, Decimal("0.8"))
    assert f.delta(now, before, "en") == ("▲ +10.0 pp", "better")
    assert f.delta(before, now, "de") == ("▼ −10,0 Pp", "worse")
    assert f.delta(now, MetricSummary(1, 0, 0, 0, Decimal(1)), "en") is None


def test_status_words_not_codes():
    assert f.status("closed", "en") == "Closed"
    assert f.status("open", "en") == "In progress"
    assert f.status("solved", "de").startswith("Gelöst")


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
    (Target.days(7), "en", "7 business days (56 h)"),
    (Target.hours(1), "en", "1 business hour"),
    (Target.hours(8), "de", "8 Geschäftsstunden"),
    (Target.days(7), "de", "7 Geschäftstage (56 h)"),
    (Target.days(1), "de", "1 Geschäftstag (8 h)"),
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
