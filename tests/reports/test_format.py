"""The one formatter every output uses (sla-semantics.md section 7)."""

from decimal import Decimal

import pytest

from reports import format as fmt
from sla.report_data.models import Target


@pytest.mark.parametrize("seconds, text", [
    (0, "0 min"), (1, "1 min"), (59, "1 min"), (60, "1 min"), (3600, "1 h"),
    (28_800, "8 h"), (28_801, "8 h 1 min"),  # a second over the target never prints as the target
    (47_881, "13 h 19 min"), (201_600, "56 h"), (3_600_000, "1,000 h"), (None, "–"),
])
def test_durations_read_as_durations_rounded_up(seconds, text):
    assert fmt.duration(seconds) == text
    assert ":" not in fmt.duration(seconds)


def test_breached_time_never_equals_its_target():
    for target in (8 * 3600, 16 * 3600, 56 * 3600):
        assert fmt.duration(target + 1) != fmt.duration(target)


def test_targets_in_the_policy_words_with_hours():
    assert fmt.target(Target.days(7)) == "7 business days (56 h)"
    assert fmt.target(Target.hours(8)) == "8 business hours"
    assert fmt.target(Target.hours(1)) == "1 business hour"
    assert fmt.target(Target.days(3), "de") == "3 Geschäftstage (24 h)"
    assert fmt.target(None, none_text="no target") == "no target"


def test_money_one_spelling():
    assert fmt.money(Decimal("-17988")) == "EUR -17,988.00"
    assert fmt.money(Decimal("1499")) == "EUR 1,499.00"
    assert fmt.money(Decimal("-0.00")) == "EUR 0.00"
    assert fmt.money(Decimal("-17988"), "de") == "-17.988,00 EUR"
    with pytest.raises(TypeError):
        fmt.money(1499.0)


def test_since_in_calendar_words():
    import datetime as dt

    assert fmt.since(dt.date(2024, 12, 3)) == "since Dec 2024"
    assert fmt.since(dt.date(2024, 3, 3), "de") == "seit März 2024"
