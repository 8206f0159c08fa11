"""A realistic, self-consistent sample view model for the customer report (demo and tests).

Used by the rendering tests and by `python -m reports.snapshot`. The figures are
derived from a small ticket history with a tiny business-time helper (Mon-Fri
09:00-17:00 Europe/Berlin, no holidays in March 2026) so that the sample reads
right to a reviewer; the real figures come from the warehouse.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from reports.viewmodels import (
    Branding,
    ClockSegment,
    Customer,
    CustomerReport,
    IncidentExplanation,
    IncidentRow,
    MetricSummary,
    PolicyText,
    SeverityChange,
    SeverityRow,
    Summary,
    Target,
    TierChange,
    TrendPoint,
)

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc

GOLD_TARGETS = {
    1: (Target.hours(8), Target.hours(16)),
    2: (Target.hours(8), Target.days(3)),
    3: (Target.hours(8), Target.days(7)),
    4: (Target.hours(24), None),
}
SEVERITY_DEFINITIONS = {
    1: "Critical - production down or unusable, no workaround.",
    2: "High - major function impaired, workaround hard or unavailable.",
    3: "Medium - function impaired, workaround available.",
    4: "Low - question, cosmetic issue or feature request.",
}


def local(s: str) -> datetime:
    """'2026-03-02 09:15' Berlin local -> aware UTC datetime."""
    return datetime.strptime(s, "%Y-%m-%d %H:%M").replace(tzinfo=BERLIN).astimezone(UTC)


def business_seconds(start: datetime, end: datetime) -> int:
    """Overlap of [start, end) with Mon-Fri 09:00-17:00 Berlin (sample only, no holidays)."""
    if end <= start:
        return 0
    total = 0
    day = start.astimezone(BERLIN).date()
    last = end.astimezone(BERLIN).date()
    while day <= last:
        if day.weekday() < 5:
            o = datetime(day.year, day.month, day.day, 9, tzinfo=BERLIN)
            c = datetime(day.year, day.month, day.day, 17, tzinfo=BERLIN)
            lo, hi = max(start, o), min(end, c)
            if hi > lo:
                total += int((hi - lo).total_seconds())
        day += timedelta(days=1)
    return total


def _incident(ticket_id, subject, severity, created, first_response, statuses, cutoff,
              sev_changes=(), over_quota=False):
    """Build (IncidentRow, segments) from local-time strings.

    statuses: [(local time, status)] after creation (creation starts as 'new').
    """
    created_at = local(created)
    fr_at = local(first_response) if first_response else None
    events = [(created_at, "new")] + [(local(t), s) for t, s in statuses]
    changes = tuple(SeverityChange(local(t), a, b) for t, a, b in sev_changes)
    segments = []
    resolved_at = None
    for k, (t, st) in enumerate(events):
        end = events[k + 1][0] if k + 1 < len(events) else cutoff
        state = ("stopped" if st in ("solved", "closed")
                 else "paused" if st == "pending" else "running")
        if st in ("solved", "closed") and (k == 0 or events[k - 1][1] not in ("solved", "closed")):
            resolved_at = t
        if st not in ("solved", "closed"):
            resolved_at = None
        segments.append(ClockSegment(t, end, state, business_seconds(t, end)))
    # merge adjacent segments with the same state (e.g. new -> open)
    merged: list[ClockSegment] = []
    for seg in segments:
        if merged and merged[-1].state == seg.state:
            m = merged[-1]
            merged[-1] = ClockSegment(m.start, seg.end, m.state,
                                      m.business_seconds + seg.business_seconds)
        else:
            merged.append(seg)
    final_status = events[-1][1]
    if resolved_at is not None:  # drop the trailing 'stopped' segment after the resolution
        merged = [s for s in merged if s.start < resolved_at]

    def sev_at(instant):
        sev = severity
        for ch in changes:
            if ch.at <= instant:
                sev = ch.to_severity
        return sev

    fr_target = GOLD_TARGETS[sev_at(fr_at or cutoff)][0]
    res_target = GOLD_TARGETS[sev_at(resolved_at or cutoff)][1]
    fr_secs = business_seconds(created_at, fr_at or cutoff)
    run = sum(s.business_seconds for s in merged if s.state == "running")
    paused = sum(s.business_seconds for s in merged if s.state == "paused")

    def met(value, tgt, done):
        if tgt is None:
            return None
        if value > tgt.seconds:
            return False
        return True if done else None

    row = IncidentRow(
        ticket_id=ticket_id, subject=subject, severity=severity, created_at=created_at,
        status=final_status, severity_changes=changes,
        first_response_at=fr_at, first_response_seconds=fr_secs,
        first_response_target_seconds=fr_target.seconds if fr_target else None,
        first_response_met=met(fr_secs, fr_target, fr_at is not None),
        resolved_at=resolved_at, resolution_seconds=run,
        resolution_target_seconds=res_target.seconds if res_target else None,
        resolution_met=met(run, res_target, resolved_at is not None),
        paused_seconds=paused, over_quota=over_quota,
    )
    due_fr = _due(created_at, fr_target) if fr_target else None
    return row, tuple(merged), due_fr, (row.resolution_target_seconds, run)


def _due(start: datetime, tgt: Target) -> datetime:
    """Earliest instant where business time since start reaches the target (sample helper)."""
    t = start
    remaining = tgt.seconds
    while True:
        loc = t.astimezone(BERLIN)
        o = loc.replace(hour=9, minute=0, second=0, microsecond=0)
        c = loc.replace(hour=17, minute=0, second=0, microsecond=0)
        if loc.weekday() < 5 and loc < c:
            lo = max(loc, o)
            avail = int((c - lo).total_seconds())
            if avail >= remaining:
                return (lo + timedelta(seconds=remaining)).astimezone(UTC)
            remaining -= avail
        t = (o + timedelta(days=1)).astimezone(UTC)


def _resolution_due(segments, target_seconds, cutoff):
    """Instant at which the running segments reach the target (sample helper)."""
    if target_seconds is None:
        return None
    remaining = target_seconds
    for seg in segments:
        if seg.state != "running":
            continue
        if seg.business_seconds >= remaining:
            return _due(seg.start, Target(0, "business_hours", remaining))
        remaining -= seg.business_seconds
    last = segments[-1] if segments else None
    if last is not None and last.state == "running" and last.end == cutoff:
        return _due(cutoff, Target(0, "business_hours", remaining))
    return None


def _rate(met: int, breached: int) -> Decimal | None:
    if met + breached == 0:
        return None
    return (Decimal(met) / Decimal(met + breached)).quantize(Decimal("0.0001"), ROUND_HALF_UP)


def _metric_summary(rows, which: str) -> MetricSummary:
    met = breached = pending = no_target = 0
    for r in rows:
        flag = getattr(r, f"{which}_met")
        tgt = getattr(r, f"{which}_target_seconds")
        if tgt is None:
            no_target += 1
        elif flag is True:
            met += 1
        elif flag is False:
            breached += 1
        else:
            pending += 1
    return MetricSummary(met, breached, pending, no_target, _rate(met, breached))


def _p90(values):
    if not values:
        return None
    values = sorted(values)
    k = max(0, -(-9 * len(values) // 10) - 1)  # nearest rank
    return values[k]


def _severity_rows(rows) -> tuple[SeverityRow, ...]:
    out = []
    for sev in (1, 2, 3, 4):
        group = [r for r in rows if r.current_severity == sev]
        fr = [r.first_response_seconds for r in group if r.first_response_at is not None]
        res = [r.resolution_seconds for r in group if r.resolved_at is not None]
        out.append(SeverityRow(
            severity=sev, incidents=len(group),
            first_response_target=GOLD_TARGETS[sev][0], resolution_target=GOLD_TARGETS[sev][1],
            first_response_median=int(statistics.median(fr)) if fr else None,
            first_response_p90=_p90(fr),
            resolution_median=int(statistics.median(res)) if res else None,
            resolution_p90=_p90(res),
            first_response_met=sum(r.first_response_met is True for r in group),
            first_response_breached=sum(r.first_response_met is False for r in group),
            resolution_met=sum(r.resolution_met is True for r in group),
            resolution_breached=sum(r.resolution_met is False for r in group),
        ))
    return tuple(out)


def _policy() -> PolicyText:
    return PolicyText(
        severity_definitions=dict(SEVERITY_DEFINITIONS),
        targets=tuple((s, fr, res) for s, (fr, res) in GOLD_TARGETS.items()),
    )


def _trend(current_month: str, current: TrendPoint) -> tuple[TrendPoint, ...]:
    history = [  # (incidents, fr met, fr breached, res met, res breached)
        (3, 3, 0, 3, 0), (2, 2, 0, 1, 1), (4, 4, 0, 4, 0), (1, 1, 0, 1, 0), (0, 0, 0, 0, 0),
        (5, 4, 1, 5, 0), (3, 3, 0, 2, 1), (2, 2, 0, 2, 0), (6, 5, 1, 5, 1), (4, 4, 0, 3, 0),
        (3, 3, 0, 3, 0),
    ]
    y, m = map(int, current_month.split("-"))
    points = []
    for k, (n, fm, fb, rm, rb) in enumerate(history):
        back = len(history) - k
        yy, mm = divmod((y * 12 + m - 1) - back, 12)
        points.append(TrendPoint(f"{yy:04d}-{mm + 1:02d}", n, _rate(fm, fb), _rate(rm, rb)))
    return tuple(points) + (current,)


def sample_report(language: str = "en", *, customer_name: str = "Acme Logistik GmbH",
                  subjects: dict[str, str] | None = None,
                  account_manager: str = "Jana Becker") -> CustomerReport:
    cutoff = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
    subjects = subjects or {}
    specs = [
        ("RT-10412", "Warehouse scanners cannot sync with the inventory service", 2,
         "2026-03-02 09:15", "2026-03-02 11:02",
         [("2026-03-02 11:02", "open"), ("2026-03-04 15:30", "solved"),
          ("2026-03-06 15:30", "closed")], ()),
        ("RT-10437", "Invoice export fails for orders with more than 1,000 lines", 3,
         "2026-03-05 10:40", "2026-03-05 12:10",
         [("2026-03-05 12:10", "open"), ("2026-03-06 16:00", "solved"),
          ("2026-03-09 09:30", "open"), ("2026-03-09 12:30", "solved")],
         (("2026-03-05 13:00", 3, 1),)),
        ("RT-10458", "Production API returns HTTP 503 for all tenants", 1,
         "2026-03-10 17:30", "2026-03-11 09:20",
         [("2026-03-11 09:20", "open"), ("2026-03-11 11:00", "pending"),
          ("2026-03-11 14:00", "open"), ("2026-03-12 11:00", "solved")], ()),
        ("RT-10471", "Single sign-on loops back to the login page after password reset", 2,
         "2026-03-16 13:00", "2026-03-17 14:30",
         [("2026-03-17 14:30", "open"), ("2026-03-18 12:00", "solved")], ()),
        ("RT-10490", "Label printer template shows wrong customs codes", 3,
         "2026-03-23 10:00", "2026-03-23 11:00",
         [("2026-03-23 11:00", "open"), ("2026-03-23 15:00", "pending"),
          ("2026-03-25 10:00", "open")], ()),
        ("RT-10502", "Question: how to add a second delivery address per customer", 4,
         "2026-03-26 15:00", "2026-03-27 09:30",
         [("2026-03-27 09:30", "open"), ("2026-03-27 12:00", "solved")], ()),
        ("RT-10519", "Route planning service unavailable since 14:00", 1,
         "2026-03-31 14:00", "2026-03-31 14:45", [("2026-03-31 14:45", "open")], ()),
    ]
    rows, explanations = [], []
    for rank, (tid, subj, sev, created, fr, statuses, chg) in enumerate(specs, start=1):
        row, segs, due_fr, _ = _incident(tid, subjects.get(tid, subj), sev, created, fr, statuses,
                                         cutoff, chg, over_quota=rank > 4)
        rows.append(row)
        if row.needs_explanation:
            res_due = _resolution_due(segs, row.resolution_target_seconds, cutoff)
            explanations.append(IncidentExplanation(tid, segs, first_response_due_at=due_fr,
                                                    resolution_due_at=res_due))
    fr_sum = _metric_summary(rows, "first_response")
    res_sum = _metric_summary(rows, "resolution")
    summary = Summary(
        incidents_opened=len(rows), quota=4, quota_used=min(len(rows), 4),
        over_quota=sum(bool(r.over_quota) for r in rows),
        first_response=fr_sum, resolution=res_sum,
        open_at_cutoff=sum(r.resolved_at is None for r in rows),
    )
    month = "2026-03"
    trend = _trend(month, TrendPoint(month, len(rows), fr_sum.rate, res_sum.rate))
    customer = Customer(
        id="C-0042", name=customer_name, tier="gold", account_manager=account_manager,
        language=language,
        tier_changes=(TierChange(local("2026-03-01 00:00"), "enterprise", "gold"),),
    )
    return CustomerReport(
        customer=customer, month=month, cutoff=cutoff, summary=summary,
        severities=_severity_rows(rows), trend=trend, incidents=tuple(rows),
        explanations=tuple(explanations), policy=_policy(), branding=Branding(),
    )


def empty_report(language: str = "en") -> CustomerReport:
    """A customer with a contract but no incidents in the month (and no history)."""
    vm = sample_report(language)
    zero = MetricSummary()
    return replace(
        vm,
        customer=replace(vm.customer, id="C-0077", name="Quiet Customer AG", tier="enterprise",
                         tier_changes=(), account_manager=None),
        summary=Summary(0, 2, 0, 0, zero, zero, 0),
        severities=tuple(replace(r, incidents=0, first_response_median=None,
                                 first_response_p90=None, resolution_median=None,
                                 resolution_p90=None, first_response_met=0,
                                 first_response_breached=0, resolution_met=0,
                                 resolution_breached=0) for r in vm.severities),
        trend=tuple(TrendPoint(p.month, 0, None, None) for p in vm.trend),
        incidents=(), explanations=(),
    )
