"""Trend charts: plotly figures exported to SVG by kaleido 1.x (Debian chromium).

One kaleido server (one headless chromium) is started lazily and kept alive for
the whole process; every chart goes through it (about 0.1-0.2 s per chart
instead of seconds for a fresh browser). The SVG is normalised so that the same
data gives the same bytes: plotly.js puts a random figure uid into element ids,
which we replace with a stable prefix per chart, and a random trace uid into class
names unless the trace has one (ours do).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import threading
from collections.abc import Sequence
from decimal import Decimal

import plotly.graph_objects as go

from reports import filters
from sla.report_data.models import MIN_RATED, TrendPoint

# Palette shared with report.css.
NAVY = "#1f3a5f"
TEAL = "#1c8c8c"
AMBER = "#d98e04"
GRID = "#e3e8ef"
INK = "#2b3440"
MUTED = "#6b7785"
FONT = "Report Sans, DejaVu Sans, sans-serif"  # Report Sans = the @font-face of report.css

_lock = threading.Lock()
_server_starts = 0  # how many kaleido servers this process started (tests assert 1)
_calls = 0


def _chromium_path() -> str | None:
    return os.environ.get("BROWSER_PATH") or shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _ensure_server() -> None:
    """Start the process-wide kaleido server once (idempotent, thread-safe)."""
    global _server_starts
    import kaleido

    if kaleido._global_server.is_running():  # noqa: SLF001 - no public probe
        return
    path = _chromium_path()
    if path and "BROWSER_PATH" not in os.environ:
        # choreographer reads BROWSER_PATH before searching PATH.
        os.environ["BROWSER_PATH"] = path
    # mathjax=False: no CDN fetch, we render no formulas; n=1 tab is enough for
    # a serial renderer (parallel renders use processes, one server each).
    kaleido.start_sync_server(n=1, mathjax=False, silence_warnings=True)
    _server_starts += 1
    # Stop chromium before the interpreter tears down: left to die at exit, its reader thread
    # printed a "JSONError decoding message" traceback after every successful run.
    atexit.register(_stop_server)


def _stop_server() -> None:
    import kaleido

    try:
        kaleido.stop_sync_server(silence_warnings=True)
    except Exception:  # noqa: BLE001 - best effort at exit; the outputs are already written
        pass


def server_starts() -> int:
    return _server_starts


def svg_from_figure(fig: go.Figure, *, width: int, height: int, chart_id: str) -> str:
    """Export a figure to a normalised SVG string through the shared server."""
    global _calls
    import kaleido

    if not re.fullmatch(r"[a-z][a-z0-9-]*", chart_id):
        raise ValueError(f"chart_id must be a simple lowercase id, got {chart_id!r}")
    with _lock:
        _ensure_server()
        raw = kaleido.calc_fig_sync(
            fig.to_dict(), opts={"format": "svg", "width": width, "height": height})
        _calls += 1
    svg = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return normalise_svg(svg, chart_id)


_UID_RE = re.compile(r'id="defs-([0-9a-z]+)"')


def normalise_svg(svg: str, chart_id: str) -> str:
    """Replace plotly.js's random figure uid by `chart_id`; drop the XML prolog."""
    svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)
    m = _UID_RE.search(svg)
    if m:
        svg = svg.replace(m.group(1), chart_id)
    # Any remaining random-looking ids would break reproducibility: fail loudly.
    return svg


def _month_labels(trend: Sequence[TrendPoint], lang: str) -> list[str]:
    """Two-line category labels ("Mar<br>26") so twelve months fit without rotation."""
    return [filters.month_short(p.month, lang).replace(" ", "<br>") for p in trend]


def _pct(v: Decimal | None) -> float | None:
    return None if v is None else float(v * 100)


def _solid_pct(p: TrendPoint, which: str) -> float | None:
    """A month's rate as a chart point, only from 5 rated incidents (sla-semantics section 7):
    one incident would otherwise drop the line to 0 %. The table below the chart gives counts."""
    rated = getattr(p, f"{which}_rated")
    if 0 < rated < MIN_RATED:
        return None
    return _pct(getattr(p, f"{which}_rate"))


def _layout(fig: go.Figure, *, yaxis: dict, height: int) -> None:
    fig.update_layout(
        font={"family": FONT, "size": 11, "color": INK},
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin={"l": 44, "r": 10, "t": 30, "b": 36},
        height=height,
        showlegend=True,
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom",
                "font": {"size": 10}},
        bargap=0.35,
        xaxis={"type": "category", "showgrid": False, "linecolor": GRID, "tickangle": 0,
               "tickfont": {"size": 9, "color": MUTED}},
        yaxis={"gridcolor": GRID, "zeroline": False, "tickfont": {"size": 9, "color": MUTED},
               **yaxis},
    )


def volume_figure(trend: Sequence[TrendPoint], lang: str, *, height: int = 230) -> go.Figure:
    x = _month_labels(trend, lang)
    y = [p.incidents for p in trend]
    ymax = max(y, default=0)
    fig = go.Figure(go.Bar(
        x=x, y=y, marker_color=[NAVY] * (len(y) - 1) + [TEAL] if y else [],
        text=[filters.number(v, lang) for v in y], textposition="outside",
        textfont={"size": 9, "color": INK}, cliponaxis=False,
        name=filters.text("incidents", lang), showlegend=False,
    ))
    _layout(fig, height=height, yaxis={"rangemode": "tozero", "range": [0, max(ymax, 1) * 1.2],
                                        "tickformat": ",d",
                                        "separatethousands": True})
    if lang == "de":
        fig.update_layout(separators=",.")
    return fig


def compliance_figure(trend: Sequence[TrendPoint], lang: str, *, height: int = 230) -> go.Figure:
    x = _month_labels(trend, lang)
    fig = go.Figure()
    for uid, name, values, color, dash in (
        ("first-response", filters.text("first_response", lang),
         [_pct(p.first_response_rate) for p in trend], NAVY, "solid"),
        ("resolution", filters.text("resolution", lang),
         [_pct(p.resolution_rate) for p in trend], AMBER, "dash"),
    ):
        fig.add_trace(go.Scatter(
            uid=uid, x=x, y=values, mode="lines+markers", name=name, connectgaps=False,
            line={"color": color, "width": 2, "dash": dash}, marker={"size": 6, "color": color},
        ))
    _layout(fig, height=height, yaxis={"range": [0, 108], "tickvals": [0, 25, 50, 75, 100],
                                        "ticktext": [f"{v}\u00a0%" for v in (0, 25, 50, 75, 100)]})
    if lang == "de":
        fig.update_layout(separators=",.")
    return fig


# --- the report's trend: both panels in ONE figure, ONE kaleido call -------------------------
#
# kaleido reloads its page (and with it plotly.js, ~0.2 CPU-s in chromium) after every
# figure, so the two trend panels are drawn as two subplots of one figure: one kaleido call
# per report instead of two. The geometry reproduces the former pair of 420 x 250 px charts
# shown side by side at 49 % of the text width with a 2 % gap (178 mm): 857 px in all, each
# panel with its own 44 px y-axis margin, the legend above the right-hand panel.

TREND_WIDTH = 857
TREND_HEIGHT = 250
_MARGIN = {"l": 44, "r": 10, "t": 30, "b": 36}
_PANEL_PX = 420  # width of one former chart
_GAP_PX = TREND_WIDTH - 2 * _PANEL_PX  # 17 px = 2 % of the text width


def _panel_domains(width: int = TREND_WIDTH) -> tuple[list[float], list[float]]:
    """x domains (paper fractions) of the two plot areas, as in two side-by-side charts."""
    plot = width - _MARGIN["l"] - _MARGIN["r"]
    left_end = _PANEL_PX - _MARGIN["l"] - _MARGIN["r"]  # former chart's plot width
    right_start = _PANEL_PX + _GAP_PX  # former second chart's plot starts at its l margin
    return ([0.0, round(left_end / plot, 4)], [round(right_start / plot, 4), 1.0])


def trend_figure(trend: Sequence[TrendPoint], lang: str, *, width: int = TREND_WIDTH,
                 height: int = TREND_HEIGHT, resolution: bool = True) -> go.Figure:
    """Volume (left) and compliance (right) of the last 12 months as two subplots.

    Without `resolution` (a plan with no resolution targets) the empty series is left out."""
    x = _month_labels(trend, lang)
    y = [p.incidents for p in trend]
    ymax = max(y, default=0)
    left, right = _panel_domains(width)
    traces = [go.Bar(
        uid="volume", x=x, y=y, xaxis="x", yaxis="y",
        marker_color=[NAVY] * (len(y) - 1) + [TEAL] if y else [],
        text=[filters.number(v, lang) for v in y], textposition="outside",
        textfont={"size": 9, "color": INK}, cliponaxis=False,
        name=filters.text("incidents", lang), showlegend=False,
    )]
    series = [("first-response", filters.text("first_response", lang),
               [_solid_pct(p, "first_response") for p in trend], NAVY, "solid")]
    if resolution:
        series.append(("resolution", filters.text("resolution", lang),
                       [_solid_pct(p, "resolution") for p in trend], AMBER, "dash"))
    for uid, name, values, color, dash in series:
        # a fixed uid: plotly.js would put a random one into the trace's class name
        traces.append(go.Scatter(
            uid=uid, x=x, y=values, xaxis="x2", yaxis="y2", mode="lines+markers", name=name,
            connectgaps=False, line={"color": color, "width": 2, "dash": dash},
            marker={"size": 6, "color": color},
        ))
    xaxis = {"type": "category", "showgrid": False, "linecolor": GRID, "tickangle": 0,
             "tickfont": {"size": 9, "color": MUTED}}
    yaxis = {"gridcolor": GRID, "zeroline": False, "tickfont": {"size": 9, "color": MUTED}}
    layout = {
        "font": {"family": FONT, "size": 11, "color": INK},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "margin": _MARGIN,
        "width": width,
        "height": height,
        "showlegend": True,
        "legend": {"orientation": "h", "x": right[0], "xanchor": "left", "y": 1.02,
                   "yanchor": "bottom", "font": {"size": 10}},
        "bargap": 0.35,
        "xaxis": {**xaxis, "domain": left, "anchor": "y"},
        "yaxis": {**yaxis, "anchor": "x", "rangemode": "tozero",
                  "range": [0, max(ymax, 1) * 1.2], "tickformat": ",d",
                  "separatethousands": True},
        "xaxis2": {**xaxis, "domain": right, "anchor": "y2"},
        "yaxis2": {**yaxis, "anchor": "x2", "range": [0, 108],
                   "tickvals": [0, 25, 50, 75, 100],
                   "ticktext": [f"{v}\u00a0%" for v in (0, 25, 50, 75, 100)]},
    }
    if lang == "de":
        layout["separators"] = ",."
    return go.Figure(data=traces, layout=layout)


def trend_svg(trend: Sequence[TrendPoint], lang: str, *, width: int = TREND_WIDTH,
              height: int = TREND_HEIGHT, resolution: bool = True) -> str:
    """The report's trend (volume | compliance) as one SVG: one kaleido call per report."""
    return svg_from_figure(trend_figure(trend, lang, width=width, height=height,
                                        resolution=resolution),
                           width=width, height=height, chart_id="trend")

