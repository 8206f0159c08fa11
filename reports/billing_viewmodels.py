"""View model of the yearly Gold billing report for finance (issue 4).

Plain frozen dataclasses, fully computed by `sla.billing_report.build_billing_report`; the
renderer (`reports.billing`) only formats them. Money is `Decimal` with two places (EUR),
never float; dates are `datetime.date` (local calendar dates of the business timezone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from reports.viewmodels import Branding, MetricSummary

#: reconciliation statuses in the order the report lists them (sla-semantics.md section 5)
STATUSES = ("ok", "under_billed", "over_billed", "not_gold", "overlap", "not_invoiced")

STATUS_LABELS = {
    "ok": "ok",
    "under_billed": "under-billed",
    "over_billed": "over-billed",
    "not_gold": "not Gold",
    "overlap": "double billing",
    "not_invoiced": "not invoiced",
}

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
        return STATUS_LABELS.get(self.status, self.status)


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

    def __post_init__(self) -> None:
        for name in ("owed", "invoiced", "difference"):
            if not isinstance(getattr(self, name), Decimal):
                raise TypeError(f"BillingLine.{name} must be a Decimal")

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

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

    def __post_init__(self) -> None:
        if self.cutoff.tzinfo is None or self.cutoff.utcoffset() is None:
            raise ValueError("GoldBillingReport.cutoff must be timezone-aware")

    @property
    def invoice_ids(self) -> tuple[str, ...]:
        return tuple(line.invoice_id for c in self.customers for line in c.invoices if line.invoice_id)
