"""Customer report rendering: view model -> HTML -> PDF bytes.

- One Jinja environment: FileSystemLoader on reports/templates, autoescape=True
  for every template (select_autoescape() would not escape *.html.j2),
  StrictUndefined so a missing field fails instead of printing nothing.
- HTML to PDF with WeasyPrint and a URL fetcher that serves only files under
  reports/templates (real path checked) and data: URIs; everything else is
  refused, recorded and turned into an error after rendering.
- Fixed PDF metadata (created = modified = the data cut-off) and no PDF
  identifier, so the same view model gives the same bytes.
- Customer reports reuse, per process (per thread), one WeasyPrint FontConfiguration
  and report.css parsed once (its @font-face files read through a TemplateOnlyFetcher,
  like everything else), passed with `stylesheets=`: parsing the stylesheet, loading the
  system font configuration and registering the four shipped fonts cost about a fifth of
  a report's WeasyPrint time when repeated per report. The customer template therefore
  does not <link> report.css; the output does not depend on what was rendered before
  (tests compare a fresh process with a long-running one).
"""

from __future__ import annotations

import base64
import gc
import mimetypes
import os
import re
import threading
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jinja2
import markupsafe
from weasyprint import CSS, HTML
from weasyprint.document import Page
from weasyprint.formatting_structure import boxes
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse, URLFetchingError

from reports import charts, filters, svg_text
from sla.months import shift_month
from sla.report_data.models import CustomerReport

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
REPORT_CSS = TEMPLATES_DIR / "static" / "report.css"
GENERATOR = "sla-reporting"


class RefusedURL(URLFetchingError):
    """The report tried to load a resource outside the templates folder."""


class UnsafeResourceError(RuntimeError):
    """Raised after rendering when any resource was refused by the fetcher."""


class TemplateOnlyFetcher(URLFetcher):
    """Serves files under `root` (after resolving symlinks and `..`) and data: URIs.

    Everything else (http, https, ftp, other file:// paths, '..' segments,
    symlinks leading out) is refused with RefusedURL and recorded in `refused`;
    served URLs are recorded in `fetched` with their resolved path.
    """

    def __init__(self, root: Path = TEMPLATES_DIR, **kwargs):
        super().__init__(allowed_protocols=("file", "data"), allow_redirects=False,
                         fail_on_errors=False, timeout=1, **kwargs)
        self.root = Path(os.path.realpath(root))
        self.fetched: list[tuple[str, str]] = []  # (url, resolved path or 'data:')
        self.refused: list[tuple[str, str]] = []  # (url, reason)

    def _refuse(self, url: str, reason: str):
        self.refused.append((url, reason))
        raise RefusedURL(f"refused {url[:200]!r}: {reason}")

    def fetch(self, url, headers=None):
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            response = super().fetch(url, headers)
            self.fetched.append((url[:64], "data:"))
            return response
        if scheme != "file":
            self._refuse(url, f"scheme {scheme or '(none)'!r} not allowed")
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            self._refuse(url, "remote file host")
        raw_path = unquote(parts.path)
        if any(seg == ".." for seg in raw_path.replace("\\", "/").split("/")):
            self._refuse(url, "'..' in path")
        real = os.path.realpath(raw_path)
        try:
            inside = os.path.commonpath([real, str(self.root)]) == str(self.root)
        except ValueError:
            inside = False
        if not inside:
            self._refuse(url, "outside the templates folder")
        if not os.path.isfile(real):
            self._refuse(url, "not a file")
        mime = mimetypes.guess_type(real)[0] or "application/octet-stream"
        if real.endswith((".ttf", ".otf")):
            mime = "font/ttf" if real.endswith(".ttf") else "font/otf"
        with open(real, "rb") as fh:
            body = fh.read()
        self.fetched.append((url, real))
        return URLFetcherResponse(url, body, {"Content-Type": mime})


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one Jinja environment of the reports (cached per process)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(filters.make_filters())
    env.globals.update(filters.make_globals())
    return env


def _svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def trend_chart_uris(vm: CustomerReport) -> dict[str, str]:
    """{"trend": data URI of the one SVG with both trend panels} (one kaleido call)."""
    svg = charts.trend_svg(vm.trend, vm.language, resolution=vm.has_resolution_targets)
    if svg_text.install():
        svg = svg_text.prepare(svg)  # its labels placed without a PDF group each
    return {"trend": _svg_data_uri(svg)}


def customer_context(vm: CustomerReport, *, with_charts: bool = True) -> dict:
    lang = vm.language
    explanations = {e.ticket_id: e for e in vm.explanations}
    incidents_by_id = {i.ticket_id: i for i in (*vm.incidents, *vm.carried_over)}
    explained = [(incidents_by_id.get(e.ticket_id), e) for e in vm.explanations]
    if with_charts and vm.trend:
        chart_uris = trend_chart_uris(vm)
    else:
        chart_uris = None
    return {
        "vm": vm,
        "prev_month": shift_month(vm.month, -1),
        "lang": lang,
        "tz": vm.timezone,
        "charts": chart_uris,
        "explained": explained,
        "explanations": explanations,
        "methodology": filters.methodology(vm.policy, lang),
        "severity_definitions": filters.severity_definitions(vm.policy, lang),
        "methodology_pages": 0,  # 0: the methodology section inline (see customer_pdf)
    }


def render_customer_html(vm: CustomerReport, *, with_charts: bool = True) -> str:
    return environment().get_template("customer_monthly.html").render(
        **customer_context(vm, with_charts=with_charts))


def _w3c(dt: datetime) -> str:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("created must be timezone-aware")
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- a leaner user-agent stylesheet for the customer report (issue 18) ---------------------
#
# WeasyPrint's HTML user-agent stylesheet styles `::marker` and five footnote/note
# pseudo-elements of *every* element, so each element of a report got six extra computed
# styles that nothing uses (2,316 of 2,567 computed styles of a typical report; the customer
# report has no list items and no footnotes). The customer report is rendered with the same
# stylesheet minus those rules (`::marker` kept for list items): same boxes, same PDF bytes.

_UA_MARKER_RULE = re.compile(r"^::marker(?= \{)", re.M)
_UA_NOTE_RULES = re.compile(r"^::(?:footnote|note)-(?:call|marker|callback) \{[^}]*\}\n", re.M)


def lean_ua_css(ua: str) -> str | None:
    """WeasyPrint's UA stylesheet text without the per-element pseudo-element rules; None
    if it no longer has them in the expected form (then the stock stylesheet is used)."""
    if len(_UA_MARKER_RULE.findall(ua)) != 1 or len(_UA_NOTE_RULES.findall(ua)) != 5:
        return None
    return _UA_NOTE_RULES.sub("", _UA_MARKER_RULE.sub("li::marker", ua))


@lru_cache(maxsize=1)
def _lean_ua_stylesheet() -> CSS | None:
    from weasyprint.css.counters import CounterStyle
    from weasyprint.html import UA

    lean = lean_ua_css(UA)
    # counter styles of the UA sheet are WeasyPrint's own (HTML._ua_counter_style): parse ours
    # into a throwaway set
    return None if lean is None else CSS(string=lean, counter_style=CounterStyle())


class _ReportHTML(HTML):
    """HTML with the lean user-agent stylesheet (WeasyPrint's `_ua_stylesheets` hook, 70.x
    as locked; `test_customer_report_uses_the_lean_user_agent_stylesheet` notices a change)."""

    def _ua_stylesheets(self, forms=False):
        lean = _lean_ua_stylesheet()
        if lean is None or forms:
            return super()._ua_stylesheets(forms)
        return [lean]


class _ReportStyle:
    """One thread's FontConfiguration and parsed report.css, made once and reused."""

    def __init__(self) -> None:
        self.font_config = FontConfiguration()
        self.fetcher = TemplateOnlyFetcher()  # reads report.css and its fonts
        self.css = CSS(url=REPORT_CSS.as_uri(), url_fetcher=self.fetcher,
                       font_config=self.font_config)
        if self.fetcher.refused:
            raise UnsafeResourceError(f"report.css refers outside the templates folder: "
                                      f"{self.fetcher.refused}")
        # the methodology page without margin boxes, and its laid-out pages by content
        self.blank_margins = CSS(string=_METHODOLOGY_PAGE_CSS, font_config=self.font_config)
        self.methodology: dict[tuple[str, str], list[Page]] = {}
        self.pid = os.getpid()


_style_local = threading.local()


def report_style() -> _ReportStyle:
    """This thread's shared font configuration and parsed report.css (built on first use).

    Per thread, because WeasyPrint's font configuration is not meant to be shared between
    threads; per process id too, so a forked child builds its own.
    """
    style = getattr(_style_local, "style", None)
    if style is None or style.pid != os.getpid():
        style = _style_local.style = _ReportStyle()
    return style


@contextmanager
def _collector_paused():
    """No automatic garbage collection while one report is laid out and written; one young-
    generation collection afterwards.

    WeasyPrint allocates millions of short-lived objects per report, and CPython's collector,
    triggered every 700 allocations, scanned them 41 times per report: 16 % of a worker's CPU
    (issue 18). Almost all of them are freed by reference counting; the few reference cycles
    of a report are all still in the young generation afterwards (nothing was promoted during
    the pause), so one collection of it frees them and memory stays bounded per report.
    """
    if not gc.isenabled():  # the caller manages collection
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect(0)


def html_to_pdf(html: str, *, created: datetime, fetcher: TemplateOnlyFetcher | None = None,
                strict: bool = True, report_css: bool = False, overlays: list[Page] = ()
                ) -> bytes:
    """Render HTML (resolved against reports/templates) to PDF bytes.

    `created` becomes the PDF's creation and modification date. Pass your own
    `fetcher` to inspect what was fetched and refused. With `strict`, any
    refused resource raises UnsafeResourceError after rendering.

    With `report_css`, the HTML is styled by report.css parsed once per thread (see
    `report_style`) and rendered with that thread's shared font configuration and the lean
    user-agent stylesheet (`_ReportHTML`: no lists or footnotes), SVG labels laid out whole
    (`svg_text`), without automatic garbage collection while it renders (`_collector_paused`);
    the HTML must then not link report.css itself. Otherwise a fresh font configuration is used and
    the HTML brings its own stylesheets.

    `overlays` (with `report_css`) are pages drawn onto the document's last pages, one each, which must be the
    HTML's placeholder pages (elements of class `methodology-placeholder`; checked).
    """
    fetcher = fetcher or TemplateOnlyFetcher()
    if overlays and not report_css:
        raise ValueError("overlays need report_css=True (the customer report's pages)")
    if not report_css:
        return _write_pdf(HTML, html, created, fetcher, strict, FontConfiguration(), None, ())
    style = report_style()
    with _collector_paused(), svg_text.enabled() if svg_text.install() else nullcontext():
        # The document is freed when _write_pdf returns, before the collection that ends the
        # pause: collected while still referenced, its box tree was traversed and promoted to
        # the next generation, to be traversed there again (0.038 -> 0.029 CPU-s of collector
        # per report, measured with gc.callbacks).
        return _write_pdf(_ReportHTML, html, created, fetcher, strict, style.font_config,
                          [style.css], overlays)


def _write_pdf(html_class, html: str, created: datetime, fetcher: TemplateOnlyFetcher,
               strict: bool, font_config: FontConfiguration, stylesheets, overlays) -> bytes:
    document = html_class(string=html, base_url=str(TEMPLATES_DIR) + os.sep,
                          url_fetcher=fetcher).render(font_config=font_config,
                                                      stylesheets=stylesheets)
    if strict and fetcher.refused:
        raise UnsafeResourceError(f"resources refused while rendering: {fetcher.refused}")
    if overlays:
        document = _with_overlays(document, overlays)
    meta = document.metadata
    meta.created = meta.modified = _w3c(created)
    meta.generator = GENERATOR
    meta.attachments = []
    meta.custom = {}
    return document.write_pdf(pdf_identifier=False, attachments=None,
                              custom_metadata=False, uncompressed_pdf=False)


def _is_placeholder_page(page: Page) -> bool:
    """True if the page's content is one methodology placeholder and nothing else."""
    content = [box for child in page._page_box.children  # noqa: SLF001 - the page's boxes
               if not isinstance(child, boxes.MarginBox) for box in child.descendants()]
    return [box.element_tag for box in content] == ["html", "body", "div"] and (
        "methodology-placeholder" in content[2].element.get("class", "").split())


def _with_overlays(document, overlays: list[Page]):
    n = len(overlays)
    pages = document.pages
    if len(pages) <= n or not all(_is_placeholder_page(p) for p in pages[-n:]):
        raise RuntimeError("the methodology placeholders did not give one empty page each")
    return document.copy([*pages[:-n], *(_OverlaidPage(p, o) for p, o in zip(pages[-n:],
                                                                              overlays))])


def render_customer_pdf(vm: CustomerReport, *, fetcher: TemplateOnlyFetcher | None = None
                        ) -> bytes:
    return customer_pdf(customer_context(vm), created=vm.cutoff, fetcher=fetcher)


# --- the methodology page, laid out once (issue 18) ------------------------------------------
#
# The methodology page(s) (how the figures are measured, severity definitions, the tier's targets)
# are the same for every report with the same language, policy text and tiers, and laying them out
# was about a seventh of a typical report's CPU. They are laid out once per thread and content
# (the section's HTML is the key), without margin boxes, and drawn onto empty placeholder pages of
# each report, which carry the report's own running header and "Page n of N". Same pages, same
# text; the PDF draws the page content after the margin boxes instead of before.

_METHODOLOGY_PAGE_CSS = """@page {
  @top-left { content: none; border: none; } @top-right { content: none; border: none; }
  @bottom-left { content: none; } @bottom-right { content: none; }
}"""
_METHODOLOGY_CACHE_SIZE = 32


class _OverlaidPage(Page):
    """A report's placeholder page with a page of another document drawn onto it."""

    def __init__(self, page: Page, overlay: Page) -> None:  # noqa: D107 - no Page.__init__
        self.__dict__.update(page.__dict__)
        self.bookmarks = [*page.bookmarks, *overlay.bookmarks]
        self.links = [*page.links, *overlay.links]
        self.anchors = {**page.anchors, **overlay.anchors}
        self.overlay = overlay

    def paint(self, stream, scale=1):
        super().paint(stream, scale)
        self.overlay.paint(stream, scale)


def methodology_pages(section_html: str, lang: str) -> list[Page]:
    """The laid-out pages of the methodology section `section_html` (cached per thread)."""
    style = report_style()
    cache = style.methodology
    pages = cache.pop((section_html, lang), None)
    if pages is None:
        fetcher = TemplateOnlyFetcher()
        html = (f'<!DOCTYPE html><html lang="{markupsafe.escape(lang)}"><head><meta charset="utf-8">'
                f'</head><body>{section_html}</body></html>')
        with _collector_paused():
            document = _ReportHTML(string=html, base_url=str(TEMPLATES_DIR) + os.sep,
                                   url_fetcher=fetcher).render(
                font_config=style.font_config, stylesheets=[style.css, style.blank_margins])
        if fetcher.refused:
            raise UnsafeResourceError(f"resources refused while rendering: {fetcher.refused}")
        pages = document.pages
        while len(cache) >= _METHODOLOGY_CACHE_SIZE:
            cache.pop(next(iter(cache)))
    cache[(section_html, lang)] = pages  # most recently used last
    return pages


def customer_html_and_overlays(context: dict) -> tuple[str, list[Page]]:
    """The report's HTML with placeholder pages for the methodology, and the methodology's laid-out
    pages to draw onto them."""
    env = environment()
    section = env.get_template("customer_methodology.html").render(**context)
    pages = methodology_pages(section, context["lang"])
    html = env.get_template("customer_monthly.html").render(
        **{**context, "methodology_pages": len(pages)})
    return html, pages


def customer_pdf(context: dict, *, created: datetime,
                 fetcher: TemplateOnlyFetcher | None = None) -> bytes:
    """A customer report's PDF from its template context (`customer_context`)."""
    html, pages = customer_html_and_overlays(context)
    return html_to_pdf(html, created=created, fetcher=fetcher, report_css=True, overlays=pages)
