"""View models of the monthly customer compliance report.

Plain frozen dataclasses: the rendering layer receives them fully computed and
only formats them. Nothing here knows about DuckDB, Dagster or the SLA rules;
the assets layer builds these from the warehouse.

Conventions:
- every datetime is timezone-aware (UTC by convention); the renderer shows it in
  ``CustomerReport.timezone`` (default Europe/Berlin);
- durations are business seconds (int), ``None`` when not measured (yet);
- compliance rates are ``Decimal`` fractions in [0, 1] (0.952 = 95.2 %), or
  ``None`` when nothing was rated (met + breached == 0);
- ``met`` flags are ``True`` (met), ``False`` (breached) or ``None`` (pending or
  no target).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

Language = Literal["en", "de"]
ClockState = Literal["running", "paused", "stopped"]
TargetUnit = Literal["business_hours", "business_days"]

DEFAULT_TIMEZONE = "Europe/Berlin"


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


@dataclass(frozen=True)
class Target:
    """An SLA target as the policy states it ("8 business hours", "7 business days").

    ``seconds`` is the business time it stands for (a business day being the
    calendar's ``business_day_hours``).
    """

    amount: int
    unit: TargetUnit
    seconds: int

    @classmethod
    def hours(cls, n: int) -> "Target":
        return cls(n, "business_hours", n * 3600)

    @classmethod
    def days(cls, n: int, *, business_day_hours: int = 8) -> "Target":
        return cls(n, "business_days", n * business_day_hours * 3600)


@dataclass(frozen=True)
class Branding:
    vendor_name: str = "Northwind Support Services"
    vendor_address: str = "Northwind GmbH · Beispielstraße 1 · 10115 Berlin"
    contact: str = "support@northwind.example"
    # Logo and palette are shipped with the templates (static/logo.svg, report.css).
    logo_path: str = "static/logo.svg"


@dataclass(frozen=True)
class TierChange:
    at: datetime  # first instant of the new tier (contract start)
    from_tier: str | None  # None: no contract before
    to_tier: str | None  # None: contract ended

    def __post_init__(self) -> None:
        _require_aware(self.at, "TierChange.at")


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    tier: str  # tier in force at the cut-off or at month end
    account_manager: str | None = None
    language: Language = "en"
    tier_changes: tuple[TierChange, ...] = ()

    def __post_init__(self) -> None:
        if self.language not in ("en", "de"):
            raise ValueError(f"Customer.language must be 'en' or 'de', got {self.language!r}")


@dataclass(frozen=True)
class MetricSummary:
    met: int = 0
    breached: int = 0
    pending: int = 0
    no_target: int = 0
    rate: Decimal | None = None  # met / (met + breached)

    @property
    def rated(self) -> int:
        return self.met + self.breached


@dataclass(frozen=True)
class Summary:
    incidents_opened: int
    quota: int  # incidents per month included in the tier
    quota_used: int  # incidents counted against the quota (min(opened, quota) usually)
    over_quota: int
    first_response: MetricSummary
    resolution: MetricSummary
    open_at_cutoff: int


@dataclass(frozen=True)
class SeverityRow:
    severity: int
    incidents: int
    first_response_target: Target | None
    resolution_target: Target | None
    first_response_median: int | None
    first_response_p90: int | None
    resolution_median: int | None
    resolution_p90: int | None
    first_response_met: int = 0
    first_response_breached: int = 0
    resolution_met: int = 0
    resolution_breached: int = 0


@dataclass(frozen=True)
class TrendPoint:
    month: str  # YYYY-MM
    incidents: int
    first_response_rate: Decimal | None
    resolution_rate: Decimal | None


@dataclass(frozen=True)
class SeverityChange:
    at: datetime
    from_severity: int
    to_severity: int

    def __post_init__(self) -> None:
        _require_aware(self.at, "SeverityChange.at")


@dataclass(frozen=True)
class IncidentRow:
    ticket_id: str
    subject: str
    severity: int  # severity at creation
    created_at: datetime
    status: str  # status at the cut-off
    severity_changes: tuple[SeverityChange, ...] = ()
    first_response_at: datetime | None = None
    # Business seconds measured; for a clock still running: elapsed at the cut-off.
    first_response_seconds: int | None = None
    first_response_target_seconds: int | None = None
    first_response_met: bool | None = None
    resolved_at: datetime | None = None
    resolution_seconds: int | None = None
    resolution_target_seconds: int | None = None
    resolution_met: bool | None = None
    paused_seconds: int | None = None
    over_quota: bool | None = None

    def __post_init__(self) -> None:
        for name in ("created_at", "first_response_at", "resolved_at"):
            _require_aware(getattr(self, name), f"IncidentRow.{name}")

    @property
    def current_severity(self) -> int:
        return self.severity_changes[-1].to_severity if self.severity_changes else self.severity

    @property
    def needs_explanation(self) -> bool:
        """Breached, or pending (target set, not met yet) on either metric."""
        for met, target in (
            (self.first_response_met, self.first_response_target_seconds),
            (self.resolution_met, self.resolution_target_seconds),
        ):
            if met is False or (met is None and target is not None):
                return True
        return False


@dataclass(frozen=True)
class ClockSegment:
    start: datetime
    end: datetime  # the cut-off for a segment still open
    state: ClockState  # running / paused (waiting for the customer) / stopped (solved)
    business_seconds: int

    def __post_init__(self) -> None:
        _require_aware(self.start, "ClockSegment.start")
        _require_aware(self.end, "ClockSegment.end")
        if self.state not in ("running", "paused", "stopped"):
            raise ValueError(f"ClockSegment.state: unknown state {self.state!r}")


@dataclass(frozen=True)
class IncidentExplanation:
    """Clock segments of one breached or pending incident (resolution clock)."""

    ticket_id: str
    segments: tuple[ClockSegment, ...]
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None


@dataclass(frozen=True)
class PolicyText:
    """What the last page explains. Structured, so the renderer words it per language."""

    timezone: str = DEFAULT_TIMEZONE
    # opening hours per weekday, local time: (("mon", "09:00", "17:00"), ...)
    weekly_hours: tuple[tuple[str, str, str], ...] = tuple(
        (d, "09:00", "17:00") for d in ("mon", "tue", "wed", "thu", "fri")
    )
    business_day_hours: int = 8
    holidays_country: str = "DE"
    holidays_subdivision: str | None = None
    extra_closed_dates: tuple[str, ...] = ()  # ISO dates
    pause_statuses: tuple[str, ...] = ("pending",)
    resolved_statuses: tuple[str, ...] = ("solved", "closed")
    # severity -> definition, as the policy file states it (English), and an
    # optional translation used for German reports.
    severity_definitions: dict[int, str] = field(default_factory=dict)
    severity_definitions_de: dict[int, str] | None = None
    # targets of the customer's tier: (severity, first response, resolution)
    targets: tuple[tuple[int, Target | None, Target | None], ...] = ()


@dataclass(frozen=True)
class CustomerReport:
    customer: Customer
    month: str  # YYYY-MM
    cutoff: datetime
    summary: Summary
    severities: tuple[SeverityRow, ...]
    trend: tuple[TrendPoint, ...]  # oldest first, up to 12 months ending with `month`
    incidents: tuple[IncidentRow, ...]
    explanations: tuple[IncidentExplanation, ...]
    policy: PolicyText
    branding: Branding = Branding()
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        _require_aware(self.cutoff, "CustomerReport.cutoff")
        if len(self.month) != 7 or self.month[4] != "-":
            raise ValueError(f"CustomerReport.month must be YYYY-MM, got {self.month!r}")

    @property
    def language(self) -> Language:
        return self.customer.language
