"""View models of the monthly customer compliance PDF, built from the warehouse (issue 3).

Domain side: a DuckDB connection and the policy in, `sla.report_data.models.CustomerReport` out.
No Dagster, no templates. The figures are read set-based (a fixed handful of queries per
month, whatever the number of customers) and assembled per customer in Python.

Choices (also in the README):
- One report per customer with a contract in force on any local day of the month, or with
  incidents created in the month (an incident without a contract shows "no contract").
- The customer's tier, name, account manager and language are those of the contract in force
  on the month's last day (or the cut-off's local date, when earlier); failing that, the
  month's last contract; failing that, the customer's latest contract.
- Quota: incidents are judged against the tier in force on their creation date (as
  `incident_sla.over_quota`); the cover shows the quota of the tier above and, after a
  mid-month downgrade, never less than the incidents counted as included.
- Per-severity rows group each metric by the severity that applies to it (as `monthly_sla`);
  median and 90th percentile are DuckDB's median / quantile_cont over finished clocks, rounded
  to the second, the same figures as `monthly_sla`.
- Rates are exact Decimals (met / (met + breached)); the renderer rounds them once.
- The trend covers up to 12 months ending with the report month, never before the first month
  the warehouse holds data for, nor before the customer's first contract or incident.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sla.months import month_bounds, rate, shift_month
from sla.policy import Policy, parse_hours, parse_target
from sla.report_data.models import (
    MIN_P90_VALUES,
    Allowance,
    Breach,
    ClockSegment,
    Customer,
    CustomerReport,
    IncidentExplanation,
    IncidentRow,
    MetricSummary,
    PolicyText,
    Restatement,
    SeverityChange,
    SeverityRow,
    Summary,
    Target,
    TierChange,
    TrendPoint,
)

FAR_FUTURE = dt.date(9999, 12, 31)


class NoSuchCustomer(LookupError):
    """The customer has neither a contract nor incidents in the month."""


@dataclass(frozen=True)
class _Contract:
    customer_id: str
    name: str
    tier: str
    valid_from: dt.date
    valid_to: dt.date | None
    account_manager: str | None
    language: str
    account_manager_name: str | None = None
    terms: str | None = None  # a customer term set of the policy (contracts.csv `terms`)

    def covers(self, day: dt.date) -> bool:
        return self.valid_from <= day <= (self.valid_to or FAR_FUTURE)


# ----------------------------------------------------------------------------- small helpers
def policy_target(text: str | None, business_day_hours: float) -> Target | None:
    """'7 business days' -> Target(7, 'business_days', 201600), as the policy states it."""
    if text is None:
        return None
    amount, unit, seconds = parse_target(text, int(round(business_day_hours * 3600)))
    if amount != amount.to_integral_value() and seconds % 3600 == 0:  # 1.5 days of 8 h = 12 hours
        return Target(seconds // 3600, "business_hours", seconds)
    # fractional amounts are shown truncated; the seconds are exact
    return Target(int(amount), "business_hours" if unit == "hours" else "business_days", seconds)


def tier_targets(policy: Policy, tier: str | None, *, on: dt.date | None = None,
                 terms: str | None = None) -> dict[int, tuple[Target | None, Target | None]]:
    """A tier's targets as the policy words them, in the version in force `on` that day and with
    the contract's term set (sla-semantics.md section 6): what the incidents were measured against."""
    version = policy.version_on(on) if on is not None else policy
    bdh = version.calendar.business_day_hours
    texts = version.tier_target_texts(tier, terms) if tier in version.tiers else {}
    return {sev: tuple(policy_target(x, bdh) for x in texts.get(sev, (None, None)))  # type: ignore[misc]
            for sev in version.severities}


def policy_text(policy: Policy, tier: str | None, *, on: dt.date | None = None,
                terms: str | None = None) -> PolicyText:
    cal = (policy.version_on(on) if on is not None else policy).calendar
    weekly = []
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        hours = cal.weekly_hours.get(day)  # type: ignore[call-overload]
        if hours:
            start, end = parse_hours(hours)
            weekly.append((day, start.strftime("%H:%M"),
                           "24:00" if end == dt.time.max.replace(microsecond=0) else end.strftime("%H:%M")))
    bdh = cal.business_day_hours
    targets = tier_targets(policy, tier, on=on, terms=terms)
    return PolicyText(
        timezone=cal.timezone,
        weekly_hours=tuple(weekly),
        business_day_hours=int(bdh) if float(bdh).is_integer() else bdh,  # type: ignore[arg-type]
        holidays_country=cal.holidays.country or "",
        holidays_subdivision=cal.holidays.subdivision,
        extra_closed_dates=tuple(d.isoformat() for d in cal.extra_closed_dates),
        pause_statuses=tuple(policy.statuses.pause),
        resolved_statuses=tuple(policy.statuses.resolved),
        severity_definitions=dict(policy.severity_definitions),
        targets=tuple((sev, fr, res) for sev, (fr, res) in sorted(targets.items())) if tier else (),
    )


def _local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(dt.timezone.utc)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(dt.timezone.utc)


def _rows(con, sql: str, params: list) -> list[dict]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


# ----------------------------------------------------------------------------- the queries
def _customer_filter(customer_id: str | None, column: str = "customer_id") -> tuple[str, list]:
    return (f" AND {column} = ?", [customer_id]) if customer_id is not None else ("", [])


def _fetch(con, month: str, first: dt.date, last: dt.date, customer_id: str | None,
           start_utc: dt.datetime, end_utc: dt.datetime) -> dict:
    cf, cp = _customer_filter(customer_id)
    cf_i, _ = _customer_filter(customer_id, "i.customer_id")
    # the incidents a report lists: opened in the month, and from earlier months those resolved
    # in the month or still open at the cut-off (sla-semantics.md section 4, "Carried over")
    listed = "(i.month = ? OR (i.month < ? AND (i.resolved_at IS NULL OR (i.resolved_at >= ? AND i.resolved_at < ?))))"
    lp = [month, month, start_utc, end_utc]
    contract_cols = {r[0] for r in con.execute("DESCRIBE contracts").fetchall()}
    am_name = "c.account_manager_name" if "account_manager_name" in contract_cols else "NULL"
    terms = "c.terms" if "terms" in contract_cols else "NULL"
    data: dict = {}
    data["as_of"] = con.execute("SELECT max(as_of) FROM run_params").fetchall()[0][0]
    data["data_start"] = con.execute("SELECT min(month) FROM incident_sla").fetchall()[0][0]
    # every contract of every customer reported on (contract in the month, or incidents in it)
    data["contracts"] = _rows(con, f"""
        WITH reported AS (
            SELECT customer_id FROM contracts
            WHERE valid_from <= ? AND coalesce(valid_to, DATE '9999-12-31') >= ? {cf}
            UNION
            SELECT customer_id FROM incident_sla i WHERE {listed} {cf}
        )
        SELECT r.customer_id, c.customer_name, c.tier, c.valid_from, c.valid_to,
               c.account_manager, c.language, {am_name} AS account_manager_name, {terms} AS terms
        FROM reported r LEFT JOIN contracts c USING (customer_id)
        ORDER BY r.customer_id, c.valid_from""", [last, first, *cp, *lp, *cp])
    data["incidents"] = _rows(con, f"""
        SELECT i.*, t.subject,
               i.ticket_id IN (SELECT ticket_id FROM data_warnings) AS ambiguous_order
        FROM incident_sla i JOIN tickets t USING (ticket_id)
        WHERE {listed} {cf_i}
        ORDER BY i.customer_id, i.created_at, i.ticket_id""", [*lp, *cp])
    data["severity_changes"] = _rows(con, f"""
        SELECT e.ticket_id, e.occurred_at, CAST(e.value AS INTEGER) AS severity
        FROM ticket_events e JOIN incident_sla i USING (ticket_id)
        WHERE {listed} {cf_i} AND e.kind = 'severity' AND e.occurred_at <= i.as_of
        ORDER BY e.ticket_id, e.occurred_at, e.line""", [*lp, *cp])
    explain = """(i.first_response_met = false
                  OR (i.first_response_met IS NULL AND i.first_response_target_seconds IS NOT NULL)
                  OR i.resolution_met = false
                  OR (i.resolution_met IS NULL AND i.resolution_target_seconds IS NOT NULL))"""
    data["segments"] = _rows(con, f"""
        SELECT s.ticket_id, s.seq, s.state, s.start_at, s.end_at, s.business_seconds
        FROM incident_clock_segments s JOIN incident_sla i USING (ticket_id)
        WHERE {listed} {cf_i} AND {explain}
        ORDER BY s.ticket_id, s.seq""", [*lp, *cp])
    # Resolution due instant: where the running clock reaches the target. It lies in the first
    # running segment whose cumulative running time reaches it, or (still running at the
    # cut-off) beyond the last segment; inverse calendar lookup as for the first response.
    data["resolution_due"] = dict(con.execute(f"""
        WITH seg AS (
            SELECT s.ticket_id, s.seq, s.state, s.start_at, s.business_seconds,
                   i.resolution_target_seconds AS target, i.resolved_at,
                   sum(CASE WHEN s.state = 'running' THEN s.business_seconds ELSE 0 END)
                       OVER (PARTITION BY s.ticket_id ORDER BY s.seq
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_incl,
                   row_number() OVER (PARTITION BY s.ticket_id ORDER BY s.seq DESC) AS from_end
            FROM incident_clock_segments s JOIN incident_sla i USING (ticket_id)
            WHERE {listed} {cf_i} AND i.resolution_target_seconds IS NOT NULL AND {explain}
        ), pick AS (
            SELECT ticket_id, arg_min(start_at, seq) AS start_at,
                   arg_min(target - (cum_incl - business_seconds), seq) AS remaining
            FROM seg
            WHERE state = 'running' AND (cum_incl >= target OR (from_end = 1 AND resolved_at IS NULL))
            GROUP BY ticket_id
        ), clocked AS (
            SELECT p.ticket_id, p.start_at, p.remaining,
                   CASE WHEN c.open_epoch IS NULL THEN 0
                        ELSE c.cum_before + least(greatest(epoch(p.start_at)::BIGINT - c.open_epoch, 0),
                                                  c.business_seconds) END + p.remaining AS goal
            FROM pick p ASOF LEFT JOIN business_calendar c ON epoch(p.start_at)::BIGINT >= c.open_epoch
        )
        SELECT k.ticket_id,
               CASE WHEN k.remaining <= 0 THEN k.start_at
                    ELSE to_timestamp(c.open_epoch + (k.goal - c.cum_before)) END AS due_at
        FROM clocked k ASOF LEFT JOIN business_calendar c ON k.goal > c.cum_before
        """, [*lp, *cp]).fetchall())
    metric = """
        SELECT customer_id, {sev} AS severity, count(*) AS incidents,
               count(*) FILTER (WHERE {met}) AS met, count(*) FILTER (WHERE NOT {met}) AS breached,
               count(*) FILTER (WHERE {met} IS NULL AND {tgt} IS NOT NULL AND NOT coalesce({exc}, false)) AS pending,
               count(*) FILTER (WHERE {tgt} IS NULL) AS no_target,
               CAST(round(median({secs})) AS BIGINT) AS median,
               CASE WHEN count({secs}) >= {min_p90}
                    THEN CAST(round(quantile_cont({secs}, 0.9)) AS BIGINT) END AS p90
        FROM incident_sla WHERE month = ? {cf} GROUP BY ALL"""
    data["fr_by_sev"] = _rows(con, metric.format(
        sev="first_response_severity", met="first_response_met", tgt="first_response_target_seconds",
        exc="first_response_excluded",
        secs="first_response_business_seconds", cf=cf, min_p90=MIN_P90_VALUES), [month, *cp])
    data["res_by_sev"] = _rows(con, metric.format(
        sev="resolution_severity", met="resolution_met", tgt="resolution_target_seconds",
        exc="resolution_excluded",
        secs="resolution_business_seconds", cf=cf, min_p90=MIN_P90_VALUES), [month, *cp])
    data["trend"] = _rows(con, f"""
        SELECT customer_id, month, count(*) AS incidents,
               count(*) FILTER (WHERE first_response_met) AS fr_met,
               count(*) FILTER (WHERE NOT first_response_met) AS fr_breached,
               count(*) FILTER (WHERE resolution_met) AS res_met,
               count(*) FILTER (WHERE NOT resolution_met) AS res_breached
        FROM incident_sla WHERE month BETWEEN ? AND ? {cf}
        GROUP BY ALL""", [shift_month(month, -11), month, *cp])
    return data


# ----------------------------------------------------------------------------- assembly
def _tier_changes(contracts: list[_Contract], first: dt.date, last: dt.date,
                  tz: ZoneInfo) -> tuple[TierChange, ...]:
    def tier_on(day: dt.date) -> str | None:
        for c in contracts:
            if c.covers(day):
                return c.tier
        return None

    changes: dict[dt.date, TierChange] = {}
    for c in contracts:
        if first <= c.valid_from <= last:
            before = tier_on(c.valid_from - dt.timedelta(days=1))
            if before != c.tier:
                changes[c.valid_from] = TierChange(_local_midnight(c.valid_from, tz), before, c.tier)
        if c.valid_to is not None:
            after_day = c.valid_to + dt.timedelta(days=1)
            if first <= after_day <= last and tier_on(after_day) is None:
                changes[after_day] = TierChange(_local_midnight(after_day, tz), c.tier, None)
    return tuple(changes[d] for d in sorted(changes))


def _main_contract(contracts: list[_Contract], first: dt.date, ref: dt.date) -> _Contract | None:
    for c in contracts:
        if c.covers(ref):
            return c
    in_month = [c for c in contracts if c.valid_from <= ref and (c.valid_to or FAR_FUTURE) >= first]
    if in_month:
        return max(in_month, key=lambda c: c.valid_from)
    return max(contracts, key=lambda c: c.valid_from) if contracts else None


def _merge_segments(rows: list[dict]) -> tuple[ClockSegment, ...]:
    merged: list[list] = []  # [start, end, state, seconds]
    for r in rows:
        start, end = _utc(r["start_at"]), _utc(r["end_at"])
        if merged and merged[-1][2] == r["state"] and merged[-1][1] == start:
            merged[-1][1] = end
            merged[-1][3] += int(r["business_seconds"])
        else:
            merged.append([start, end, r["state"], int(r["business_seconds"])])
    if len(merged) > 1:  # a zero-length segment (two changes at one instant) explains nothing
        merged = [m for m in merged if m[1] > m[0]] or merged[:1]
    return tuple(ClockSegment(s, e, st, secs) for s, e, st, secs in merged)


def _incident_row(r: dict, changes: list[dict]) -> IncidentRow:
    sev_changes = []
    current = int(r["created_severity"])
    for ch in changes:
        if ch["severity"] != current:
            sev_changes.append(SeverityChange(_utc(ch["occurred_at"]), current, ch["severity"]))
            current = ch["severity"]
    responded = r["first_response_at"] is not None
    resolved = r["resolved_at"] is not None
    return IncidentRow(
        ticket_id=r["ticket_id"],
        subject=r["subject"],
        severity=int(r["created_severity"]),
        created_at=_utc(r["created_at"]),
        status=r["current_status"],
        severity_changes=tuple(sev_changes),
        first_response_at=_utc(r["first_response_at"]),
        first_response_seconds=(r["first_response_business_seconds"] if responded
                                else r["first_response_elapsed_business_seconds"]),
        first_response_target_seconds=r["first_response_target_seconds"],
        first_response_met=r["first_response_met"],
        resolved_at=_utc(r["resolved_at"]),
        resolution_seconds=(r["resolution_business_seconds"] if resolved
                            else r["resolution_elapsed_business_seconds"]),
        resolution_target_seconds=r["resolution_target_seconds"],
        resolution_met=r["resolution_met"],
        paused_seconds=(r["paused_business_seconds"] if resolved
                        else r["paused_elapsed_business_seconds"]),
        over_quota=r["over_quota"],
        month=r["month"],
        ambiguous_order=bool(r.get("ambiguous_order")),
        first_response_excluded=bool(r.get("first_response_excluded")),
        resolution_excluded=bool(r.get("resolution_excluded")),
        exclusion_reason="; ".join(dict.fromkeys(x for x in (r.get("first_response_exclusion_reason"),
                                                            r.get("resolution_exclusion_reason")) if x)) or None,
    )


def _metric_summary(rows: list[dict], which: str) -> MetricSummary:
    excluded = sum(bool(r.get(f"{which}_excluded")) for r in rows)  # approved exclusions: no rate
    met = sum(r[f"{which}_met"] is True for r in rows)
    breached = sum(r[f"{which}_met"] is False for r in rows)
    no_target = sum(r[f"{which}_target_seconds"] is None and not r.get(f"{which}_excluded") for r in rows)
    pending = len(rows) - met - breached - no_target - excluded
    return MetricSummary(met, breached, pending, no_target, rate(met, breached), excluded)


def _allowance(policy: Policy, tier: str, day: dt.date, rows: list[dict]) -> int:
    """The tier's monthly allowance: from the incidents themselves (version and terms in force on
    their creation date, incident_sla.quota), else the version in force on `day`."""
    quotas = [r["quota"] for r in rows if r.get("tier") == tier and r.get("quota") is not None]
    if quotas:
        return max(quotas)
    version = policy.version_on(day)
    return version.tiers[tier].monthly_incident_quota if tier in version.tiers else 0


def _terms_description(policy: Policy, terms: str | None, day: dt.date) -> str | None:
    """The contract's own terms, in the words of the policy (None: the standard terms)."""
    if not terms:
        return None
    term_set = policy.version_on(day).terms.get(terms)
    return (term_set.description if term_set and term_set.description else terms)


def _restatements(con, month: str, customer_id: str | None) -> dict[str, tuple[Restatement, ...]]:
    """Changes to figures of earlier delivered reports (sla-semantics.md section 6), per customer."""
    if not con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'restatements'").fetchall()[0][0]:
        return {}
    cf, cp = _customer_filter(customer_id)
    out: dict[str, list[Restatement]] = defaultdict(list)
    for r in _rows(con, f"""SELECT customer_id, month, figure, was, now, why FROM restatements
                           WHERE month < ? {cf} ORDER BY customer_id, month, figure""", [month, *cp]):
        out[r["customer_id"]].append(Restatement(r["month"], r["figure"], int(r["was"] or 0), int(r["now"] or 0), r["why"]))
    return {k: tuple(v) for k, v in out.items()}


def build_customer_reports(con, policy: Policy, month: str,
                           customer_id: str | None = None) -> list[CustomerReport]:
    """One view model per customer with a contract in force during `month` or incidents in it.

    `month` is YYYY-MM (local calendar month of the policy's timezone). With `customer_id`, only
    that customer (NoSuchCustomer when it has neither contract nor incidents in the month).
    The cut-off is the warehouse's `as_of` (the figures are as of it).
    """
    tz = policy.calendar.tz
    first, last = month_bounds(month)
    start_utc = _local_midnight(first, tz)
    end_utc = _local_midnight(last + dt.timedelta(days=1), tz)
    data = _fetch(con, month, first, last, customer_id, start_utc, end_utc)
    restated = _restatements(con, month, customer_id)
    if data["as_of"] is None:
        raise RuntimeError("the warehouse has no SLA figures yet (run `sla run` first)")
    cutoff = _utc(data["as_of"])
    ref_day = max(first, min(last, cutoff.astimezone(tz).date()))

    contracts: dict[str, list[_Contract]] = defaultdict(list)
    for r in data["contracts"]:
        contracts.setdefault(r["customer_id"], [])
        if r["tier"] is not None:
            contracts[r["customer_id"]].append(_Contract(
                r["customer_id"], r["customer_name"], r["tier"], r["valid_from"], r["valid_to"],
                r["account_manager"], r["language"] or "en", r["account_manager_name"], r["terms"]))
    if customer_id is not None and customer_id not in contracts:
        raise NoSuchCustomer(f"customer {customer_id!r} has no contract and no incidents in {month}")

    incidents: dict[str, list[dict]] = defaultdict(list)
    carried: dict[str, list[dict]] = defaultdict(list)
    for r in data["incidents"]:
        (incidents if r["month"] == month else carried)[r["customer_id"]].append(r)
    sev_changes: dict[str, list[dict]] = defaultdict(list)
    for r in data["severity_changes"]:
        sev_changes[r["ticket_id"]].append(r)
    segments: dict[str, list[dict]] = defaultdict(list)
    for r in data["segments"]:
        segments[r["ticket_id"]].append(r)
    by_sev: dict[tuple[str, str, int], dict] = {}
    for which in ("fr", "res"):
        for r in data[f"{which}_by_sev"]:
            if r["severity"] is not None:
                by_sev[(which, r["customer_id"], int(r["severity"]))] = r
    trend_rows: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in data["trend"]:
        trend_rows[r["customer_id"]][r["month"]] = r

    reports = []
    for cid in sorted(contracts):
        cs = contracts[cid]
        main = _main_contract(cs, first, ref_day)
        in_month = main is not None and main.valid_from <= last and (main.valid_to or FAR_FUTURE) >= first
        tier = main.tier if in_month else None  # older contracts only: "no contract" this month
        customer = Customer(
            id=cid,
            name=main.name if main else cid,
            tier=tier,  # type: ignore[arg-type]  # None renders as "no contract"
            account_manager=main.account_manager if main else None,
            account_manager_name=main.account_manager_name if main else None,
            language=(main.language if main and main.language in ("en", "de") else "en"),  # type: ignore[arg-type]
            tier_changes=_tier_changes(cs, first, last, tz),
        )
        rows = incidents.get(cid, [])
        incident_rows = tuple(_incident_row(r, sev_changes.get(r["ticket_id"], [])) for r in rows)
        old_rows = carried.get(cid, [])
        carried_rows = tuple(_incident_row(r, sev_changes.get(r["ticket_id"], [])) for r in old_rows)
        carried_open = [r for r in carried_rows if r.resolved_at is None]

        tp = policy.tiers.get(tier) if tier else None
        within = sum(r["over_quota"] is False for r in rows)
        quota = _allowance(policy, tier, last, rows) if tp else 0
        # tiers in force in the month, in order (sla-semantics.md section 4: one allowance each)
        month_tiers: list[str] = []
        for c in sorted(cs, key=lambda c: c.valid_from):
            if c.valid_from <= last and (c.valid_to or FAR_FUTURE) >= first and c.tier not in month_tiers:
                month_tiers.append(c.tier)
        for r in rows:  # incidents raised under a tier (ranked per tier in incident_sla)
            if r["tier"] is not None and r["tier"] not in month_tiers:
                month_tiers.append(r["tier"])
        allowances = tuple(
            Allowance(
                tier=t,
                quota=_allowance(policy, t, last, rows),
                used=sum(r["tier"] == t and r["over_quota"] is False for r in rows),
                over_quota=sum(r["tier"] == t and r["over_quota"] is True for r in rows),
            ) for t in month_tiers)
        history = trend_rows.get(cid, {})
        prev = history.get(shift_month(month, -1))

        def _prev(which: str, prev=prev) -> MetricSummary | None:
            if not prev:
                return None
            met, breached = prev[f"{which}_met"], prev[f"{which}_breached"]
            return MetricSummary(met, breached, 0, 0, rate(met, breached))

        summary = Summary(
            incidents_opened=len(rows),
            quota=max(quota, within),
            quota_used=within,
            over_quota=sum(r["over_quota"] is True for r in rows),
            first_response=_metric_summary(rows, "first_response"),
            resolution=_metric_summary(rows, "resolution"),
            open_at_cutoff=sum(r["resolved_at"] is None for r in rows),
            allowances=allowances,
            previous_first_response=_prev("fr"),
            previous_resolution=_prev("res"),
            carried_open=len(carried_open),
            carried_open_breached=sum(r.first_response_met is False or r.resolution_met is False
                                      for r in carried_open),
            carried_resolved=len(carried_rows) - len(carried_open),
        )

        contract_terms = main.terms if in_month and main else None
        targets = tier_targets(policy, tier, on=last, terms=contract_terms)
        all_targets = {t: tier_targets(policy, t, on=last, terms=contract_terms if t == tier else None)
                       for t in month_tiers}
        severities = []
        for sev in policy.severities:
            fr = by_sev.get(("fr", cid, sev), {})
            res = by_sev.get(("res", cid, sev), {})
            severities.append(SeverityRow(
                severity=sev, incidents=res.get("incidents", 0),
                first_response_target=targets[sev][0], resolution_target=targets[sev][1],
                first_response_median=fr.get("median"), first_response_p90=fr.get("p90"),
                resolution_median=res.get("median"), resolution_p90=res.get("p90"),
                first_response_met=fr.get("met", 0), first_response_breached=fr.get("breached", 0),
                resolution_met=res.get("met", 0), resolution_breached=res.get("breached", 0),
                first_response_pending=fr.get("pending", 0), resolution_pending=res.get("pending", 0),
                first_response_no_target=fr.get("no_target", 0),
                resolution_no_target=res.get("no_target", 0),
                tier_targets=(tuple((t, *all_targets[t][sev]) for t in month_tiers)
                              if len(month_tiers) > 1 else ()),
            ))

        starts = [shift_month(month, -11), data["data_start"] or month]
        customer_first = min([c.valid_from.strftime("%Y-%m") for c in cs] + list(history) + [month])
        start = max(starts + [customer_first])
        trend = []
        m = start
        while m <= month:
            h = history.get(m)
            trend.append(TrendPoint(m, h["incidents"], rate(h["fr_met"], h["fr_breached"]),
                                    rate(h["res_met"], h["res_breached"]),
                                    h["fr_met"], h["fr_met"] + h["fr_breached"],
                                    h["res_met"], h["res_met"] + h["res_breached"]) if h
                         else TrendPoint(m, 0, None, None))
            m = shift_month(m, 1)

        fr_due = {r["ticket_id"]: r["first_response_due_at"] for r in (*rows, *old_rows)}
        explanations = []
        for row in (*incident_rows, *carried_rows):
            if row.needs_explanation:
                explanations.append(IncidentExplanation(
                    ticket_id=row.ticket_id,
                    segments=_merge_segments(segments.get(row.ticket_id, [])),
                    first_response_due_at=_utc(fr_due.get(row.ticket_id)),
                    resolution_due_at=_utc(data["resolution_due"].get(row.ticket_id)),
                ))

        breaches = []
        for r in rows:
            for which, metric in (("first_response", "first_response"), ("resolution", "resolution")):
                if r[f"{which}_met"] is False:
                    done = r["first_response_at" if which == "first_response" else "resolved_at"]
                    secs = (r[f"{which}_business_seconds"] if done is not None
                            else r[f"{which}_elapsed_business_seconds"])
                    sev = r[f"{which}_severity"]
                    breaches.append(Breach(
                        r["ticket_id"], int(sev if sev is not None else r["created_severity"]), metric,
                        int(secs or 0) - int(r[f"{which}_target_seconds"])))

        tiers_targets = tuple((t, tuple((sev, fr, res) for sev, (fr, res) in sorted(all_targets[t].items())))
                              for t in month_tiers)
        reports.append(CustomerReport(
            customer=customer, month=month, cutoff=cutoff, summary=summary,
            severities=tuple(severities), trend=tuple(trend), incidents=incident_rows,
            explanations=tuple(explanations), policy=policy_text(policy, tier, on=last, terms=contract_terms),
            terms_description=_terms_description(policy, contract_terms, last),
            restatements=restated.get(cid, ()),
            timezone=policy.calendar.timezone,
            carried_over=carried_rows,
            breaches=tuple(breaches),
            has_resolution_targets=any(res is not None for _, ts in tiers_targets for _, _, res in ts)
            or not tiers_targets,
            tiers_targets=tiers_targets,
        ))
    return reports
