"""An independent, deliberately naive reference of sla-semantics.md, for tests only.

It walks local calendar days and ticket histories one step at a time in plain Python: no
cumulative calendar table, no SQL. The production code must agree with it on every figure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import holidays

from sla.policy import Policy, parse_hours, target_seconds

UTC = dt.timezone.utc


class RefCalendar:
    """Each local day by the calendar of the policy version in force that day (section 6)."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.tz = policy.calendar.tz
        self._holidays: dict[int, object] = {}

    def _holidays_of(self, cal):
        if id(cal) not in self._holidays:
            self._holidays[id(cal)] = holidays.country_holidays(
                cal.holidays.country, subdiv=cal.holidays.subdivision,
                years=range(2000, 2041)) if cal.holidays.country else {}
        return self._holidays[id(cal)]

    def window(self, day: dt.date):
        cal = self.policy.version_on(day).calendar
        for extra in cal.extra_open_dates:
            if extra.date == day:
                start, end = parse_hours(extra.hours) if extra.hours else cal.default_open_window()
                break
        else:
            if day in cal.extra_closed_dates or day in self._holidays_of(cal):
                return None
            hours = cal.weekly_hours.get(("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday()])
            if not hours:
                return None
            start, end = parse_hours(hours)
        return (dt.datetime.combine(day, start, tzinfo=self.tz), dt.datetime.combine(day, end, tzinfo=self.tz))

    def windows(self, first: dt.date, last: dt.date):
        day = first
        while day <= last:
            w = self.window(day)
            if w:
                yield w
            day += dt.timedelta(days=1)

    def seconds(self, a: dt.datetime, b: dt.datetime) -> int:
        if b <= a:
            return 0
        total = 0
        for open_, close in self.windows(a.astimezone(self.tz).date(), b.astimezone(self.tz).date()):
            total += max(0, int((min(b, close) - max(a, open_)).total_seconds()))
        return total

    def due(self, start: dt.datetime, target: int) -> dt.datetime:
        if target <= 0:
            return start
        remaining = target
        day = start.astimezone(self.tz).date()
        while True:
            w = self.window(day)
            if w:
                begin = max(w[0], start)
                if begin < w[1]:
                    available = int((w[1] - begin).total_seconds())
                    if available >= remaining:
                        return (begin + dt.timedelta(seconds=remaining)).astimezone(UTC)
                    remaining -= available
            day += dt.timedelta(days=1)


@dataclass
class Ticket:
    ticket_id: str
    customer_id: str
    severity: int
    created_at: dt.datetime


@dataclass
class Event:
    ticket_id: str
    occurred_at: dt.datetime
    kind: str
    actor: str
    value: str | None
    order: int  # position in the input file: carries no meaning, never used to order events


@dataclass
class Contract:
    customer_id: str
    tier: str
    valid_from: dt.date
    valid_to: dt.date | None
    terms: str | None = None  # a term set of the policy; None = the tier's standard terms


@dataclass
class Exclusion:
    ticket_id: str
    metric: str  # first_response, resolution or both
    reason: str
    approved_by: str
    approved_at: dt.datetime


#: sla-semantics.md section 3, "Order of events": at one instant replies, then severity changes (least
#: to most severe), then status changes in this lifecycle order; then actor and value.
KIND_ORDER = {"reply": 0, "severity": 1, "status": 2}
LIFECYCLE = ["new", "open", "on_hold", "pending", "solved", "closed"]


def event_key(e: Event):
    if e.kind == "status":
        value_rank = LIFECYCLE.index(e.value)
    elif e.kind == "severity":
        value_rank = -int(e.value)
    else:
        value_rank = 0
    return (e.occurred_at, KIND_ORDER[e.kind], value_rank, e.actor or "", e.value or "")


def reference_incident_sla(tickets: list[Ticket], events: list[Event], contracts: list[Contract],
                           policy: Policy, as_of: dt.datetime, exclusions: list[Exclusion] = ()) -> dict[str, dict]:
    cal = RefCalendar(policy)
    tz = policy.calendar.tz
    resolved_set, pause_set = set(policy.statuses.resolved), set(policy.statuses.pause)
    # approved exclusions known at the cut-off; for one ticket and metric the latest approval (then the
    # later row) applies
    excluded: dict[tuple[str, str], Exclusion] = {}
    for x in sorted((x for x in exclusions if x.approved_at <= as_of), key=lambda x: x.approved_at):
        for metric in (("first_response", "resolution") if x.metric == "both" else (x.metric,)):
            excluded[(x.ticket_id, metric)] = x
    quotas: dict[str, int] = {}
    out: dict[str, dict] = {}
    for t in tickets:
        if t.created_at > as_of:
            continue
        history = sorted((e for e in events if e.ticket_id == t.ticket_id and e.occurred_at <= as_of),
                         key=event_key)
        agent_replies = [e.occurred_at for e in history if e.kind == "reply" and e.actor == "agent"]
        statuses = [e for e in history if e.kind == "status"]
        first_resolved = next((e.occurred_at for e in statuses if e.value in resolved_set), None)
        candidates = [x for x in (agent_replies[0] if agent_replies else None, first_resolved) if x is not None]
        first_response_at = min(candidates) if candidates else None

        status, resolved_entry = policy.statuses.initial, None
        for e in statuses:
            if e.value in resolved_set and status not in resolved_set:
                resolved_entry = e.occurred_at
            status = e.value
        resolved_at = resolved_entry if status in resolved_set else None

        stop = resolved_at or as_of
        running = paused = 0
        current, since = policy.statuses.initial, t.created_at
        for e in statuses + [None]:
            until = stop if e is None else min(e.occurred_at, stop)
            if until > since:
                secs = cal.seconds(since, until)
                if current in pause_set:
                    paused += secs
                elif current not in resolved_set:
                    running += secs
            if e is None or e.occurred_at >= stop:
                break
            current, since = e.value, max(since, e.occurred_at)

        def severity_at(at: dt.datetime) -> int:
            sev = t.severity
            for e in history:
                if e.kind == "severity" and e.occurred_at <= at:
                    sev = int(e.value)
            return sev

        local_date = t.created_at.astimezone(tz).date()
        contract = next((c for c in contracts if c.customer_id == t.customer_id and c.valid_from <= local_date
                         and (c.valid_to is None or local_date <= c.valid_to)), None)
        tier = contract.tier if contract else None
        terms = contract.terms if contract else None
        fr_sev = severity_at(first_response_at or as_of)
        res_sev = severity_at(resolved_at or as_of)
        fr_target = res_target = None
        if tier:
            # the version in force on the local creation date, under the contract's terms
            version = policy.version_on(local_date)
            bds = version.calendar.business_day_seconds
            base = version.tiers[tier]
            over = version.terms.get(terms) if terms else None
            fr_text, res_text = base.targets[fr_sev].first_response, base.targets[res_sev].resolution
            if over and fr_sev in over.targets and "first_response" in over.targets[fr_sev].model_fields_set:
                fr_text = over.targets[fr_sev].first_response
            if over and res_sev in over.targets and "resolution" in over.targets[res_sev].model_fields_set:
                res_text = over.targets[res_sev].resolution
            fr_target, res_target = target_seconds(fr_text, bds), target_seconds(res_text, bds)
            quotas[t.ticket_id] = (over.monthly_incident_quota if over and over.monthly_incident_quota is not None
                                   else base.monthly_incident_quota)
        fr_secs = cal.seconds(t.created_at, first_response_at) if first_response_at else None
        fr_elapsed = cal.seconds(t.created_at, as_of)
        if fr_target is None:
            fr_met = None
        elif fr_secs is not None:
            fr_met = fr_secs <= fr_target
        else:
            fr_met = False if fr_elapsed > fr_target else None
        if res_target is None:
            res_met = None
        elif resolved_at is not None:
            res_met = running <= res_target
        else:
            res_met = False if running > res_target else None
        x_fr, x_res = excluded.get((t.ticket_id, "first_response")), excluded.get((t.ticket_id, "resolution"))
        if x_fr:
            fr_met = None
        if x_res:
            res_met = None
        out[t.ticket_id] = dict(
            ticket_id=t.ticket_id, customer_id=t.customer_id, tier=tier,
            first_response_severity=fr_sev, resolution_severity=res_sev,
            first_response_at=first_response_at, resolved_at=resolved_at,
            first_response_business_seconds=fr_secs, first_response_target_seconds=fr_target,
            first_response_due_at=cal.due(t.created_at, fr_target) if fr_target is not None else None,
            first_response_met=fr_met,
            resolution_business_seconds=running if resolved_at else None,
            paused_business_seconds=paused if resolved_at else None,
            resolution_target_seconds=res_target, resolution_met=res_met,
            first_response_excluded=x_fr is not None, resolution_excluded=x_res is not None,
            first_response_exclusion_reason=x_fr.reason if x_fr else None,
            resolution_exclusion_reason=x_res.reason if x_res else None,
            terms=terms if tier else None,
            _month=t.created_at.astimezone(tz).strftime("%Y-%m"),
        )
    # quota: rank per customer, local month and tier by creation time, then ticket id; incidents
    # without a tier take no rank and are never over quota
    by_group: dict[tuple, list[Ticket]] = {}
    for t in tickets:
        if t.ticket_id in out:
            out[t.ticket_id]["over_quota"] = None
            if out[t.ticket_id]["tier"] is not None:
                by_group.setdefault((t.customer_id, out[t.ticket_id]["_month"], out[t.ticket_id]["tier"]), []).append(t)
    for (_, _, tier), group in by_group.items():
        for rank, t in enumerate(sorted(group, key=lambda x: (x.created_at, x.ticket_id)), start=1):
            out[t.ticket_id]["over_quota"] = rank > quotas[t.ticket_id]
    for row in out.values():
        del row["_month"]
    return out
