"""What each report product shows, as typed data: the customer report, the Gold billing
report and the management dashboard.

View models of the monthly customer compliance report come first.

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

import datetime as dt
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

import pandas as pd

Language = Literal["en", "de"]
ClockState = Literal["running", "paused", "stopped"]
TargetUnit = Literal["business_hours", "business_days"]

DEFAULT_TIMEZONE = "Europe/Berlin"
# sla-semantics.md section 7: below this many rated incidents a rate is shown as counts
# ("1 of 1 met"); a 90th percentile needs at least this many measured values.
MIN_RATED = 5
MIN_P90_VALUES = 5


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
    account_manager: str | None = None  # e-mail address
    language: Language = "en"
    tier_changes: tuple[TierChange, ...] = ()
    account_manager_name: str | None = None

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
    excluded: int = 0  # approved exclusions: measured and shown, outside every rate

    @property
    def rated(self) -> int:
        return self.met + self.breached

    @property
    def total(self) -> int:
        return self.met + self.breached + self.pending + self.no_target + self.excluded

    @property
    def solid(self) -> bool:
        """Enough rated incidents for a percentage (otherwise show counts)."""
        return self.rated >= MIN_RATED


@dataclass(frozen=True)
class Allowance:
    """One tier's monthly allowance: a month with a tier change has one per tier."""

    tier: str
    quota: int
    used: int  # incidents raised under this tier counted as included
    over_quota: int


@dataclass(frozen=True)
class Breach:
    """One breached target of an incident opened in the month (page 1 box)."""

    ticket_id: str
    severity: int  # the severity whose target applied
    metric: Literal["first_response", "resolution"]
    over_seconds: int  # business time beyond the target


@dataclass(frozen=True)
class Summary:
    incidents_opened: int
    quota: int  # incidents per month included in the tier
    quota_used: int  # incidents counted against the quota (min(opened, quota) usually)
    over_quota: int
    first_response: MetricSummary
    resolution: MetricSummary
    open_at_cutoff: int  # of the month's incidents
    allowances: tuple[Allowance, ...] = ()  # one per tier in force in the month
    previous_first_response: MetricSummary | None = None  # the month before
    previous_resolution: MetricSummary | None = None
    carried_open: int = 0  # incidents from earlier months still open at the cut-off
    carried_open_breached: int = 0
    carried_resolved: int = 0  # incidents from earlier months resolved in the month


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
    first_response_pending: int = 0
    resolution_pending: int = 0
    first_response_no_target: int = 0
    resolution_no_target: int = 0
    # targets of every tier in force in the month, when more than one: ((tier, fr, res), ...)
    tier_targets: tuple[tuple[str, Target | None, Target | None], ...] = ()


@dataclass(frozen=True)
class TrendPoint:
    month: str  # YYYY-MM
    incidents: int
    first_response_rate: Decimal | None
    resolution_rate: Decimal | None
    first_response_met: int = 0
    first_response_rated: int = 0
    resolution_met: int = 0
    resolution_rated: int = 0

    def counts_only(self, which: str) -> bool:
        """The month's `which` ("first_response" / "resolution") compliance is shown as counts,
        not as a rate: rated incidents, but fewer than MIN_RATED (sla-semantics.md section 7)."""
        return 0 < getattr(self, f"{which}_rated") < MIN_RATED


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
    month: str | None = None  # creation month (YYYY-MM); earlier than the report's: carried over
    ambiguous_order: bool = False  # data_warnings: the order of its events was ambiguous
    # approved exclusions (sla-semantics.md section 6): the metric is measured, never rated
    first_response_excluded: bool = False
    resolution_excluded: bool = False
    exclusion_reason: str | None = None

    def __post_init__(self) -> None:
        for name in ("created_at", "first_response_at", "resolved_at"):
            _require_aware(getattr(self, name), f"IncidentRow.{name}")

    @property
    def current_severity(self) -> int:
        return self.severity_changes[-1].to_severity if self.severity_changes else self.severity

    @property
    def needs_explanation(self) -> bool:
        """Breached, or pending (target set, not met yet) on either metric."""
        for met, target, excluded in (
            (self.first_response_met, self.first_response_target_seconds, self.first_response_excluded),
            (self.resolution_met, self.resolution_target_seconds, self.resolution_excluded),
        ):
            if not excluded and (met is False or (met is None and target is not None)):
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
class Restatement:
    """A figure of an earlier, delivered report that a later run changed (was -> now)."""

    month: str
    figure: str  # e.g. first_response_breached (sla.restatements.FIGURES)
    was: int
    now: int
    why: str | None = None


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
    # from earlier months: resolved in the month (final figures) or open at the cut-off
    carried_over: tuple[IncidentRow, ...] = ()
    breaches: tuple[Breach, ...] = ()  # breached targets of the month's incidents
    has_resolution_targets: bool = True  # False: the plan(s) of the month have none
    # targets of every tier in force in the month, in order: ((tier, ((sev, fr, res), ...)), ...)
    tiers_targets: tuple[tuple[str, tuple[tuple[int, Target | None, Target | None], ...]], ...] = ()
    terms_description: str | None = None  # the contract's own terms (None: the standard terms)
    restatements: tuple[Restatement, ...] = ()  # changes to figures of earlier delivered reports

    def __post_init__(self) -> None:
        _require_aware(self.cutoff, "CustomerReport.cutoff")
        if len(self.month) != 7 or self.month[4] != "-":
            raise ValueError(f"CustomerReport.month must be YYYY-MM, got {self.month!r}")

    @property
    def language(self) -> Language:
        return self.customer.language

    @property
    def month_to_date(self) -> bool:
        """The report month is the cut-off's own month (local time): figures are month to date."""
        from zoneinfo import ZoneInfo

        return self.cutoff.astimezone(ZoneInfo(self.timezone)).strftime("%Y-%m") == self.month


# ---------------------------------------------------------------- Gold billing report (finance)

#: reconciliation statuses in the order the report lists them (sla-semantics.md section 5)
STATUSES = ("ok", "under_billed", "over_billed", "not_gold", "overlap", "credit_note", "not_invoiced")

STATUS_LABELS = {
    "ok": "ok",
    "under_billed": "under-billed",
    "over_billed": "over-billed",
    "not_gold": "not Gold",
    "overlap": "double billing",
    "credit_note": "credit note",
    "not_invoiced": "not invoiced",
}


def status_label(status: str) -> str:
    """The plain words for a reconciliation status, the same in the PDF and the exports."""
    return STATUS_LABELS.get(status, status.replace("_", " "))

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Totals:
    owed: Decimal = ZERO
    invoiced: Decimal = ZERO
    difference: Decimal = ZERO  # invoiced - owed
    lines: int = 0

    def __post_init__(self) -> None:
        for name in ("owed", "invoiced", "difference"):
            if not isinstance(getattr(self, name), Decimal):
                raise TypeError(f"Totals.{name} must be a Decimal, got {type(getattr(self, name)).__name__}")

    @classmethod
    def of(cls, lines) -> "Totals":
        lines = list(lines)
        return cls(owed=sum((x.owed for x in lines), ZERO), invoiced=sum((x.invoiced for x in lines), ZERO),
                   difference=sum((x.difference for x in lines), ZERO), lines=len(lines))


@dataclass(frozen=True)
class StatusTotal:
    status: str
    lines: int
    owed: Decimal
    invoiced: Decimal
    difference: Decimal

    @property
    def label(self) -> str:
        return status_label(self.status)


@dataclass(frozen=True)
class ServiceYear:
    """`gold_service_year`: what a year's Gold days owe against what invoices allocate to them."""

    owed: Decimal = ZERO
    invoiced: Decimal = ZERO
    to_invoice: Decimal = ZERO  # shortfall, >= 0
    to_credit: Decimal = ZERO  # excess, >= 0

    def __post_init__(self) -> None:
        for name in ("owed", "invoiced", "to_invoice", "to_credit"):
            if not isinstance(getattr(self, name), Decimal):
                raise TypeError(f"ServiceYear.{name} must be a Decimal")

    @property
    def difference(self) -> Decimal:
        return self.invoiced - self.owed


@dataclass(frozen=True)
class OpenItem:
    """A customer-year with something to invoice or to credit (any year), and the lines causing it."""

    customer_id: str
    customer_name: str
    anchor: str  # id of the customer's section in the PDF
    year: int
    service: ServiceYear
    causes: tuple["BillingLine", ...]  # the lines (not ok) whose service period touches the year


@dataclass(frozen=True)
class OpenCustomer:
    """A customer's open items (all its years) on page 1: one row, totals never netted."""

    customer_id: str
    customer_name: str
    anchor: str
    items: tuple[OpenItem, ...]

    @property
    def to_invoice(self) -> Decimal:
        return sum((o.service.to_invoice for o in self.items), ZERO)

    @property
    def to_credit(self) -> Decimal:
        return sum((o.service.to_credit for o in self.items), ZERO)

    @property
    def causes(self) -> tuple["BillingLine", ...]:
        seen: list[BillingLine] = []
        for o in self.items:
            seen += [x for x in o.causes if x not in seen]
        return tuple(seen)


@dataclass(frozen=True)
class BillingLine:
    """One `gold_reconciliation` row: an invoice (invoice_id set) or a run of unbilled Gold days."""

    customer_id: str
    invoice_id: str | None
    issued_on: date | None
    period_start: date
    period_end: date
    owed: Decimal
    invoiced: Decimal
    difference: Decimal
    status: str
    gold_days: int = 0  # Gold days assigned to the line (first invoice owns each day)

    def __post_init__(self) -> None:
        for name in ("owed", "invoiced", "difference"):
            if not isinstance(getattr(self, name), Decimal):
                raise TypeError(f"BillingLine.{name} must be a Decimal")

    @property
    def label(self) -> str:
        return status_label(self.status)

    @property
    def days(self) -> int:
        return (self.period_end - self.period_start).days + 1


@dataclass(frozen=True)
class GoldPeriod:
    """Consecutive Gold days from the contract history, clipped to the report year."""

    start: date
    end: date
    open_ended: bool = False  # the contract has no end date (continues past the year)
    starts_before_year: bool = False
    ends_after_year: bool = False

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class QuotaMonth:
    """Gold incidents created in one local month vs the monthly quota of the Gold tier."""

    month: str  # 'YYYY-MM'
    incidents: int
    included: int  # counted against the quota
    over_quota: int
    quota: int


@dataclass(frozen=True)
class GoldCustomerSection:
    customer_id: str
    customer_name: str
    account_manager: str | None
    periods: tuple[GoldPeriod, ...]
    gold_days: int  # Gold days in the year (sum of the periods)
    invoices: tuple[BillingLine, ...]  # invoices issued in the year
    unbilled: tuple[BillingLine, ...]  # runs of unbilled Gold days touching the year
    totals: Totals
    quota: tuple[QuotaMonth, ...]
    gold_incidents: int
    first_response: MetricSummary
    resolution: MetricSummary
    anchor: str = ""  # id of the section in the PDF (links from page 1)
    service: ServiceYear = ServiceYear()  # the year's Gold service (gold_service_year)
    covered_by: tuple[BillingLine, ...] = ()  # earlier invoices whose period covers days of the year
    open_items: tuple[OpenItem, ...] = ()  # this customer's open items, any year
    problem: bool = False  # an open item or a line of the year that is not ok

    @property
    def covered_days(self) -> int:
        return sum(x.gold_days for x in self.covered_by)


@dataclass(frozen=True)
class GoldBillingReport:
    year: int
    cutoff: datetime  # the data's cut-off (aware); also the PDF's creation date
    cutoff_day: date  # its local date: unbilled runs end there at the latest
    timezone: str
    currency: str
    monthly_fee: Decimal
    annual_fee: Decimal  # 12 x monthly fee (a full year)
    monthly_quota: int
    totals: Totals
    by_status: tuple[StatusTotal, ...]
    exceptions: tuple[BillingLine, ...]  # every line of the year whose status is not ok
    customers: tuple[GoldCustomerSection, ...]
    branding: Branding = Branding()
    service: ServiceYear = ServiceYear()  # the year's Gold service, all customers
    open_items: tuple[OpenItem, ...] = ()  # every open item of any year, as of the cut-off
    open_to_invoice: Decimal = ZERO  # sum over the open items
    open_to_credit: Decimal = ZERO

    @property
    def open_customers(self) -> tuple[OpenCustomer, ...]:
        """The open items grouped by customer, in the order of `open_items`."""
        groups: dict[str, list[OpenItem]] = {}
        for o in self.open_items:
            groups.setdefault(o.customer_id, []).append(o)
        return tuple(OpenCustomer(customer_id=cid, customer_name=items[0].customer_name, anchor=items[0].anchor,
                                  items=tuple(items)) for cid, items in groups.items())

    def __post_init__(self) -> None:
        if self.cutoff.tzinfo is None or self.cutoff.utcoffset() is None:
            raise ValueError("GoldBillingReport.cutoff must be timezone-aware")

    @property
    def invoice_ids(self) -> tuple[str, ...]:
        return tuple(line.invoice_id for c in self.customers for line in c.invoices if line.invoice_id)


# ---------------------------------------------------------------- management dashboard
ALL = "all"
TIERS = ("professional", "enterprise", "gold")
METRICS = ("first_response", "resolution")
#: Risk states of an open incident, worst first.
RISK_STATES = ("breached", "due_soon", "on_track", "no_target")
#: The management goal for compliance rates: the ONE place it is set (README "Management
#: dashboard"). A goal for the dashboard's tiles and charts, not a contractual target.
MANAGEMENT_GOAL = Decimal("0.95")
#: Age buckets of open incidents, youngest first. The first three are business time since creation
#: (1 business day, 5 business days = a business week); from one calendar month on the buckets are
#: calendar time, because business hours stop meaning anything for incidents months old.
AGE_BUCKETS = ("lt_1bd", "1_5bd", "5bd_1m", "1_3m", "3_6m", "gt_6m")
#: Gold contracts ending within this many days after the cut-off's local date are on renewal watch.
RENEWAL_WATCH_DAYS = 90


@dataclass(frozen=True)
class KpiValues:
    """Headline figures of one month for one tier (or 'all')."""

    tier: str
    month: str
    incidents: int
    fr_met: int
    fr_breached: int
    fr_rate: float | None
    res_met: int
    res_breached: int
    res_rate: float | None
    breaches: int
    customers_over_quota: int
    incidents_over_quota: int


@dataclass(frozen=True)
class OpenSummary:
    """Open incidents at the cut-off for one tier (or 'all'), with the oldest of them."""

    tier: str
    open: int
    breached: int
    due_soon: int
    older_than_6_months: int = 0
    oldest_ticket_id: str | None = None
    oldest_created_at: dt.datetime | None = None
    oldest_customer_id: str | None = None
    oldest_customer_name: str | None = None
    oldest_severity: int | None = None


@dataclass(frozen=True)
class GoldSummary:
    gold_customers_at_cutoff: int
    reconciliation_lines: int
    problem_lines: int
    owed_eur: object  # Decimal, exact
    invoiced_eur: object
    difference_eur: object


@dataclass(frozen=True)
class OpenItemsTotals:
    """Sum over the view gold_open_items (every customer-year with something to invoice or to
    credit, any year): the figures of the finance report's page 1. Never netted."""

    to_invoice_eur: Decimal
    to_invoice_items: int
    to_credit_eur: Decimal
    to_credit_items: int


@dataclass
class DashboardData:
    as_of: dt.datetime
    timezone: str
    business_day_seconds: int
    reporting_month: str
    previous_month: str
    months: list[str]  # oldest first, ends with reporting_month
    breach_window: list[str]  # the last 3 months (oldest first) of the top-breaches view
    compliance: pd.DataFrame  # month, tier, metric, incidents, met, breached, pending, no_target, rate
    volume: pd.DataFrame  # month, tier, severity, incidents
    volume_tier: pd.DataFrame  # month, tier, incidents
    open_incidents: pd.DataFrame  # one row per open incident at the cut-off (see open_incidents())
    open_by_age: pd.DataFrame  # tier, bucket (index into AGE_BUCKETS), risk, incidents
    open_summary: dict[str, OpenSummary]
    top_breaches: pd.DataFrame  # tier (filter key), rank, customer_id, customer_name, customer_tier, ...
    quota_monthly: pd.DataFrame  # month, tier, customers_over, incidents_over, customers
    quota_customers: pd.DataFrame  # customers over quota in the reporting month
    gold_reconciliation: pd.DataFrame  # status, lines, owed_eur, invoiced_eur, difference_eur
    gold_problems: pd.DataFrame  # reconciliation lines whose status is not ok
    gold_summary: GoldSummary
    targets: pd.DataFrame  # tier, severity, first_response_seconds, resolution_seconds
    quotas: dict[str, int]
    kpis: dict[tuple[str, str], KpiValues] = field(default_factory=dict)  # (tier, month) -> values
    #: month, tier (and 'all'), metric, severity, met, breached, pending, rated, rate (NULL below MIN_RATED)
    compliance_severity: pd.DataFrame | None = None
    #: month, tier (and 'all'), metric, measured, median_seconds, p90_seconds (NULL below MIN_RATED)
    times: pd.DataFrame | None = None
    #: breached incident-metrics of incidents opened in the breach window (one row per incident and metric)
    breaches: pd.DataFrame | None = None
    #: Gold contracts ending within RENEWAL_WATCH_DAYS after the cut-off, with their last 12 months
    renewal_watch: pd.DataFrame | None = None
    #: rows of gold_open_items with the customer's name (exact Decimal money)
    open_items: pd.DataFrame | None = None
    open_items_totals: OpenItemsTotals | None = None
    #: (tier, severity) -> (first response, resolution) as the policy words them (None: no target)
    target_terms: dict[tuple[str, int], tuple[Target | None, Target | None]] = field(default_factory=dict)
    goal: Decimal = MANAGEMENT_GOAL

    def kpi(self, tier: str, month: str) -> KpiValues:
        return self.kpis[(tier, month)]
