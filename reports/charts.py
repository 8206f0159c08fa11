"""Trend charts: plotly figures exported to SVG by kaleido 1.x (Debian chromium).

One kaleido server (one headless chromium) is started lazily and kept alive for
the whole process; every chart goes through it, and its page (with plotly.js) stays
loaded between charts (about 0.07 CPU-s of chromium per chart instead of 0.4 s with
kaleido's reload after every figure, or seconds for a fresh browser). The SVG is normalised so that the same
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
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache

import plotly.graph_objects as go

from reports import filters
from sla.report_data.models import TrendPoint

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
_server: _Server | None = None

#: The kaleido page is reloaded after this many figures (and after a failed one) instead of
#: after every figure; see `_ReusingKaleido`.
RELOAD_EVERY = 200
_TIMEOUT_S = 90.0


def _chromium_path() -> str | None:
    return os.environ.get("BROWSER_PATH") or shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _reusing_kaleido_class():
    """kaleido.Kaleido that keeps its page loaded between figures (built on first use, so
    importing this module does not import kaleido).

    kaleido 1.x reloads its page after every figure, and with it the 4.8 MB plotly.js: measured
    0.31 CPU-s in chromium per reload against 0.07 CPU-s for drawing our trend figure. A figure
    does not change the page (plotly.js draws into a scratch element that it purges), and the
    SVG does not depend on what was drawn before (tests compare a figure drawn first with the
    same figure drawn after others), so the page is reloaded only every RELOAD_EVERY figures
    (to bound whatever a long run might accumulate) and before the next figure after a failure.
    Overrides kaleido's tab hand-out and hand-back (`_get_kaleido_tab`, `_return_kaleido_tab`,
    kaleido 1.5 as locked); `test_kaleido_page_is_not_reloaded_per_figure` fails if an upgrade
    renames them.
    """
    import kaleido

    class _ReusingKaleido(kaleido.Kaleido):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.figures_since_reload = 0
            self.reloads = 0
            self.dirty = False

        async def _get_kaleido_tab(self):
            tab = await super()._get_kaleido_tab()
            if self.dirty or self.figures_since_reload >= RELOAD_EVERY:
                await tab.reload()
                self.reloads += 1
                self.figures_since_reload, self.dirty = 0, False
            self.figures_since_reload += 1
            return tab

        async def _return_kaleido_tab(self, tab) -> None:
            await self.tabs_ready.put(tab)  # no reload: see above

        async def _render_task(self, *args, **kwargs):
            try:
                return await super()._render_task(*args, **kwargs)
            except BaseException:
                self.dirty = True  # reload before the next figure
                raise

    return _ReusingKaleido


class _Server:
    """One `_ReusingKaleido` (one headless chromium) driven from an event loop in a thread,
    like kaleido's own sync server, which cannot be given another Kaleido class."""

    def __init__(self) -> None:
        import asyncio

        self._asyncio = asyncio
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kaleido-server",
                                       daemon=True)
        self.thread.start()
        # mathjax=False: no CDN fetch, we render no formulas; n=1 tab is enough for a serial
        # renderer (parallel renders use processes, one server each).
        self.kaleido = _reusing_kaleido_class()(n=1, mathjax=False, timeout=_TIMEOUT_S)
        try:
            self.run(self.kaleido.open())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise

    def run(self, coro, timeout: float | None = 2 * _TIMEOUT_S):
        return self._asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.run(self.kaleido.close(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


def _ensure_server() -> None:
    """Start the process-wide kaleido server once (idempotent, thread-safe)."""
    global _server, _server_starts
    with _lock:
        if _server is not None:
            return
        path = _chromium_path()
        if path and "BROWSER_PATH" not in os.environ:
            # choreographer reads BROWSER_PATH before searching PATH.
            os.environ["BROWSER_PATH"] = path
        _server = _Server()
        _server_starts += 1
    # Stop chromium before the interpreter tears down: left to die at exit, its reader thread
    # printed a "JSONError decoding message" traceback after every successful run.
    atexit.register(_stop_server)


def _stop_server() -> None:
    global _server
    with _lock:
        server, _server = _server, None
    if server is None:
        return
    try:
        server.close()
    except Exception:  # noqa: BLE001 - best effort at exit; the outputs are already written
        pass


def server_starts() -> int:
    return _server_starts


def page_reloads() -> int:
    """How often this process's kaleido page was reloaded (0 without a server)."""
    return _server.kaleido.reloads if _server is not None else 0


def svg_from_figure(fig: go.Figure | dict, *, width: int, height: int, chart_id: str) -> str:
    """Export a figure (or its `to_dict()`) to a normalised SVG string through the shared
    server."""
    global _calls

    if not re.fullmatch(r"[a-z][a-z0-9-]*", chart_id):
        raise ValueError(f"chart_id must be a simple lowercase id, got {chart_id!r}")
    _ensure_server()
    with _lock:
        raw = _server.run(_server.kaleido.calc_fig(
            fig if isinstance(fig, dict) else fig.to_dict(),
            opts={"format": "svg", "width": width, "height": height}))
        _calls += 1
    svg = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return normalise_svg(svg, chart_id)


_UID_RE = re.compile(r'id="defs-([0-9a-z]+)"')
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", _SVG_NS)
ET.register_namespace("xlink", _XLINK_NS)


def normalise_svg(svg: str, chart_id: str) -> str:
    """Replace plotly.js's random figure uid by `chart_id`; drop the XML prolog; simplify.

    The simplified SVG draws the same picture with what WeasyPrint has to read and draw
    only: `simplify_svg`."""
    svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)
    m = _UID_RE.search(svg)
    if m:
        svg = svg.replace(m.group(1), chart_id)
    # Any remaining random-looking ids would break reproducibility: fail loudly.
    return simplify_svg(svg)


def _is_empty(el: ET.Element) -> bool:
    tag = el.tag.rpartition("}")[2]
    if tag == "g":
        return len(el) == 0 and not (el.text or "").strip()
    if tag == "path":
        return not el.get("d")
    if tag == "rect":
        return el.get("width") in ("0", "0px") or el.get("height") in ("0", "0px")
    return False


def _prune(el: ET.Element) -> None:
    """Drop empty nodes; a group without attributes is replaced by its children."""
    children = []
    for child in el:
        _prune(child)
        if _is_empty(child):
            continue
        if child.tag == f"{{{_SVG_NS}}}g" and not child.attrib and el.tag != f"{{{_SVG_NS}}}defs":
            children.extend(child)  # attributes are stripped of class first, see simplify_svg
        else:
            children.append(child)
    el[:] = children


def simplify_svg(svg: str) -> str:
    """The same picture in fewer elements, with attributes in a fixed order.

    plotly.js leaves about 60 empty layer groups, empty axis-line paths and a zero-size legend
    scrollbar in every figure, and `class` / `data-*` attributes that nothing reads (the SVG has
    no stylesheet). WeasyPrint parses, cascades and "draws" every node, so they go; inline styles
    become attributes (`_style_declarations`). Attributes are
    sorted: with the kaleido page kept loaded between figures, plotly.js sets some of them in
    another order when it has measured a text before (same values), and the PDF must not
    depend on what was drawn earlier.
    """
    root = ET.fromstring(svg)
    for el in root.iter():
        attrib = {k: v for k, v in el.attrib.items()
                  if k not in ("class", "style") and not k.startswith("data-")}
        attrib.update(_style_declarations(el.get("style", "")))
        el.attrib.clear()
        el.attrib.update(sorted(attrib.items()))
    _prune(root)
    return ET.tostring(root, encoding="unicode")


_QUOTED_SEMICOLON = re.compile(r"""(['"])[^'"]*;[^'"]*\1""")


def _style_declarations(style: str) -> dict[str, str]:
    """plotly.js's `style="fill: rgb(...); font-size: 9px"` as attributes {fill: ..., ...}.

    WeasyPrint's SVG renderer turns every declaration of a style attribute into an attribute
    of the same name, overriding one that is there (weasyprint.svg.Node.cascade), after
    parsing the style with tinycss2 for every node of every PDF; written as attributes, the
    SVG draws the same and that parse is gone. A style this simple reader cannot split safely
    (a quoted semicolon, !important, a vendor prefix) is kept as it is."""
    if not style.strip():
        return {}
    if "!" in style or _QUOTED_SEMICOLON.search(style):
        return {"style": style}
    out = {}
    for declaration in style.split(";"):
        name, colon, value = declaration.partition(":")
        name = name.strip().lower()
        if not declaration.strip():
            continue
        if not colon or not name or name.startswith("-"):
            return {"style": style}
        out[name] = value.strip()
    return out


def _month_labels(trend: Sequence[TrendPoint], lang: str) -> list[str]:
    """Two-line category labels ("Mar<br>26") so twelve months fit without rotation."""
    return [filters.month_short(p.month, lang).replace(" ", "<br>") for p in trend]


def _pct(v: Decimal | None) -> float | None:
    return None if v is None else float(v * 100)


def _solid_pct(p: TrendPoint, which: str) -> float | None:
    """A month's rate as a chart point, only from 5 rated incidents (sla-semantics section 7):
    one incident would otherwise drop the line to 0 %. The table below the chart gives counts."""
    if p.counts_only(which):
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


def _trend_spec(trend: Sequence[TrendPoint], lang: str, *, width: int, height: int,
                resolution: bool) -> tuple[list[dict], dict]:
    """(traces, layout) of `trend_figure` as plain dicts, the way plotly's to_dict writes them."""
    x = _month_labels(trend, lang)
    y = [p.incidents for p in trend]
    ymax = max(y, default=0)
    left, right = _panel_domains(width)
    traces = [{
        "type": "bar", "uid": "volume", "x": x, "y": y, "xaxis": "x", "yaxis": "y",
        "marker": {"color": [NAVY] * (len(y) - 1) + [TEAL] if y else []},
        "text": [filters.number(v, lang) for v in y], "textposition": "outside",
        "textfont": {"size": 9, "color": INK}, "cliponaxis": False,
        "name": filters.text("incidents", lang), "showlegend": False,
    }]
    series = [("first-response", filters.text("first_response", lang),
               [_solid_pct(p, "first_response") for p in trend], NAVY, "solid")]
    if resolution:
        series.append(("resolution", filters.text("resolution", lang),
                       [_solid_pct(p, "resolution") for p in trend], AMBER, "dash"))
    for uid, name, values, color, dash in series:
        # a fixed uid: plotly.js would put a random one into the trace's class name
        traces.append({
            "type": "scatter", "uid": uid, "x": x, "y": values, "xaxis": "x2", "yaxis": "y2",
            "mode": "lines+markers", "name": name, "connectgaps": False,
            "line": {"color": color, "width": 2, "dash": dash},
            "marker": {"size": 6, "color": color},
        })
    # no month with a rate to draw (fewer than 5 rated in each): say so instead of an empty panel
    no_points = all(v is None for t in traces[1:] for v in t["y"])
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
    if no_points:
        layout["annotations"] = [{
            "text": filters.text("no_solid_rates", lang).replace("\n", "<br>"), "showarrow": False,
            "xref": "x2 domain", "yref": "y2 domain", "x": 0.5, "y": 0.5,
            "font": {"size": 10, "color": MUTED},
        }]
    if lang == "de":
        layout["separators"] = ",."
    return traces, layout


def trend_figure(trend: Sequence[TrendPoint], lang: str, *, width: int = TREND_WIDTH,
                 height: int = TREND_HEIGHT, resolution: bool = True) -> go.Figure:
    """Volume (left) and compliance (right) of the last 12 months as two subplots.

    Without `resolution` (a plan with no resolution targets) the empty series is left out."""
    traces, layout = _trend_spec(trend, lang, width=width, height=height, resolution=resolution)
    return go.Figure(data=traces, layout=layout)


@lru_cache(maxsize=1)
def _default_template() -> dict:
    """plotly's default template as `Figure.to_dict()` writes it into every figure."""
    return go.Figure().to_dict()["layout"]["template"]


def trend_figure_dict(trend: Sequence[TrendPoint], lang: str, *, width: int = TREND_WIDTH,
                      height: int = TREND_HEIGHT, resolution: bool = True) -> dict:
    """`trend_figure(...).to_dict()` without building and validating plotly objects (about
    6 ms of a report's Python, and the garbage collections its objects caused; issue 18).
    A test holds the two equal."""
    traces, layout = _trend_spec(trend, lang, width=width, height=height, resolution=resolution)
    return {"data": traces, "layout": {**layout, "template": _default_template()}}


def trend_svg(trend: Sequence[TrendPoint], lang: str, *, width: int = TREND_WIDTH,
              height: int = TREND_HEIGHT, resolution: bool = True) -> str:
    """The report's trend (volume | compliance) as one SVG: one kaleido call per report."""
    return svg_from_figure(trend_figure_dict(trend, lang, width=width, height=height,
                                             resolution=resolution),
                           width=width, height=height, chart_id="trend")

