"""A business day is the length of one day of the calendar's business hours (sla-semantics.md
section 1): `calendar.business_day_hours` is derived from `weekly_hours` unless given, and a given
value must agree with the calendar."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import yaml

from sla.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy
from tests.helpers import incident_rows, run_domain, write_export

BERLIN = ZoneInfo("Europe/Berlin")
H = 3600
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def policy_file(tmp_path, *, hours: dict[str, str], day_hours=None):
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["calendar"]["weekly_hours"] = hours
    data["calendar"].pop("business_day_hours", None)
    if day_hours is not None:
        data["calendar"]["business_day_hours"] = day_hours
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


TEN_HOURS = {d: "08:00-18:00" for d in WEEKDAYS}


def test_seed_policy_has_eight_hour_days():
    # 09:00-17:00: one business day is 8 h, so gold sev 2's "3 business days" is 24 h
    policy = load_policy()
    assert policy.calendar.business_day_hours == 8
    assert ("gold", 2, 8 * H, 24 * H) in policy.target_rows


def test_days_follow_the_calendar_hours(tmp_path):
    # 08:00-18:00: one business day is 10 h. "3 business days" = 30 h, "7 business days" = 70 h,
    # "14 business days" = 140 h; targets written in hours stay as written (8 h, 16 h, ...).
    policy = load_policy(policy_file(tmp_path, hours=TEN_HOURS))
    assert policy.calendar.business_day_hours == 10
    targets = {(tier, sev): (fr, res) for tier, sev, fr, res in policy.target_rows}
    assert targets[("gold", 2)] == (8 * H, 30 * H)
    assert targets[("gold", 3)] == (8 * H, 70 * H)
    assert targets[("enterprise", 3)] == (24 * H, 140 * H)
    assert targets[("gold", 1)] == (8 * H, 16 * H)

    # Through the pipeline: gold sev 2 created Mon 2026-03-02 08:00, agent reply 09:00, solved
    # Wed 2026-03-04 14:00. Running: Mon 08-18 (10 h) + Tue 08-18 (10 h) + Wed 08-14 (6 h) = 26 h.
    # Target 3 business days = 30 h: met (with 8-hour days it would be 24 h: breached).
    # First response: 1 h <= 8 h, met.
    folder = write_export(
        tmp_path / "export",
        [("B1", "G", "ten-hour days", 2, "2026-03-02T08:00:00+01:00", "web")],
        [("B1", "2026-03-02T09:00:00+01:00", "reply", "agent", ""),
         ("B1", "2026-03-04T14:00:00+01:00", "status", "agent", "solved")],
        [("G", "Gold GmbH", "gold", "2025-01-01", "", "am@vendor.example")],
    )
    con, _ = run_domain(folder, dt.datetime(2026, 4, 1, tzinfo=BERLIN), policy=policy)
    row = incident_rows(con)["B1"]
    assert row["resolution_target_seconds"] == 30 * H
    assert row["resolution_business_seconds"] == 26 * H
    assert row["resolution_met"] is True
    assert row["first_response_business_seconds"] == 1 * H


def test_an_explicit_length_that_agrees_is_accepted(tmp_path):
    assert load_policy(policy_file(tmp_path, hours=TEN_HOURS, day_hours=10)).calendar.business_day_hours == 10


def test_an_explicit_length_that_contradicts_the_calendar_is_an_error(tmp_path):
    # 08:00-18:00 is a 10-hour day; "8" would make "3 business days" 24 h instead of 30 h
    with pytest.raises(PolicyError, match=r"calendar\.business_day_hours: 8 hours contradicts the calendar.*10 hours"):
        load_policy(policy_file(tmp_path, hours=TEN_HOURS, day_hours=8))


def test_weekdays_of_different_length_require_the_setting(tmp_path):
    # Mon-Thu 08:00-18:00 (10 h) and Fri 08:00-14:00 (6 h): "one business day" is ambiguous, so the
    # policy must say it; with 9 h, "3 business days" = 27 h.
    hours = {**TEN_HOURS, "fri": "08:00-14:00"}
    with pytest.raises(PolicyError, match=r"calendar\.business_day_hours: required: .*differ in length"):
        load_policy(policy_file(tmp_path, hours=hours))
    policy = load_policy(policy_file(tmp_path, hours=hours, day_hours=9))
    assert ("gold", 2, 8 * H, 27 * H) in policy.target_rows
