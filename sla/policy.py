"""The SLA policy (tiers, targets, quotas, prices, calendar, statuses) loaded from YAML.

The policy is data: changing `config/sla-policy.yaml` changes the figures without a
code change. Validation errors name the offending field, e.g.
``tiers.gold.targets.2.resolution: cannot read '3 busines days' ...``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "config" / "sla-policy.yaml"

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_TARGET_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+business\s+(hours?|days?)\s*$")


class PolicyError(ValueError):
    """The policy file is missing or invalid; the message names the field."""


def parse_hours(text: str) -> tuple[dt.time, dt.time]:
    """'09:00-17:00' -> (09:00, 17:00); the window must not be empty."""
    m = _HOURS_RE.match(str(text).strip())
    if not m:
        raise ValueError(f"expected 'HH:MM-HH:MM', got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"not a time of day in {text!r}")
    start = dt.time(h1, m1)
    end = dt.time.max.replace(microsecond=0) if h2 == 24 else dt.time(h2, m2)
    if end <= start:
        raise ValueError(f"window {text!r} closes before it opens")
    return start, end


def window_seconds(text: str) -> int:
    """Length of a window 'HH:MM-HH:MM' in wall-clock seconds ('00:00-24:00' is 86400)."""
    start, end = parse_hours(text)
    closes = 86400 if end == dt.time.max.replace(microsecond=0) else end.hour * 3600 + end.minute * 60
    return closes - (start.hour * 3600 + start.minute * 60)


#: Lifecycle order of the canonical statuses (sla-semantics.md section 3, "Order of events"): status
#: changes of one ticket at one instant apply in this order, so the ticket ends in the furthest state.
#: It is a fixed rule, deliberately not the order of `statuses.known` (the seed lists pending before
#: on_hold; the rule puts on_hold before pending).
LIFECYCLE_ORDER = ("new", "open", "on_hold", "pending", "solved", "closed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenDate(_Strict):
    date: dt.date
    hours: str | None = None  # None: the weekly hours of a Monday

    @field_validator("hours")
    @classmethod
    def _check_hours(cls, v: str | None) -> str | None:
        if v is not None:
            parse_hours(v)
        return v


class HolidaySource(_Strict):
    country: str | None = "DE"
    subdivision: str | None = None

    @model_validator(mode="after")
    def _known_country(self) -> "HolidaySource":
        if self.country is None:
            return self
        import holidays

        try:
            holidays.country_holidays(self.country, subdiv=self.subdivision, years=2026)
        except Exception as exc:  # the library raises NotImplementedError for unknown codes
            raise ValueError(f"unknown holiday country/subdivision {self.country}/{self.subdivision}: {exc}") from None
        return self


class CalendarPolicy(_Strict):
    timezone: str = "Europe/Berlin"
    weekly_hours: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], str]
    #: Length of "one business day" in targets written in days (sla-semantics.md section 1).
    #: Optional: by default the length of one day of `weekly_hours` (09:00-17:00 -> 8, 08:00-18:00 -> 10).
    #: When given it must equal that length. When the weekdays' windows differ in length, the day
    #: length is ambiguous and the setting is required (any value in (0, 24]). After validation it
    #: always holds the effective length.
    business_day_hours: float | None = Field(None, gt=0, le=24, validate_default=True)
    holidays: HolidaySource = HolidaySource()
    extra_closed_dates: list[dt.date] = []
    extra_open_dates: list[OpenDate] = []

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {v!r}") from None
        return v

    @field_validator("weekly_hours")
    @classmethod
    def _check_weekly(cls, v: dict[str, str]) -> dict[str, str]:
        for day, hours in v.items():
            try:
                parse_hours(hours)
            except ValueError as exc:
                raise ValueError(f"{day}: {exc}") from None
        if not v:
            raise ValueError("at least one weekday must have business hours")
        return v

    @field_validator("business_day_hours")
    @classmethod
    def _check_day_length(cls, v: float | None, info: ValidationInfo) -> float | None:
        weekly = info.data.get("weekly_hours")
        if not weekly:  # weekly_hours itself is invalid: that error is reported
            return v
        lengths = sorted({window_seconds(hours) for hours in weekly.values()})
        if len(lengths) > 1:
            if v is None:
                shown = ", ".join(f"{day} {hours}" for day, hours in weekly.items())
                raise ValueError(f"required: the weekdays' business hours differ in length ({shown}), so the "
                                 "length of one business day is ambiguous; set it in hours, e.g. 8")
            return v
        day_seconds = lengths[0]
        if v is None:
            return day_seconds / 3600
        if int(round(v * 3600)) != day_seconds:
            raise ValueError(f"{v:g} hours contradicts the calendar: one day of weekly_hours "
                             f"({next(iter(weekly.values()))}) is {day_seconds / 3600:g} hours; "
                             "set it to that or leave it out")
        return v

    @field_validator("extra_open_dates", mode="before")
    @classmethod
    def _plain_dates(cls, v):
        return [{"date": item} if not isinstance(item, dict) else item for item in (v or [])]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def business_day_seconds(self) -> int:
        assert self.business_day_hours is not None, "validated: derived from weekly_hours when not given"
        return int(round(self.business_day_hours * 3600))

    def window_for_weekday(self, weekday: int) -> tuple[dt.time, dt.time] | None:
        hours = self.weekly_hours.get(WEEKDAYS[weekday])  # type: ignore[call-overload]
        return parse_hours(hours) if hours else None

    def default_open_window(self) -> tuple[dt.time, dt.time]:
        """Window used for an extra open date without explicit hours."""
        for day in WEEKDAYS:
            if day in self.weekly_hours:
                return parse_hours(self.weekly_hours[day])  # type: ignore[index]
        raise AssertionError("validated: weekly_hours is not empty")


class SeverityTargets(_Strict):
    """Targets in seconds of business time; None = no target (none / best effort)."""

    first_response: str | None = None
    resolution: str | None = None

    @field_validator("first_response", "resolution", mode="before")
    @classmethod
    def _normalise(cls, v):
        if v is None or (isinstance(v, str) and v.strip().lower() in {"", "none", "best effort"}):
            return None
        if not _TARGET_RE.match(str(v)):
            raise ValueError(f"cannot read {v!r}; write e.g. '8 business hours', '7 business days' or null")
        return str(v).strip()


def target_seconds(text: str | None, business_day_seconds: int) -> int | None:
    if text is None:
        return None
    m = _TARGET_RE.match(text)
    assert m, text
    amount, unit = Decimal(m.group(1)), m.group(2)
    per_unit = 3600 if unit.startswith("hour") else business_day_seconds
    return int(amount * per_unit)


class TierPolicy(_Strict):
    monthly_incident_quota: int = Field(ge=0)
    monthly_price: Decimal = Field(ge=0, decimal_places=2)
    billed: Literal["monthly", "annually"] | None = None
    targets: dict[int, SeverityTargets]


class StatusPolicy(_Strict):
    known: list[str]
    initial: str = "new"
    pause: list[str]
    resolved: list[str]

    @model_validator(mode="after")
    def _subsets(self) -> "StatusPolicy":
        for name in ("pause", "resolved"):
            unknown = set(getattr(self, name)) - set(self.known)
            if unknown:
                raise ValueError(f"{name}: {sorted(unknown)} not in known statuses {self.known}")
        if self.initial not in self.known:
            raise ValueError(f"initial: {self.initial!r} not in known statuses")
        if set(self.pause) & set(self.resolved):
            raise ValueError("a status cannot both pause the clock and resolve the incident")
        return self

    @cached_property
    def lifecycle_rank(self) -> dict[str, int]:
        """Rank of each known status in lifecycle order (1 = earliest); ties at one instant apply by it.

        The canonical statuses take LIFECYCLE_ORDER. A further status a policy may declare keeps its
        place in `known`: right after the canonical status listed before it (or first), in list order.
        """
        keyed = []
        anchor = -1
        for pos, status in enumerate(self.known):
            if status in LIFECYCLE_ORDER:
                anchor = LIFECYCLE_ORDER.index(status)
                keyed.append(((anchor, 0, 0), status))
            else:
                keyed.append(((anchor, 1, pos), status))
        return {status: rank for rank, (_, status) in enumerate(sorted(keyed), start=1)}


class Policy(_Strict):
    version: int = 1
    currency: str = "EUR"
    calendar: CalendarPolicy
    statuses: StatusPolicy
    severities: list[int]
    tiers: dict[str, TierPolicy]
    severity_definitions: dict[int, str] = {}

    @model_validator(mode="after")
    def _targets_cover_severities(self) -> "Policy":
        for tier_name, tier in self.tiers.items():
            missing = set(self.severities) - set(tier.targets)
            extra = set(tier.targets) - set(self.severities)
            if missing:
                raise ValueError(f"tiers.{tier_name}.targets: no entry for severity {sorted(missing)}")
            if extra:
                raise ValueError(f"tiers.{tier_name}.targets: severity {sorted(extra)} is not in severities")
        return self

    # -- derived, used by the SQL layer -------------------------------------------------
    @cached_property
    def target_rows(self) -> list[tuple[str, int, int | None, int | None]]:
        """(tier, severity, first_response_seconds, resolution_seconds) for every pair."""
        bds = self.calendar.business_day_seconds
        return [
            (tier, sev, target_seconds(t.first_response, bds), target_seconds(t.resolution, bds))
            for tier, tp in self.tiers.items()
            for sev, t in sorted(tp.targets.items())
        ]


def _field_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-"))


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate the policy; raise PolicyError with the bad field named."""
    path = Path(path) if path else DEFAULT_POLICY_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: expected a mapping at the top level")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _field_path(first["loc"]) or "(top level)"
        msg = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise PolicyError(f"{path}: {where}: {msg}{more}") from None
