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
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator

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


def parse_target(text: str, business_day_seconds: int) -> tuple[Decimal, str, int]:
    """'7 business days' -> (7, 'days', 7 x the business day): the amount and unit as written and
    the business seconds they stand for. The one reader of target wording."""
    m = _TARGET_RE.match(text)
    if not m:
        raise ValueError(f"unreadable target {text!r}")
    amount, unit = Decimal(m.group(1)), "hours" if m.group(2).startswith("hour") else "days"
    return amount, unit, int(amount * (3600 if unit == "hours" else business_day_seconds))


def target_seconds(text: str | None, business_day_seconds: int) -> int | None:
    return None if text is None else parse_target(text, business_day_seconds)[2]


class TierPolicy(_Strict):
    monthly_incident_quota: int = Field(ge=0)
    monthly_price: Decimal = Field(ge=0, decimal_places=2)
    billed: Literal["monthly", "annually"] | None = None
    targets: dict[int, SeverityTargets]


class TermSet(_Strict):
    """Customer terms (sla-semantics.md section 6): what a contract naming this set gets instead of its
    tier's figures. Only what is written overrides: a severity's `first_response` left out keeps the
    tier's target, `first_response: null` removes it."""

    monthly_incident_quota: int | None = Field(None, ge=0)
    monthly_price: Decimal | None = Field(None, ge=0, decimal_places=2)
    targets: dict[int, SeverityTargets] = {}
    description: str | None = None


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
    terms: dict[str, TermSet] = {}
    severity_definitions: dict[int, str] = {}
    #: local date from which this version is in force; None for the first version (in force from the start)
    in_force_from: dt.date | None = None
    # every version of the file, in date order (set by load_policy; a policy built directly has one)
    _versions: tuple["Policy", ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _targets_cover_severities(self) -> "Policy":
        for tier_name, tier in self.tiers.items():
            missing = set(self.severities) - set(tier.targets)
            extra = set(tier.targets) - set(self.severities)
            if missing:
                raise ValueError(f"tiers.{tier_name}.targets: no entry for severity {sorted(missing)}")
            if extra:
                raise ValueError(f"tiers.{tier_name}.targets: severity {sorted(extra)} is not in severities")
        for name, ts in self.terms.items():
            extra = set(ts.targets) - set(self.severities)
            if extra:
                raise ValueError(f"terms.{name}.targets: severity {sorted(extra)} is not in severities")
        return self

    # -- versions (sla-semantics.md section 6) ----------------------------------------------
    @property
    def versions(self) -> tuple["Policy", ...]:
        """Every version in date order; the first has in_force_from None (in force from the start)."""
        return self._versions or (self,)

    def version_on(self, day: dt.date) -> "Policy":
        """The version in force on a local date."""
        chosen = self.versions[0]
        for v in self.versions[1:]:
            if v.in_force_from is not None and v.in_force_from <= day:
                chosen = v
        return chosen

    def version_ranges(self) -> list[tuple[dt.date, dt.date, "Policy"]]:
        """(first day, last day, version) covering every date: 0001-01-01 .. 9999-12-31."""
        vs = self.versions
        out = []
        for i, v in enumerate(vs):
            start = v.in_force_from if i else dt.date.min
            end = vs[i + 1].in_force_from - dt.timedelta(days=1) if i + 1 < len(vs) else dt.date.max
            out.append((start, end, v))
        return out

    def tier_target_texts(self, tier: str, terms: str | None = None) -> dict[int, tuple[str | None, str | None]]:
        """{severity: (first response, resolution)} as the policy words them, for a tier under a term
        set: only what the set writes overrides (`null` removes a target)."""
        tp = self.tiers[tier]
        ts = self.terms.get(terms) if terms else None
        texts = {}
        for sev, t in sorted(tp.targets.items()):
            fr, res = t.first_response, t.resolution
            over = ts.targets.get(sev) if ts else None
            if over is not None:
                if "first_response" in over.model_fields_set:
                    fr = over.first_response
                if "resolution" in over.model_fields_set:
                    res = over.resolution
            texts[sev] = (fr, res)
        return texts

    def tier_figures(self, tier: str, terms: str | None = None) -> tuple[int, Decimal, dict[int, tuple[int | None, int | None]]]:
        """(quota, monthly price, {severity: (first response s, resolution s)}) of a tier under a term set."""
        tp = self.tiers[tier]
        ts = self.terms.get(terms) if terms else None
        bds = self.calendar.business_day_seconds
        targets = {sev: (target_seconds(fr, bds), target_seconds(res, bds))
                   for sev, (fr, res) in self.tier_target_texts(tier, terms).items()}
        quota = ts.monthly_incident_quota if ts and ts.monthly_incident_quota is not None else tp.monthly_incident_quota
        price = ts.monthly_price if ts and ts.monthly_price is not None else tp.monthly_price
        return quota, price, targets

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


def versioned_target_rows(policy: Policy) -> list[tuple]:
    """(valid_from, valid_to, terms, tier, severity, first_response_seconds, resolution_seconds):
    every version x (standard terms = NULL, and every term set named in any version) x tier x severity.
    In a version that does not define a term set, a contract naming it has the standard terms."""
    rows = []
    names = term_set_names(policy)
    for start, end, v in policy.version_ranges():
        for terms in (None, *names):  # a set a version does not define: the standard terms then
            for tier in v.tiers:
                for sev, (fr, res) in v.tier_figures(tier, terms)[2].items():
                    rows.append((start, end, terms, tier, sev, fr, res))
    return rows


def versioned_tier_rows(policy: Policy) -> list[tuple]:
    """(valid_from, valid_to, terms, tier, monthly_incident_quota, monthly_price, billed) likewise."""
    rows = []
    names = term_set_names(policy)
    for start, end, v in policy.version_ranges():
        for terms in (None, *names):  # a set a version does not define: the standard terms then
            for tier, tp in v.tiers.items():
                quota, price, _ = v.tier_figures(tier, terms)
                rows.append((start, end, terms, tier, quota, price, tp.billed))
    return rows


def term_set_names(policy: Policy) -> list[str]:
    """Every term set named in any version (a contract may name any of them)."""
    return sorted({name for v in policy.versions for name in v.terms})


#: what a later version may change; the rest (statuses, severities, timezone) is fixed for the file
VERSIONED_KEYS = ("calendar", "tiers", "terms", "currency", "severity_definitions")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


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
    return policy_from_dict(data, str(path))


def policy_from_dict(data: dict, where_from: str = "policy") -> Policy:
    """Validate a policy mapping, with its optional `versions` (sla-semantics.md section 6).

    Without `versions` the file is one version in force from the start (today's format). With it,
    the top level is the first version, and each entry of `versions` has `in_force_from` (a local
    date, strictly after the previous version's) and the parts that change from the previous
    version (deep-merged: `tiers: {gold: {monthly_price: "1599.00"}}` changes only that). A later
    version may change calendar, tiers, terms, currency and severity_definitions; the timezone,
    statuses and severities stay those of the first version.
    """
    data = dict(data)
    later = data.pop("versions", None) or []
    if not isinstance(later, list):
        raise PolicyError(f"{where_from}: versions: expected a list of versions, each with in_force_from")

    def validate(raw: dict, prefix: str) -> Policy:
        try:
            return Policy.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = prefix + (_field_path(first["loc"]) or "(top level)")
            msg = first["msg"].removeprefix("Value error, ")
            more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
            raise PolicyError(f"{where_from}: {where}: {msg}{more}") from None

    first = validate(data, "")
    versions = [first]
    raw = {k: v for k, v in data.items() if k != "in_force_from"}
    for n, entry in enumerate(later):
        prefix = f"versions.{n}."
        if not isinstance(entry, dict):
            raise PolicyError(f"{where_from}: versions.{n}: expected a mapping with in_force_from")
        if "in_force_from" not in entry:
            raise PolicyError(f"{where_from}: {prefix}in_force_from: required (the local date the version applies from)")
        bad = sorted(set(entry) - set(VERSIONED_KEYS) - {"in_force_from"})
        if bad:
            raise PolicyError(f"{where_from}: {prefix}{bad[0]}: cannot change between versions "
                              f"(a version may change {', '.join(VERSIONED_KEYS)})")
        raw = _merge(raw, {k: v for k, v in entry.items() if k != "in_force_from"})
        v = validate({**raw, "in_force_from": entry["in_force_from"]}, prefix)
        prev = versions[-1]
        if prev.in_force_from is not None and v.in_force_from <= prev.in_force_from:
            word = "overlaps" if v.in_force_from == prev.in_force_from else "is before"
            raise PolicyError(f"{where_from}: {prefix}in_force_from: {v.in_force_from} {word} the previous version's "
                              f"in_force_from {prev.in_force_from}; versions must be in date order, one per date")
        if first.in_force_from is not None and v.in_force_from <= first.in_force_from:
            raise PolicyError(f"{where_from}: {prefix}in_force_from: {v.in_force_from} is not after the first "
                              f"version's in_force_from {first.in_force_from}")
        if v.calendar.timezone != first.calendar.timezone:
            raise PolicyError(f"{where_from}: {prefix}calendar.timezone: cannot change between versions "
                              f"(the first version's is {first.calendar.timezone})")
        versions.append(v)
    if len(versions) > 1:
        first._versions = tuple(versions)
    return first
