"""Management dashboard: plotly figures + one self-contained HTML file (issue 5).

Pure functions from `sla.report_data.dashboard.DashboardData` (warehouse query results) to
plotly figures and to HTML; no DuckDB, no Dagster. The page:

* embeds plotly.js once (one inline ``<script>``), the CSS inline, and the figures
  as one JSON block, so it opens from the file system or any static server and
  requests no URL at all;
* is rendered by the reports' one Jinja environment (autoescape on: customer
  names are hostile text). Text that goes into plotly (axis labels, hover) is
  HTML-escaped first, because plotly interprets tags such as ``<a href>`` and
  ``<b>`` in its labels; the JSON block escapes ``<``, ``>`` and ``&`` so no
  string can close the script element;
* filters by tier and period with a small inline script that only shows and
  hides what Python computed (trace visibility, x-axis range, table rows, KPI
  tile sets): nothing is recomputed in JavaScript;
* drills down without a server: a click on a customer (any table, or a bar of "Most
  breaches") or the search box narrows the open-incident and breached-incident tables
  to that customer's rows (or rows matching a ticket id);
* writes every age, duration, target and amount through reports/format.py, the one
  formatter of all outputs; compliance tiles carry the management goal
  (sla.report_data.models.MANAGEMENT_GOAL) and the gap to it;
* lays out from 420 px up (charts resize with their card, wide tables turn into
  cards below 600 px) and has a print stylesheet for "Print to PDF".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from reports import filters
from reports import format as fmt
from reports.render import environment
from sla.files import write_bytes_atomic
from sla.report_data.models import (
    AGE_BUCKETS,
    ALL,
    MANAGEMENT_GOAL,
    METRICS,
    MIN_RATED,
    RENEWAL_WATCH_DAYS,
    RISK_STATES,
    TIERS,
    DashboardData,
)

LANG = "en"
#: The management goal, set in ONE place: sla.report_data.models.MANAGEMENT_GOAL (not a contractual target).
DEFAULT_GOAL = float(MANAGEMENT_GOAL)
PERIODS = (3, 6, 12, 24)
DEFAULT_PERIOD = 12
TEMPLATE = "dashboard.html"

TIER_LABELS = {ALL: "All tiers", "professional": "Professional", "enterprise": "Enterprise",
               "gold": "Gold", "no contract": "No contract"}
TIER_COLORS = {ALL: "#1f3a5f", "professional": "#8a9bb0", "enterprise": "#1c8c8c", "gold": "#d98e04",
               "no contract": "#c9ced6"}
SEVERITY_COLORS = {1: "#b3261e", 2: "#e07b39", 3: "#e9c46a", 4: "#8ab17d"}
RISK_LABELS = {"breached": "Breached", "due_soon": "Due within 1 business day",
               "on_track": "On track", "no_target": "No target"}
RISK_COLORS = {"breached": "#b3261e", "due_soon": "#e07b39", "on_track": "#2a9d8f", "no_target": "#c9ced6"}
METRIC_LABELS = {"first_response": "First response", "resolution": "Resolution"}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
INK = "#2b3440"
GRID = "#e3e8ef"
#: No mode bar: its icons covered legend entries (issue 16); zoom by dragging, double-click resets,
#: and the page prints to a clean PDF (print stylesheet).
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "showLink": False, "showSendToCloud": False,
                 "displayModeBar": False}
AGE_LABELS = {"lt_1bd": "< 1 business day", "1_5bd": "1–5 business days", "5bd_1m": "5 business days – 1 month",
              "1_3m": "1–3 months", "3_6m": "3–6 months", "gt_6m": "> 6 months"}
SEVERITY_LINE_COLORS = {1: "#b3261e", 2: "#e07b39", 3: "#b8962e", 4: "#5f8f52"}


# --------------------------------------------------------------------------- formatting
def esc(text: object) -> str:
    """Escape text for plotly labels and hover (plotly renders <b>, <a href>, ... in strings)."""
    return html.escape("" if text is None else str(text), quote=True)


def fmt_rate(value: float | None) -> str:
    return filters.rate(None if value is None else Decimal(repr(float(value))), LANG)


def fmt_goal(goal: float) -> str:
    """The goal as written: '95 %' (no '.0' for a whole percentage)."""
    value = Decimal(repr(float(goal)))
    return filters.rate(value, LANG, places=0 if (value * 100) % 1 == 0 else 1)


def fmt_int(value) -> str:
    return filters.number(None if value is None else int(value), LANG)


def fmt_money(value) -> str:
    """Exact money through the one formatter of all outputs: 'EUR -17,988.00'."""
    return fmt.money(None if _is_missing(value) else Decimal(value), LANG)


def fmt_duration(seconds) -> str:
    """Business time through the one formatter: '13 h 19 min' (rounded up to the minute)."""
    return fmt.duration(None if _is_missing(seconds) else int(seconds), LANG)


def rate_or_counts(met: int, breached: int) -> str:
    """A rate from MIN_RATED rated incidents on, else counts: '3 of 4 met' (sla-semantics.md section 7)."""
    rated = int(met) + int(breached)
    if rated == 0:
        return filters.DASH
    if rated < MIN_RATED:
        return f"{fmt_int(met)} of {fmt_int(rated)} met"
    return fmt_rate(int(met) / rated)


def gap_pp(rate: float, goal: float) -> Decimal:
    """Distance of a rate from the goal in percentage points, one decimal (negative: under the goal)."""
    return ((Decimal(repr(float(rate))) - Decimal(repr(float(goal)))) * 100).quantize(Decimal("0.1"))


def fmt_pp(value: Decimal) -> str:
    return f"{'+' if value > 0 else ''}{value} pp"


def fmt_month(month: str) -> str:
    return filters.month_name(month, LANG)


def fmt_month_short(month: str) -> str:
    return filters.month_short(month, LANG)


def _month_start(month: str) -> dt.date:
    return dt.date(int(month[:4]), int(month[5:7]), 1)


def _month_after(month: str) -> dt.date:
    y, m = int(month[:4]), int(month[5:7])
    return dt.date(y + (m == 12), m % 12 + 1, 1)


def _is_missing(value) -> bool:
    try:
        return value is None or bool(value != value)  # NaN / NaT / pd.NA compare unequal
    except TypeError:  # pd.NA
        return True


def _val(value):
    return None if _is_missing(value) else value


# --------------------------------------------------------------------------- figure helpers
def _base_layout(fig: go.Figure, *, height: int, legend_title: str | None = None) -> go.Figure:
    fig.update_layout(
        height=height, autosize=True, margin=dict(l=56, r=16, t=36, b=40),
        font=dict(family=FONT, size=13, color=INK), paper_bgcolor="white", plot_bgcolor="white",
        hoverlabel=dict(font=dict(family=FONT, size=12), align="left"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0,
                    title=dict(text=legend_title) if legend_title else None),
    )
    fig.update_xaxes(gridcolor=GRID, linecolor="#c9ced6", zeroline=False)
    fig.update_yaxes(gridcolor=GRID, linecolor="#c9ced6", zeroline=False, automargin=True)
    return fig


def _meta(show_for) -> dict:
    """Trace metadata read by the page's filter script: the tier filter values that show it."""
    return {"show_for": list(show_for)}


def _month_axis(fig: go.Figure, data: DashboardData, period: int) -> None:
    start, end = period_range(data, period)
    fig.update_xaxes(type="date", range=[start, end], tickformat="%b %y", ticklabelmode="period")


def period_options(data: DashboardData) -> list[tuple[int, str]]:
    n = len(data.months)
    opts = [(p, f"{p} months") for p in PERIODS if p < n]
    opts.append((n, f"All {n} months" if n not in PERIODS else f"{n} months"))
    return opts


def default_period(data: DashboardData) -> int:
    return DEFAULT_PERIOD if DEFAULT_PERIOD < len(data.months) else len(data.months)


def period_range(data: DashboardData, period: int) -> list[str]:
    months = data.months[-period:]
    return [_month_start(months[0]).isoformat(), _month_after(months[-1]).isoformat()]


def _visible(show_for, tier: str = ALL) -> bool:
    return tier in show_for


def _monthly_trace_kwargs() -> dict:
    return {"xperiod": "M1", "xperiodalignment": "middle"}


# --------------------------------------------------------------------------- figures
def compliance_figure(data: DashboardData, *, goal: float = DEFAULT_GOAL) -> go.Figure:
    """Compliance rate per month, first response | resolution, one line per tier, goal line."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[METRIC_LABELS[m] for m in ("first_response", "resolution")],
                        shared_yaxes=True, horizontal_spacing=0.04)
    frame = data.compliance
    rated = frame["rate"].dropna()
    low = float(rated.min()) if len(rated) else goal
    y_min = max(0.0, min(goal, low) - 0.05)
    for col, metric in enumerate(("first_response", "resolution"), start=1):
        for tier in (ALL, *TIERS):
            part = frame[(frame["tier"] == tier) & (frame["metric"] == metric)]
            by_month = {r.month: r for r in part.itertuples()}
            if not any(_val(r.rate) is not None for r in by_month.values()):
                continue  # nothing rated for this tier and metric (e.g. professional resolution)
            xs, ys, custom = [], [], []
            for month in data.months:
                r = by_month.get(month)
                rate = None if r is None else _val(r.rate)
                xs.append(month)
                ys.append(rate)
                custom.append([
                    fmt_month(month), fmt_rate(rate),
                    fmt_int(0 if r is None else r.met), fmt_int(0 if r is None else r.breached),
                    fmt_int(0 if r is None else r.pending), fmt_int(0 if r is None else r.no_target),
                    fmt_int(0 if r is None else r.incidents),
                ])
            show_for = [ALL] if tier == ALL else [ALL, tier]
            fig.add_trace(go.Scatter(
                x=xs, y=ys, customdata=custom, name=TIER_LABELS[tier], legendgroup=tier,
                showlegend=col == 1, mode="lines+markers", connectgaps=False,
                line=dict(color=TIER_COLORS[tier], width=3.5 if tier == ALL else 2,
                          dash="solid"),
                marker=dict(size=6 if tier == ALL else 5),
                hovertemplate=(f"<b>{esc(TIER_LABELS[tier])} - {esc(METRIC_LABELS[metric])}</b><br>"
                               "%{customdata[0]}: <b>%{customdata[1]}</b><br>"
                               "met %{customdata[2]} · breached %{customdata[3]}<br>"
                               "pending %{customdata[4]} · no target %{customdata[5]}<br>"
                               "incidents %{customdata[6]}<extra></extra>"),
                meta=_meta(show_for), visible=_visible(show_for), **_monthly_trace_kwargs(),
            ), row=1, col=col)
        goal_label = f"Management goal {fmt_goal(goal)}"
        fig.add_trace(go.Scatter(
            x=[_month_start(data.months[0]).isoformat(), _month_after(data.months[-1]).isoformat()],
            y=[goal, goal], mode="lines", name=goal_label, legendgroup="goal", showlegend=col == 1,
            line=dict(color="#b3261e", width=1.5, dash="dash"), hoverinfo="skip",
        ), row=1, col=col)
    _base_layout(fig, height=380)
    fig.update_yaxes(tickformat=".0%", range=[y_min, 1.02], title_text="compliance rate", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", range=[y_min, 1.02], row=1, col=2)
    fig.update_layout(margin=dict(t=90), hovermode="closest", legend=dict(y=1.16))
    _month_axis(fig, data, default_period(data))
    return fig


def volume_severity_figure(data: DashboardData) -> go.Figure:
    """Incidents opened per month, stacked by severity at creation; one set of bars per tier filter."""
    fig = go.Figure()
    frame = data.volume
    keys = [ALL, *TIERS]
    breakdown = {}  # (month, severity) -> "professional 8 · ..." for the all-tiers hover
    order = {t: i for i, t in enumerate((*TIERS, "no contract"))}
    for r in sorted(frame[frame["tier"] != ALL].itertuples(), key=lambda r: order.get(r.tier, 99)):
        breakdown.setdefault((r.month, int(r.severity)), []).append(f"{esc(TIER_LABELS[r.tier])} {fmt_int(r.incidents)}")
    for key in keys:
        part = frame[frame["tier"] == key]
        for sev in (1, 2, 3, 4):
            rows = {r.month: r for r in part[part["severity"] == sev].itertuples()}
            ys = [int(rows[m].incidents) if m in rows else 0 for m in data.months]
            custom = [[fmt_month(m), fmt_int(y), " · ".join(breakdown.get((m, sev), [])) if key == ALL else
                       esc(TIER_LABELS[key])] for m, y in zip(data.months, ys)]
            show_for = [key]
            fig.add_trace(go.Bar(
                x=data.months, y=ys, customdata=custom, name=f"Sev {sev}", legendgroup=f"sev{sev}",
                showlegend=True, marker_color=SEVERITY_COLORS[sev],
                hovertemplate=(f"<b>Severity {sev}</b><br>%{{customdata[0]}}: <b>%{{customdata[1]}}</b> incidents"
                               "<br>%{customdata[2]}<extra></extra>"),
                meta=_meta(show_for), visible=_visible(show_for), **_monthly_trace_kwargs(),
            ))
    return _stacked_volume_layout(fig, data, legend_title="Severity at creation")


def volume_tier_figure(data: DashboardData) -> go.Figure:
    """Incidents opened per month, stacked by tier (no-contract incidents shown separately)."""
    fig = go.Figure()
    frame = data.volume[data.volume["tier"] != ALL]
    totals = data.volume_tier
    for tier in (*TIERS, "no contract"):
        rows = {r.month: r for r in totals[totals["tier"] == tier].itertuples()}
        if tier == "no contract" and not rows:
            continue
        ys = [int(rows[m].incidents) if m in rows else 0 for m in data.months]
        per_sev = {}
        for r in frame[frame["tier"] == tier].itertuples():
            per_sev.setdefault(r.month, []).append(f"Sev {int(r.severity)}: {fmt_int(r.incidents)}")
        custom = [[fmt_month(m), fmt_int(y), " · ".join(per_sev.get(m, []))] for m, y in zip(data.months, ys)]
        show_for = [ALL] if tier == "no contract" else [ALL, tier]
        fig.add_trace(go.Bar(
            x=data.months, y=ys, customdata=custom, name=TIER_LABELS[tier], marker_color=TIER_COLORS[tier],
            hovertemplate=(f"<b>{esc(TIER_LABELS[tier])}</b><br>%{{customdata[0]}}: <b>%{{customdata[1]}}</b> incidents"
                           "<br>%{customdata[2]}<extra></extra>"),
            meta=_meta(show_for), visible=_visible(show_for), **_monthly_trace_kwargs(),
        ))
    return _stacked_volume_layout(fig, data, legend_title="Tier")


def _stacked_volume_layout(fig: go.Figure, data: DashboardData, *, legend_title: str) -> go.Figure:
    """The layout both "incidents opened" charts share: stacked monthly bars, default period."""
    _base_layout(fig, height=340, legend_title=legend_title)
    fig.update_layout(barmode="stack", margin=dict(t=50), bargap=0.15)
    fig.update_yaxes(title_text="incidents opened")
    _month_axis(fig, data, default_period(data))
    return fig


def age_bucket_labels(data: DashboardData) -> list[str]:
    return [AGE_LABELS[b] for b in AGE_BUCKETS]


def open_age_figure(data: DashboardData) -> go.Figure:
    """Open incidents at the cut-off by age (business hours since creation), stacked by risk."""
    fig = go.Figure()
    labels = age_bucket_labels(data)
    frame = data.open_by_age
    for key in (ALL, *TIERS):
        part = frame[frame["tier"] == key]
        for risk in RISK_STATES:
            rows = {int(r.bucket): int(r.incidents) for r in part[part["risk"] == risk].itertuples()}
            ys = [rows.get(i, 0) for i in range(len(labels))]
            custom = [[labels[i], fmt_int(y)] for i, y in enumerate(ys)]
            show_for = [key]
            fig.add_trace(go.Bar(
                x=labels, y=ys, customdata=custom, name=RISK_LABELS[risk], legendgroup=risk,
                marker_color=RISK_COLORS[risk],
                hovertemplate=(f"<b>{esc(RISK_LABELS[risk])}</b> ({esc(TIER_LABELS[key])})<br>"
                               "age %{customdata[0]}: <b>%{customdata[1]}</b> open incidents<extra></extra>"),
                meta=_meta(show_for), visible=_visible(show_for),
            ))
    _base_layout(fig, height=340)
    fig.update_layout(barmode="stack", margin=dict(t=50), bargap=0.2)
    fig.update_xaxes(type="category", title_text="age at the cut-off")
    fig.update_yaxes(title_text="open incidents")
    return fig


def _customer_label(name, customer_id, width: int = 22) -> str:
    name = "" if _is_missing(name) else str(name)
    short = name if len(name) <= width else name[: width - 1] + "…"
    return esc(f"{short} ({customer_id})" if short else customer_id)


def top_breaches_figure(data: DashboardData) -> go.Figure:
    """Customers with the most breaches in the last 3 months (first response + resolution)."""
    fig = go.Figure()
    frame = data.top_breaches
    for key in (ALL, *TIERS):
        part = frame[frame["tier"] == key].sort_values("rank")
        ys = [_customer_label(r.customer_name, r.customer_id) for r in part.itertuples()]
        custom = [[esc(r.customer_name if not _is_missing(r.customer_name) else r.customer_id),
                   esc(TIER_LABELS.get(r.customer_tier, r.customer_tier)), fmt_int(r.breaches),
                   fmt_int(r.incidents), fmt_int(r.over_quota), _quota_use(r, data.reporting_month),
                   r.customer_id] for r in part.itertuples()]
        show_for = [key]
        for metric, column, color in (("first_response", "fr_breaches", "#e07b39"),
                                      ("resolution", "res_breaches", "#b3261e")):
            fig.add_trace(go.Bar(
                y=ys, x=[int(v) for v in part[column]], customdata=custom, orientation="h",
                name=METRIC_LABELS[metric], legendgroup=metric, marker_color=color,
                hovertemplate=("<b>%{customdata[0]}</b> (%{customdata[1]})<br>"
                               f"{esc(METRIC_LABELS[metric])} breaches: <b>%{{x}}</b> of %{{customdata[2]}}<br>"
                               "incidents %{customdata[3]} · over quota %{customdata[4]}<br>"
                               f"quota use {esc(fmt_month_short(data.reporting_month))}: %{{customdata[5]}} included"
                               "<extra></extra>"),
                meta=_meta(show_for), visible=_visible(show_for),
            ))
    _base_layout(fig, height=380, legend_title="Breaches:")
    fig.update_layout(barmode="stack", margin=dict(l=20, t=40), bargap=0.25)
    fig.update_yaxes(autorange="reversed", type="category", automargin=True)
    fig.update_xaxes(title_text="breaches")
    return fig


def _quota_use(r, month: str) -> str:
    """Quota use in the reporting month: '6 of 4 included' (from monthly_quota_view)."""
    quota = _val(r.month_quota)
    if quota is None:
        return f"no incidents in {fmt_month_short(month)}"
    return f"{fmt_int(r.month_incidents)} of {fmt_int(quota)}"


def quota_figure(data: DashboardData) -> go.Figure:
    """Customers over their included incidents per month, by tier."""
    fig = go.Figure()
    frame = data.quota_monthly
    for tier in TIERS:
        rows = {r.month: r for r in frame[frame["tier"] == tier].itertuples()}
        ys = [int(rows[m].customers_over) if m in rows else 0 for m in data.months]
        custom = [[fmt_month(m), fmt_int(y),
                   fmt_int(rows[m].customers if m in rows else 0),
                   fmt_int(rows[m].incidents_over if m in rows else 0),
                   fmt_int(data.quotas.get(tier))] for m, y in zip(data.months, ys)]
        show_for = [ALL, tier]
        fig.add_trace(go.Bar(
            x=data.months, y=ys, customdata=custom, name=TIER_LABELS[tier], marker_color=TIER_COLORS[tier],
            hovertemplate=(f"<b>{esc(TIER_LABELS[tier])}</b> (%{{customdata[4]}} included per month)<br>"
                           "%{customdata[0]}: <b>%{customdata[1]}</b> of %{customdata[2]} customers with incidents over quota"
                           "<br>%{customdata[3]} incidents beyond the included ones<extra></extra>"),
            meta=_meta(show_for), visible=_visible(show_for), **_monthly_trace_kwargs(),
        ))
    _base_layout(fig, height=340, legend_title="Tier")
    fig.update_layout(barmode="stack", margin=dict(t=50), bargap=0.15)
    fig.update_yaxes(title_text="customers over quota")
    _month_axis(fig, data, default_period(data))
    return fig


def gold_compliance_figure(data: DashboardData, *, goal: float = DEFAULT_GOAL) -> go.Figure:
    """Gold compliance per month, first response and resolution, with the management goal."""
    fig = go.Figure()
    frame = data.compliance[data.compliance["tier"] == "gold"]
    for metric, color, dash_style in (("first_response", TIER_COLORS["gold"], "solid"),
                                      ("resolution", TIER_COLORS["gold"], "dot")):
        rows = {r.month: r for r in frame[frame["metric"] == metric].itertuples()}
        ys = [(_val(rows[m].rate) if m in rows else None) for m in data.months]
        custom = [[fmt_month(m), fmt_rate(y), fmt_int(rows[m].met if m in rows else 0),
                   fmt_int(rows[m].breached if m in rows else 0)] for m, y in zip(data.months, ys)]
        fig.add_trace(go.Scatter(
            x=data.months, y=ys, customdata=custom, name=METRIC_LABELS[metric], mode="lines+markers",
            line=dict(color=color, width=2.5, dash=dash_style),
            hovertemplate=(f"<b>Gold - {esc(METRIC_LABELS[metric])}</b><br>%{{customdata[0]}}: <b>%{{customdata[1]}}</b><br>"
                           "met %{customdata[2]} · breached %{customdata[3]}<extra></extra>"),
            **_monthly_trace_kwargs(),
        ))
    fig.add_trace(go.Scatter(
        x=[_month_start(data.months[0]).isoformat(), _month_after(data.months[-1]).isoformat()],
        y=[goal, goal], mode="lines", name=f"Management goal {fmt_goal(goal)}",
        line=dict(color="#b3261e", width=1.5, dash="dash"), hoverinfo="skip"))
    rated = frame["rate"].dropna()
    y_min = max(0.0, min(goal, float(rated.min()) if len(rated) else goal) - 0.05)
    _base_layout(fig, height=300)
    fig.update_yaxes(tickformat=".0%", range=[y_min, 1.02])
    fig.update_layout(margin=dict(t=50))
    _month_axis(fig, data, default_period(data))
    return fig


def severity_compliance_figure(data: DashboardData) -> go.Figure:
    """Compliance per month and severity (the severity that applies to the metric), first response |
    resolution; points with fewer than MIN_RATED rated incidents are gaps (their counts in the hover)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[METRIC_LABELS[m] for m in ("first_response", "resolution")],
                        shared_yaxes=True, horizontal_spacing=0.04)
    frame = data.compliance_severity
    goal = float(data.goal)
    for col, metric in enumerate(("first_response", "resolution"), start=1):
        for key in (ALL, *TIERS):
            for sev in (1, 2, 3, 4):
                part = frame[(frame["tier"] == key) & (frame["metric"] == metric) & (frame["severity"] == sev)]
                rows = {r.month: r for r in part.itertuples()}
                if not any(int(r.rated) for r in rows.values()):
                    continue
                ys, custom = [], []
                for m in data.months:
                    r = rows.get(m)
                    ys.append(None if r is None else _val(r.rate))
                    custom.append([fmt_month(m), rate_or_counts(0, 0) if r is None else rate_or_counts(r.met, r.breached),
                                   fmt_int(0 if r is None else r.pending)])
                fig.add_trace(go.Scatter(
                    x=data.months, y=ys, customdata=custom, name=f"Severity {sev}", legendgroup=f"sev{sev}",
                    showlegend=col == 1, mode="lines+markers", connectgaps=False,
                    line=dict(color=SEVERITY_LINE_COLORS[sev], width=3 if sev == 1 else 1.8),
                    marker=dict(size=6 if sev == 1 else 4),
                    hovertemplate=(f"<b>Severity {sev} – {esc(METRIC_LABELS[metric])}</b> ({esc(TIER_LABELS[key])})<br>"
                                   "%{customdata[0]}: <b>%{customdata[1]}</b><br>pending %{customdata[2]}<extra></extra>"),
                    meta=_meta([key]), visible=_visible([key]), **_monthly_trace_kwargs(),
                ), row=1, col=col)
        fig.add_trace(go.Scatter(
            x=[_month_start(data.months[0]).isoformat(), _month_after(data.months[-1]).isoformat()],
            y=[goal, goal], mode="lines", name=f"Goal {fmt_goal(goal)}", legendgroup="goal", showlegend=col == 1,
            line=dict(color="#6b7785", width=1.2, dash="dash"), hoverinfo="skip"), row=1, col=col)
    rated = frame["rate"].dropna()
    y_min = max(0.0, min(goal, float(rated.min()) if len(rated) else goal) - 0.05)
    _base_layout(fig, height=360)
    fig.update_yaxes(tickformat=".0%", range=[y_min, 1.02])
    fig.update_yaxes(title_text="compliance rate", row=1, col=1)
    fig.update_layout(margin=dict(t=80), legend=dict(y=1.14))
    _month_axis(fig, data, default_period(data))
    return fig


def times_figure(data: DashboardData) -> go.Figure:
    """Median and 90th percentile business time per month, first response | resolution."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[METRIC_LABELS[m] for m in ("first_response", "resolution")],
                        horizontal_spacing=0.08)
    frame = data.times
    for col, metric in enumerate(("first_response", "resolution"), start=1):
        for key in (ALL, *TIERS):
            part = frame[(frame["tier"] == key) & (frame["metric"] == metric)]
            rows = {r.month: r for r in part.itertuples()}
            if not any(int(r.measured) for r in rows.values()):
                continue
            for stat, column, dash_style in (("Median", "median_seconds", "solid"), ("90th percentile", "p90_seconds", "dot")):
                ys, custom = [], []
                for m in data.months:
                    r = rows.get(m)
                    secs = None if r is None else _val(getattr(r, column))
                    ys.append(None if secs is None else int(secs) / 3600)
                    custom.append([fmt_month(m), fmt_duration(secs) if secs is not None else
                                   ("fewer than 5 measured" if column == "p90_seconds" and r is not None else filters.DASH),
                                   fmt_int(0 if r is None else r.measured)])
                fig.add_trace(go.Scatter(
                    x=data.months, y=ys, customdata=custom, name=stat, legendgroup=stat, showlegend=col == 1,
                    mode="lines+markers", connectgaps=False,
                    line=dict(color=TIER_COLORS[key], width=2.5 if stat == "Median" else 1.8, dash=dash_style),
                    marker=dict(size=5),
                    hovertemplate=(f"<b>{esc(stat)} – {esc(METRIC_LABELS[metric])}</b> ({esc(TIER_LABELS[key])})<br>"
                                   "%{customdata[0]}: <b>%{customdata[1]}</b> business time<br>"
                                   "%{customdata[2]} measured<extra></extra>"),
                    meta=_meta([key]), visible=_visible([key]), **_monthly_trace_kwargs(),
                ), row=1, col=col)
    _base_layout(fig, height=340)
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title_text="business hours", row=1, col=1)
    fig.update_layout(margin=dict(t=80), legend=dict(y=1.14))
    _month_axis(fig, data, default_period(data))
    return fig


@dataclass(frozen=True)
class FigureSpec:
    id: str
    figure: go.Figure
    timeseries: bool


def build_figures(data: DashboardData, *, goal: float = DEFAULT_GOAL) -> list[FigureSpec]:
    return [
        FigureSpec("fig-compliance", compliance_figure(data, goal=goal), True),
        FigureSpec("fig-severity", severity_compliance_figure(data), True),
        FigureSpec("fig-times", times_figure(data), True),
        FigureSpec("fig-volume-severity", volume_severity_figure(data), True),
        FigureSpec("fig-volume-tier", volume_tier_figure(data), True),
        FigureSpec("fig-open-age", open_age_figure(data), False),
        FigureSpec("fig-top-breaches", top_breaches_figure(data), False),
        FigureSpec("fig-quota", quota_figure(data), True),
        FigureSpec("fig-gold-compliance", gold_compliance_figure(data, goal=goal), True),
    ]


# --------------------------------------------------------------------------- page
def script_json(obj) -> Markup:
    """JSON safe inside <script type="application/json">: no '<', '>', '&' or line separators."""
    text = pio.to_json(obj, validate=False, pretty=False) if isinstance(obj, go.Figure) else \
        json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)
    for ch, rep in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, rep)
    return Markup(text)


def _delta(cur, prev, *, kind: str, better: str) -> dict:
    """Month-on-month change of a KPI, formatted; `better` is 'up', 'down' or 'none'."""
    if cur is None or prev is None:
        return {"text": "no comparison", "cls": "flat", "value": None}
    diff = cur - prev
    if kind == "rate":
        pp = gap_pp(cur, prev)
        text = fmt_pp(pp)
        sign = (pp > 0) - (pp < 0)
    else:
        text = f"{'+' if diff > 0 else ''}{fmt_int(diff)}"
        sign = (diff > 0) - (diff < 0)
    if sign == 0 or better == "none":
        cls = "flat"
    else:
        cls = "good" if (sign > 0) == (better == "up") else "bad"
    arrow = "▲" if sign > 0 else ("▼" if sign < 0 else "■")
    return {"text": f"{arrow} {text}", "cls": cls, "value": float(diff)}


def months_under_goal(data: DashboardData, tier: str, metric: str, last: int = 12) -> tuple[int, int]:
    """(months under the goal, months rated) among the last `last` months of the compliance frame."""
    frame = data.compliance
    months = data.months[-last:]
    part = frame[(frame["tier"] == tier) & (frame["metric"] == metric) & frame["month"].isin(months)]
    rates = [float(r) for r in part["rate"] if not _is_missing(r)]
    return sum(r < float(data.goal) for r in rates), len(rates)


def _rate_tile(data: DashboardData, key: str, label: str, tier: str, metric: str, met: int, breached: int,
               rate, prev_rate) -> dict:
    """A compliance tile: value coloured against the goal, the gap to the goal, the trend secondary."""
    goal = float(data.goal)
    rated = met + breached
    tile = {"key": key, "label": label, "value": rate, "text": rate_or_counts(met, breached),
            "sub": f"{fmt_int(met)} met · {fmt_int(breached)} breached",
            "delta": _delta(rate, prev_rate, kind="rate", better="up")}
    if rate is None or rated < MIN_RATED:
        has_target = any(terms[METRICS.index(metric)] is not None
                         for (t, _), terms in data.target_terms.items() if tier == ALL or t == tier)
        if not rated and not has_target:  # e.g. Professional resolution: measured, never rated
            tile.update(text="no target", sub=f"{TIER_LABELS[tier]} has no {METRIC_LABELS[metric].lower()} targets")
        tile.update(cls="neutral", goal_text=f"goal {fmt_goal(goal)} · too few rated for a rate" if rated
                    else f"goal {fmt_goal(goal)} · nothing rated", gap=None)
        if not rated and not has_target:
            tile["goal_text"] = "times are measured, not rated"
        return tile
    gap = gap_pp(rate, goal)
    under, months = months_under_goal(data, tier, metric)
    tile.update(cls="below" if gap < 0 else "meets", gap=str(gap),
                goal_text=f"goal {fmt_goal(goal)} · {fmt_pp(gap)}",
                streak=f"under the goal in {under} of the last {months} months" if months > 1 else "")
    return tile


def oldest_tile(data: DashboardData, tier: str) -> dict:
    o = data.open_summary[tier]
    if o.oldest_created_at is None:
        return {"key": "oldest_open", "label": "Oldest open incident", "value": None, "text": filters.DASH,
                "sub": "nothing open at the cut-off", "delta": None, "cls": "neutral"}
    created = o.oldest_created_at.astimezone(ZoneInfo(data.timezone))
    return {"key": "oldest_open", "label": "Oldest open incident", "value": o.oldest_ticket_id,
            "text": fmt.since(created, LANG),
            "sub": f"{o.oldest_ticket_id} · Sev {o.oldest_severity} · {o.oldest_customer_name or o.oldest_customer_id}",
            "goal_text": f"{fmt_int(o.older_than_6_months)} open for more than 6 months",
            "cls": "below" if o.older_than_6_months else "neutral", "delta": None,
            "created": _local(o.oldest_created_at, data.timezone), "older": o.older_than_6_months}


def kpi_tiles(data: DashboardData, tier: str) -> list[dict]:
    cur = data.kpi(tier, data.reporting_month)
    prev = data.kpi(tier, data.previous_month)
    o = data.open_summary[tier]
    vs = f"vs {fmt_month_short(data.previous_month)}"
    tiles = [
        _rate_tile(data, "fr_rate", "First response compliance", tier, "first_response",
                   cur.fr_met, cur.fr_breached, cur.fr_rate, prev.fr_rate),
        _rate_tile(data, "res_rate", "Resolution compliance", tier, "resolution",
                   cur.res_met, cur.res_breached, cur.res_rate, prev.res_rate),
        {"key": "breaches", "label": "Breaches", "value": cur.breaches, "text": fmt_int(cur.breaches),
         "sub": "first response + resolution",
         "delta": _delta(cur.breaches, prev.breaches, kind="count", better="down")},
        {"key": "open", "label": "Open at cut-off", "value": o.open, "text": fmt_int(o.open),
         "sub": f"{fmt_int(o.breached)} breached · {fmt_int(o.due_soon)} due ≤ 1 business day",
         "delta": None},
        oldest_tile(data, tier),
        {"key": "incidents", "label": "Incidents opened", "value": cur.incidents, "text": fmt_int(cur.incidents),
         "sub": f"{fmt_int(cur.incidents_over_quota)} beyond the included quota",
         "delta": _delta(cur.incidents, prev.incidents, kind="count", better="none")},
        {"key": "customers_over_quota", "label": "Customers over quota", "value": cur.customers_over_quota,
         "text": fmt_int(cur.customers_over_quota), "sub": "more incidents than included",
         "delta": _delta(cur.customers_over_quota, prev.customers_over_quota, kind="count", better="down")},
    ]
    for t in tiles:
        t["vs"] = vs
        t["raw"] = "" if t["value"] is None else (t["value"] if isinstance(t["value"], str) else repr(t["value"]))
        for k, v in (("cls", "neutral"), ("goal_text", ""), ("streak", ""), ("gap", None)):
            t.setdefault(k, v)
    return tiles


def _show_for(tier) -> str:
    return ALL if _is_missing(tier) or tier not in TIERS else f"{ALL} {tier}"


def _local(ts, tz: str) -> str:
    if _is_missing(ts):
        return filters.DASH
    return ts.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def _name(value) -> str:
    return "" if _is_missing(value) else str(value)


def _search(*parts) -> str:
    return " ".join(_name(p) for p in parts).lower()


def age_text(r, tz: str) -> str:
    """Business time up to a month ('13 h 19 min'), calendar words beyond ('since Dec 2024')."""
    if bool(r.older_than_a_month):
        return fmt.since(r.created_at.astimezone(ZoneInfo(tz)), LANG)
    return fmt_duration(r.age_business_seconds)


def open_rows(data: DashboardData) -> list[dict]:
    """Every open incident at the cut-off: breached and due soon first (the query's order)."""
    rows = []
    tz = data.timezone
    frame = data.open_incidents
    order = {"due_soon": 0, "breached": 1, "on_track": 2, "no_target": 3}
    frame = frame.assign(_o=frame["risk"].map(order)).sort_values("_o", kind="stable")
    for r in frame.itertuples():
        state = r.risk
        states = (("first_response", r.fr_state), ("resolution", r.res_state))
        if state == "breached":
            which = [METRIC_LABELS[m] for m, s in states if s == "breached"]
            since_ts = _val(r.breached_since)
            if since_ts is not None and since_ts.astimezone(ZoneInfo(tz)) + dt.timedelta(days=30) <= data.as_of:
                due = "overdue " + fmt.since(since_ts.astimezone(ZoneInfo(tz)), LANG)
            else:
                due = f"overdue by {fmt_duration(_val(r.overdue_seconds))}"
        elif state in ("due_soon", "on_track"):
            which = [METRIC_LABELS[m] for m, s in states if s == state]
            remaining = [int(v) for v, (_, s) in zip((r.fr_remaining, r.res_remaining), states)
                         if s == state and not _is_missing(v)]
            due = _local(_val(r.due_at), tz)
            if remaining and state == "due_soon":
                due += f" ({fmt_duration(min(remaining))} left)"
        else:
            which, due = [], "no target"
        rows.append({
            "show_for": _show_for(r.tier), "ticket_id": r.ticket_id, "customer_id": r.customer_id,
            "customer_name": _name(r.customer_name), "search": _search(r.ticket_id, r.customer_id, r.customer_name),
            "tier": TIER_LABELS.get(r.tier, r.tier), "severity": int(r.severity),
            "status": filters.status(r.current_status, LANG) if r.current_status in filters.STATUSES[LANG]
            else r.current_status,
            "created": _local(r.created_at, tz), "age": age_text(r, tz),
            "risk": state, "risk_label": RISK_LABELS[state], "metrics": ", ".join(which), "due": due,
        })
    return rows


def breach_rows(data: DashboardData) -> list[dict]:
    return [{
        "show_for": _show_for(r.tier), "ticket_id": r.ticket_id, "customer_id": r.customer_id,
        "customer_name": _name(r.customer_name), "search": _search(r.ticket_id, r.customer_id, r.customer_name),
        "tier": TIER_LABELS.get(r.tier, r.tier), "severity": filters.DASH if _is_missing(r.severity) else int(r.severity),
        "metric": METRIC_LABELS[r.metric], "over": f"+{fmt_duration(r.over_seconds)}",
        "created": _local(r.created_at, data.timezone), "still_open": bool(r.still_open),
    } for r in data.breaches.itertuples()]


def top_breach_rows(data: DashboardData) -> list[dict]:
    rows = []
    for r in data.top_breaches.sort_values(["tier", "rank"]).itertuples():
        rows.append({
            "show_for": r.tier, "rank": int(r.rank), "customer_id": r.customer_id,
            "customer_name": _name(r.customer_name), "search": _search(r.customer_id, r.customer_name),
            "tier": TIER_LABELS.get(r.customer_tier, r.customer_tier), "tier_key": r.customer_tier,
            "breaches": fmt_int(r.breaches), "fr": fmt_int(r.fr_breaches), "res": fmt_int(r.res_breaches),
            "incidents": fmt_int(r.incidents), "over_quota": fmt_int(r.over_quota),
            "months_over": fmt_int(r.months_over_quota), "quota_use": _quota_use(r, data.reporting_month),
            "month_over": int(r.month_over_quota),
        })
    return rows


def quota_rows(data: DashboardData) -> list[dict]:
    return [{
        "show_for": _show_for(r.tier), "customer_id": r.customer_id, "customer_name": _name(r.customer_name),
        "search": _search(r.customer_id, r.customer_name),
        "tier": TIER_LABELS.get(r.tier, r.tier), "incidents": fmt_int(r.incidents), "quota": fmt_int(r.quota),
        "over_quota": fmt_int(r.over_quota), "months_over": fmt_int(r.months_over_quota),
    } for r in data.quota_customers.itertuples()]


def renewal_rows(data: DashboardData) -> list[dict]:
    rows = []
    for r in data.renewal_watch.itertuples():
        fr = rate_or_counts(r.fr_met, r.fr_breached)
        res = rate_or_counts(r.res_met, r.res_breached)
        goal = float(data.goal)
        rows.append({
            "customer_id": r.customer_id, "customer_name": _name(r.customer_name),
            "search": _search(r.customer_id, r.customer_name), "manager": _name(r.account_manager),
            "ends": r.valid_to.date().isoformat() if hasattr(r.valid_to, "date") else str(r.valid_to),
            "kind": r.kind, "days_left": int(r.days_left), "incidents": fmt_int(r.incidents),
            "breaches": int(r.breaches), "sev1": int(r.sev1_breached), "fr": fr, "res": res,
            "fr_below": not _is_missing(r.fr_rate) and float(r.fr_rate) < goal,
            "res_below": not _is_missing(r.res_rate) and float(r.res_rate) < goal,
            "open": fmt_int(r.open_now), "open_breached": int(r.open_breached),
        })
    return rows


def open_item_rows(data: DashboardData) -> list[dict]:
    return [{
        "customer_id": r.customer_id, "customer_name": _name(r.customer_name),
        "search": _search(r.customer_id, r.customer_name), "year": int(r.year),
        "owed": fmt_money(r.owed_eur), "invoiced": fmt_money(r.invoiced_eur),
        "to_invoice": fmt_money(r.to_invoice_eur) if r.to_invoice_eur else "",
        "to_credit": fmt_money(r.to_credit_eur) if r.to_credit_eur else "",
    } for r in data.open_items.itertuples()]


def gold_tiles(data: DashboardData) -> list[dict]:
    cur = data.kpi("gold", data.reporting_month)
    prev = data.kpi("gold", data.previous_month)
    g = data.gold_summary
    t = data.open_items_totals
    vs = f"vs {fmt_month_short(data.previous_month)}"
    tiles = [
        _rate_tile(data, "gold_fr_rate", "Gold first response", "gold", "first_response",
                   cur.fr_met, cur.fr_breached, cur.fr_rate, prev.fr_rate),
        _rate_tile(data, "gold_res_rate", "Gold resolution", "gold", "resolution",
                   cur.res_met, cur.res_breached, cur.res_rate, prev.res_rate),
        {"key": "gold_customers", "label": "Gold customers at cut-off", "value": g.gold_customers_at_cutoff,
         "text": fmt_int(g.gold_customers_at_cutoff),
         "sub": f"with a Gold contract in force on the cut-off day · {len(data.renewal_watch)} on renewal watch",
         "delta": None},
        {"key": "to_invoice", "label": "To invoice", "value": t.to_invoice_eur, "text": fmt_money(t.to_invoice_eur),
         "sub": f"{fmt_int(t.to_invoice_items)} open items (customer-years owed more than invoiced)",
         "delta": None, "cls": "below" if t.to_invoice_eur else "neutral"},
        {"key": "to_credit", "label": "To credit", "value": t.to_credit_eur, "text": fmt_money(t.to_credit_eur),
         "sub": f"{fmt_int(t.to_credit_items)} open items (customer-years invoiced more than owed)",
         "delta": None, "cls": "below" if t.to_credit_eur else "neutral"},
    ]
    for tile in tiles:
        tile["vs"] = vs
        value = tile["value"]
        tile["raw"] = "" if value is None else (str(value) if isinstance(value, Decimal) else repr(value))
        for k, v in (("cls", "neutral"), ("goal_text", ""), ("streak", ""), ("gap", None)):
            tile.setdefault(k, v)
    return tiles


def target_rows(data: DashboardData) -> list[dict]:
    return [{"tier": TIER_LABELS.get(tier, tier), "severity": sev,
             "first_response": fmt.target(fr, LANG, none_text="no target"),
             "resolution": fmt.target(res, LANG, none_text="no target")}
            for (tier, sev), (fr, res) in sorted(data.target_terms.items(),
                                                 key=lambda kv: (TIERS.index(kv[0][0]) if kv[0][0] in TIERS else 9,
                                                                 kv[0][1]))]


def dashboard_context(data: DashboardData, *, goal: float = DEFAULT_GOAL) -> dict:
    if Decimal(repr(float(goal))) != data.goal:  # one goal on tiles and charts alike
        data = dataclasses.replace(data, goal=Decimal(repr(float(goal))))
    figures = build_figures(data, goal=goal)
    periods = period_options(data)
    config = {
        "plotly": PLOTLY_CONFIG,
        "figures": [{"id": f.id, "timeseries": f.timeseries} for f in figures],
        "ranges": {str(p): period_range(data, p) for p, _ in periods},
        "default_tier": ALL,
        "default_period": str(default_period(data)),
        "tier_labels": {k: TIER_LABELS[k] for k in (ALL, *TIERS)},
        "period_labels": {str(p): label for p, label in periods},
    }
    tz = data.timezone
    customers = {}
    for frame in (data.open_incidents, data.breaches, data.top_breaches, data.quota_customers,
                  data.renewal_watch, data.open_items):
        for r in frame.itertuples():
            customers.setdefault(r.customer_id, _name(r.customer_name))
    config["customers"] = customers
    return {
        "lang": LANG,
        "tz": tz,
        "title": "SLA management dashboard",
        "as_of_local": _local(data.as_of, tz),
        "timezone": tz,
        "reporting_month": fmt_month(data.reporting_month),
        "reporting_month_key": data.reporting_month,
        "reporting_month_short": fmt_month_short(data.reporting_month),
        "previous_month": fmt_month(data.previous_month),
        "first_month": fmt_month(data.months[0]),
        "breach_window": f"{fmt_month(data.breach_window[0])} – {fmt_month(data.breach_window[-1])}",
        "goal": fmt_goal(goal),
        "min_rated": MIN_RATED,
        "renewal_days": RENEWAL_WATCH_DAYS,
        "tiers": [(ALL, TIER_LABELS[ALL]), *((t, TIER_LABELS[t]) for t in TIERS)],
        "periods": periods,
        "default_period": default_period(data),
        "kpis": {tier: kpi_tiles(data, tier) for tier in (ALL, *TIERS)},
        "gold_tiles": gold_tiles(data),
        "open_rows": open_rows(data),
        "open_summary": data.open_summary,
        "breach_rows": breach_rows(data),
        "top_breaches": top_breach_rows(data),
        "quota_customers": quota_rows(data),
        "renewals": renewal_rows(data),
        "open_items": open_item_rows(data),
        "open_items_totals": {"to_invoice": fmt_money(data.open_items_totals.to_invoice_eur),
                              "to_credit": fmt_money(data.open_items_totals.to_credit_eur)},
        "targets": target_rows(data),
        "quotas": [(TIER_LABELS[t], data.quotas.get(t)) for t in TIERS],
        "business_day_hours": f"{data.business_day_seconds / 3600:g}",
        "figures_json": script_json({f.id: json.loads(pio.to_json(f.figure, validate=False)) for f in figures}),
        "config_json": script_json(config),
        "plotly_js": Markup(get_plotlyjs()),
        "generated_from": "DuckDB warehouse: incident_sla, monthly_sla_view, monthly_quota_view, "
                          "gold_open_items, contracts, invoices, business_calendar, sla_targets",
    }


def render_dashboard_html(data: DashboardData, *, goal: float = DEFAULT_GOAL) -> str:
    return environment().get_template(TEMPLATE).render(**dashboard_context(data, goal=goal))


def write_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write UTF-8 text atomically."""

    return write_bytes_atomic(text.encode("utf-8"), path)


def dashboard_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "dashboard" / "index.html"


def write_dashboard(data: DashboardData, out_dir: str | os.PathLike, *, goal: float = DEFAULT_GOAL) -> Path:
    """Render the dashboard and write it atomically to `<out_dir>/dashboard/index.html`."""
    return write_atomic(render_dashboard_html(data, goal=goal), dashboard_path(out_dir))
