"""The customer PDF, end to end: real Jinja, real WeasyPrint, real kaleido/chromium."""

from __future__ import annotations

import ast
import io
import os
import re
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import pytest
from conftest import Rendered, column_text, flat, pdf_text, squash
from pypdf import PdfReader

from reports import charts, filters, render
from reports.render import (
    TEMPLATES_DIR,
    RefusedURL,
    TemplateOnlyFetcher,
    UnsafeResourceError,
    html_to_pdf,
    render_customer_html,
    render_customer_pdf,
)
from sla import files
from sla.files import write_bytes_atomic
from sla.report_data.models import Allowance, Breach
from tests.fixtures.sample_report import empty_report, sample_report

REPORTS_DIR = Path(render.__file__).resolve().parent


# --- the PDF says what the view model says -------------------------------------------

def test_every_ticket_id_and_subject_is_in_the_pdf(rendered_en):
    vm = rendered_en.vm
    assert len(vm.incidents) == 7
    for inc in vm.incidents:
        assert inc.ticket_id in rendered_en.text
        assert squash(inc.subject) in rendered_en.subjects


def test_summary_counts_and_rates_match_the_view_model(rendered_en):
    s, text = rendered_en.vm.summary, rendered_en.flat
    assert f"{s.quota_used} of {s.quota} included incidents" in text
    assert f"{s.over_quota} over quota" in text
    for m in (s.first_response, s.resolution):
        shown = filters.compliance(m, "en").replace("\u00a0", " ")
        assert shown in text
        assert f"{m.met} met · {m.breached} breached" in text
        assert f"{m.pending} pending" in text
    # golden values of the sample, so a formatter bug cannot hide behind itself: 7 rated first
    # responses give a rate, 4 rated resolutions give counts (sla-semantics.md section 7)
    assert "85.7 %" in text and "3 of 4 met" in text
    assert "75.0 %" not in text
    assert "4 of 4 included incidents" in text and "3 over quota" in text


def test_per_severity_targets_and_figures(rendered_en):
    text = rendered_en.flat
    for row in rendered_en.vm.severities:
        assert filters.target(row.first_response_target, "en") in text
        if row.resolution_median is not None:
            assert filters.duration(row.resolution_median, "en") in text
    assert "16 business hours" in text and "7 business days (56 h)" in text


def test_incident_figures_and_explanations(rendered_en):
    text = rendered_en.flat
    vm = rendered_en.vm
    created = squash(column_text(rendered_en.pdf, "CREATED", "FIRST"))
    for inc in vm.incidents:  # date and time wrap onto two lines in the table
        assert squash(filters.datetime_local(inc.created_at, "en")) in created
    # RT-10437: breached resolution with a stop while solved and a reopen
    assert "16 h 20 min of 16 h" in text and "breached" in text
    assert "stopped, solved" in text and "paused, waiting for you" in text
    explained = {e.ticket_id for e in vm.explanations}
    assert explained == {"RT-10437", "RT-10471", "RT-10490", "RT-10519", "RT-10288"}
    for e in vm.explanations:
        for seg in e.segments:
            assert filters.datetime_local(seg.start, "en") in text


def test_sections_running_header_and_page_numbers(rendered_en):
    text = rendered_en.flat
    for heading in ("Summary", "By severity", "Trend, last 12 months",
                    "Incidents opened in March 2026", "How the clock ran",
                    "How the figures are measured", "Severity definitions",
                    "Targets of your Gold tier"):
        assert heading in text
    pages = len(PdfReader(io.BytesIO(rendered_en.pdf)).pages)
    assert f"Page {pages} of {pages}" in text
    # running header from page 2 on: customer and month
    with __import__("pdfplumber").open(io.BytesIO(rendered_en.pdf)) as doc:
        second = doc.pages[1].extract_text()
    assert "Acme Logistik GmbH" in second.splitlines()[0]
    assert "March 2026" in second.splitlines()[0]


def test_german_report(rendered_de):
    text = rendered_de.flat
    assert "März 2026" in text
    assert "85,7 %" in text and "3 von 4 eingehalten" in text
    assert "4 von 4 inklusive Vorfällen" in text
    assert "16 Geschäftsstunden" in text and "7 Geschäftstage (56 h)" in text
    assert "Aus früheren Monaten noch offen: 1 (1 verletzt)" in text
    assert "So werden die Kennzahlen gemessen" in text
    assert "Seite 1 von" in text
    assert "01.04.2026 08:00" in text  # cut-off in local time, German format
    assert "March" not in text


def test_fonts_are_the_shipped_dejavu(rendered_en):
    reader = PdfReader(io.BytesIO(rendered_en.pdf))
    fonts = set()
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    # "Report Sans" / "Report Condensed" are the @font-face names of the shipped DejaVu files
    assert fonts and all(f.split("+")[-1].startswith("Report-") for f in fonts), fonts


def test_emoji_in_a_subject_uses_the_shipped_symbol_font(rendered_en):
    """RT-10519's subject ends in a crescent moon: Symbola draws it, not a missing-glyph box."""
    reader = PdfReader(io.BytesIO(rendered_en.pdf))
    fonts = {str(f.get_object()["/BaseFont"]) for page in reader.pages
             for f in (page["/Resources"].get("/Font") or {}).values()}
    assert any("Report-Symbols" in f for f in fonts), fonts
    assert "🌙" in rendered_en.text


# --- issue 15: the report an account manager can send without a surprise ---------------

CLOCK_FORM = re.compile(r"\b\d{1,4}:\d{2}\b")
DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2}|\d{2}\.\d{2}\.\d{4})\s+\d{2}:\d{2}")
OPENING_HOURS = re.compile(r"\d{2}:\d{2} (to|bis) \d{2}:\d{2}")


def _times_of_day(vm) -> set[str]:
    """Every HH:MM the report prints as a time of day (a date and time wrap in table cells)."""
    instants = [vm.cutoff]
    for inc in (*vm.incidents, *vm.carried_over):
        instants += [inc.created_at, inc.first_response_at, inc.resolved_at]
        instants += [ch.at for ch in inc.severity_changes]
    for e in vm.explanations:
        instants += [e.first_response_due_at, e.resolution_due_at]
        instants += [x for seg in e.segments for x in (seg.start, seg.end)]
    return {filters.to_local(x).strftime("%H:%M") for x in instants if x is not None}


def _durations(vm) -> set[int]:
    out = set()
    for inc in (*vm.incidents, *vm.carried_over):
        out |= {inc.first_response_seconds, inc.first_response_target_seconds,
                inc.resolution_seconds, inc.resolution_target_seconds, inc.paused_seconds}
    for r in vm.severities:
        out |= {r.first_response_median, r.resolution_median}
    out |= {seg.business_seconds for e in vm.explanations for seg in e.segments}
    return {x for x in out if x is not None}


@pytest.mark.parametrize("which", ["rendered_en", "rendered_de"])
def test_no_duration_is_printed_in_clock_form(which, request):
    rendered = request.getfixturevalue(which)
    vm = rendered.vm
    text = OPENING_HOURS.sub("", DATETIME.sub("", rendered.flat))
    for inc in (*vm.incidents, *vm.carried_over):  # a subject may say "since 14:00"
        text = text.replace(flat(inc.subject), "")
    times = _times_of_day(vm)
    assert set(CLOCK_FORM.findall(text)) <= times, set(CLOCK_FORM.findall(text)) - times
    for secs in _durations(vm):  # the old h:mm form of any duration the report shows
        old = f"{secs // 3600}:{secs % 3600 // 60:02d}"
        assert old in times or not re.search(rf"\b{old}\b", text), old
        assert filters.duration(secs, vm.language) in rendered.flat


@pytest.mark.parametrize("which", ["rendered_en", "rendered_de"])
def test_by_severity_headers_stay_in_their_columns(which, request):
    """A header wider than its column ran into the next one: "SCHWEREGRADVORFÄLLE" (German)."""
    import pdfplumber

    rendered = request.getfixturevalue(which)
    labels = [filters.text(k, rendered.vm.language).upper() for k in ("severity", "incidents")]
    with pdfplumber.open(io.BytesIO(rendered.pdf)) as doc:
        texts = [w["text"] for w in doc.pages[0].extract_words()]
    assert labels[1] in texts  # the incidents header is a word of its own
    assert not [t for t in texts if labels[1] in t and t != labels[1]], texts


@pytest.fixture(scope="module")
def edge():
    """One second over an 8 h first-response target; a Professional plan without resolution
    targets; a tier change with two allowances; a cut-off inside the report month."""
    vm = sample_report("en")
    first = vm.incidents[0]  # RT-10412, severity 2: first response target 8 business hours
    over = replace(first, first_response_seconds=first.first_response_target_seconds + 1,
                   first_response_met=False)
    summary = replace(vm.summary, allowances=(Allowance("professional", 1, 1, 2),
                                              Allowance("gold", 4, 4, 0)))
    vm = replace(vm, incidents=(over, *vm.incidents[1:]), summary=summary,
                 breaches=(Breach(over.ticket_id, 2, "first_response", 1), *vm.breaches),
                 has_resolution_targets=False,
                 cutoff=datetime(2026, 3, 20, 11, 0, tzinfo=timezone.utc))
    return Rendered(vm)


def test_a_breached_time_never_prints_equal_to_its_target(rendered_en, edge):
    assert "8 h 1 min of 8 h" in edge.flat and "over by 1 min" in edge.flat
    for rendered in (rendered_en, edge):
        for inc in (*rendered.vm.incidents, *rendered.vm.carried_over):
            for metric in ("first_response", "resolution"):
                secs = getattr(inc, f"{metric}_seconds")
                target = getattr(inc, f"{metric}_target_seconds")
                if getattr(inc, f"{metric}_met") is False:
                    assert filters.duration(secs, "en") != filters.duration(target, "en")
        for shown, target in re.findall(r"(\d[\d,]* h(?: \d+ min)?|\d+ min) of (\d[\d,]* h(?: \d+ min)?)",
                                        rendered.flat):
            assert shown != target or "breached" not in rendered.flat.split(shown)[1][:30]


def test_counts_replace_rates_below_five_rated(rendered_en):
    text = rendered_en.flat
    res = rendered_en.vm.summary.resolution
    assert res.rated < 5 and "3 of 4 met" in text
    assert filters.rate(res.rate, "en").replace("\u00a0", " ") not in text
    # trend months with 1-4 rated incidents show counts ("2/2"), never "100 %" or "0 %"
    assert "2/2" in text and "1/2" in text
    # the 90th percentile needs 5 values: the sample has at most 2 per severity
    assert all(r.first_response_p90 is None for r in rendered_en.vm.severities)


def test_page_one_verdict_breaches_and_carried_over(rendered_en):
    vm, text = rendered_en.vm, rendered_en.flat
    with __import__("pdfplumber").open(io.BytesIO(rendered_en.pdf)) as doc:
        page1 = flat(doc.pages[0].extract_text())
    assert f"Breaches this month: {len(vm.breaches)}" in page1
    for b in vm.breaches:
        assert b.ticket_id in page1
    assert "Still open from earlier months: 1 (1 breached)" in page1
    assert "Feb 26: 3 of 3 met" in page1  # last month, as counts (3 rated)
    # the rows add up: met / breached / pending per severity
    assert "1 / 1 / 1" in text and "0 / 0 / 1" in text
    # from earlier months, after the month's incidents, outside the month's rates
    assert text.index("Incidents opened in March 2026") < text.index("From earlier months")
    assert "RT-10288" in text and "RT-10351" in text
    assert "They count in the month they were opened, not in this month's rates." in text
    assert text.index("From earlier months") < text.index("How the clock ran")


def test_cover_names_the_account_manager_and_keeps_the_address_whole(rendered_en):
    with __import__("pdfplumber").open(io.BytesIO(rendered_en.pdf)) as doc:
        words = {w["text"] for w in doc.pages[0].extract_words()}
    assert "jana.becker@northwind-support.example" in words
    assert "Jana Becker" in rendered_en.flat
    assert "since 1 Mar 2026 (was" in rendered_en.flat


def test_status_words_and_ambiguous_event_order(rendered_en):
    text = rendered_en.flat
    assert "Closed" in text and "In progress" in text
    assert "order was ambiguous" in text  # RT-10490 is in data_warnings


def test_professional_tier_change_and_month_to_date(edge):
    text = edge.flat
    assert "plan has no resolution targets" in text
    assert "Professional: 1 of 1" in text and "Gold: 4 of 4 included" in text  # one allowance per tier
    assert "March 2026 (month to date)" in text
    assert "RESOLUTION · COMPLIANCE" not in text.upper().replace("\n", " ")


# --- hostile input ---------------------------------------------------------------------

HOSTILE_NAME = '<script>alert("x")</script> Evil & Co <b>KG</b>'
HOSTILE_SUBJECTS = {
    "RT-10412": "<img src=file:///etc/passwd> printer broken",
    "RT-10437": "<style>body{background:url(file:///etc/passwd)}</style> css",
    "RT-10458": "{{ 7*7 }} {% raw %} ${7*7} url(http://127.0.0.1:9/x.png)",
    "RT-10471": '<link rel="attachment" href="file:///etc/passwd"><a href="javascript:alert(1)">x</a>',
    "RT-10490": "<svg onload=alert(1)><image href='file:///etc/hostname'/></svg>",
}


@pytest.fixture(scope="module")
def hostile():
    vm = sample_report("en", customer_name=HOSTILE_NAME, subjects=HOSTILE_SUBJECTS,
                       account_manager="<iframe src=file:///etc/shadow>")
    return Rendered(vm)


def test_hostile_text_is_shown_literally(hostile):
    assert squash(HOSTILE_NAME) in hostile.squashed
    for subject in HOSTILE_SUBJECTS.values():
        assert squash(subject) in hostile.subjects, subject
    assert "{{7*7}}" in hostile.squashed
    assert "<iframe" in hostile.text


def test_hostile_text_is_escaped_in_html():
    html = render_customer_html(sample_report(customer_name=HOSTILE_NAME,
                                              subjects=HOSTILE_SUBJECTS), with_charts=False)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img src=file" not in html and "<link rel=\"attachment\"" not in html
    assert "{{ 7*7 }}" in html  # data is never compiled as a template


def test_hostile_report_reads_only_template_files(hostile):
    assert hostile.fetcher.refused == []
    root = os.path.realpath(TEMPLATES_DIR)
    assert hostile.fetcher.fetched
    for url, path in hostile.fetcher.fetched:
        assert path == "data:" or path.startswith(root + os.sep), (url, path)
    assert not any("passwd" in url or "hostname" in url for url, _ in hostile.fetcher.fetched)


def _pdf_has_no_attachments_or_javascript(pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.attachments == {}
    root = reader.trailer["/Root"]
    assert "/OpenAction" not in root and "/AA" not in root and "/AcroForm" not in root
    names = root.get("/Names")
    if names is not None:
        names = names.get_object()
        assert "/EmbeddedFiles" not in names and "/JavaScript" not in names
    for page in reader.pages:
        assert "/AA" not in page
        for annot in page.get("/Annots") or []:
            annot = annot.get_object()
            assert annot.get("/Subtype") != "/FileAttachment"
            action = annot.get("/A")
            if action is not None:
                action = action.get_object()
                assert action.get("/S") not in ("/JavaScript", "/Launch", "/URI"), action


def test_pdfs_have_no_attachments_and_no_javascript(rendered_en, hostile):
    _pdf_has_no_attachments_or_javascript(rendered_en.pdf)
    _pdf_has_no_attachments_or_javascript(hostile.pdf)


# --- the URL fetcher ---------------------------------------------------------------------

@pytest.mark.parametrize("url, reason", [
    ("file:///etc/passwd", "outside"),
    (f"file://{TEMPLATES_DIR}/../render.py", "'..'"),
    (f"file://{TEMPLATES_DIR}/static/%2e%2e/%2e%2e/render.py", "'..'"),
    ("http://127.0.0.1:9/logo.svg", "scheme"),
    ("https://example.com/font.ttf", "scheme"),
    ("ftp://example.com/x", "scheme"),
    (f"file://evil.example{TEMPLATES_DIR}/base.html", "remote"),
    (f"file://{TEMPLATES_DIR}/static", "not a file"),
])
def test_fetcher_refuses_and_records(url, reason):
    fetcher = TemplateOnlyFetcher()
    with pytest.raises(RefusedURL):
        fetcher(url)
    assert fetcher.refused and reason in fetcher.refused[0][1]
    assert fetcher.fetched == []


def test_fetcher_refuses_symlinks_leading_out(tmp_path):
    root = tmp_path / "templates"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (root / "ok.css").write_text("p{}")
    (root / "link.css").symlink_to(tmp_path / "secret.txt")
    fetcher = TemplateOnlyFetcher(root)
    assert fetcher(f"file://{root}/ok.css").read() == b"p{}"
    with pytest.raises(RefusedURL):
        fetcher(f"file://{root}/link.css")
    assert "outside" in fetcher.refused[0][1]


def test_fetcher_serves_data_uris_and_template_files():
    fetcher = TemplateOnlyFetcher()
    assert fetcher("data:text/plain;base64,aGk=").read() == b"hi"
    assert fetcher(f"file://{TEMPLATES_DIR}/static/logo.svg").read().startswith(b"<svg")


def test_html_referencing_outside_files_fails_loudly():
    created = datetime(2026, 4, 1, tzinfo=timezone.utc)
    html = ('<p>x</p><img src="file:///etc/passwd"><img src="http://127.0.0.1:9/a.png">'
            '<div style="background: url(../render.py)"></div>')
    fetcher = TemplateOnlyFetcher()
    with pytest.raises(UnsafeResourceError):
        html_to_pdf(html, created=created, fetcher=fetcher)
    refused = [u for u, _ in fetcher.refused]
    assert "file:///etc/passwd" in refused and "http://127.0.0.1:9/a.png" in refused
    assert any(u.endswith("/render.py") for u in refused)
    assert fetcher.fetched == []
    lenient = TemplateOnlyFetcher()
    pdf = html_to_pdf(html, created=created, fetcher=lenient, strict=False)
    assert pdf.startswith(b"%PDF") and "root:" not in pdf_text(pdf)


# --- reproducibility, edge cases, plumbing ---------------------------------------------

def test_same_view_model_gives_identical_bytes(rendered_en):
    again = render_customer_pdf(sample_report("en"))
    assert again == rendered_en.pdf
    meta = PdfReader(io.BytesIO(again)).metadata
    assert meta["/CreationDate"] == meta["/ModDate"] == "D:20260401060000Z"


def test_zero_incident_report_renders():
    vm = empty_report("en")
    r = Rendered(vm)
    assert "No incidents were opened this month." in r.flat
    assert "0 of 2 included incidents" in r.flat
    assert "Quiet Customer AG" in r.text
    assert r.fetcher.refused == []
    _pdf_has_no_attachments_or_javascript(r.pdf)


def test_zero_incidents_without_trend_renders_german():
    vm = replace(empty_report("de"), trend=())
    text = flat(pdf_text(render_customer_pdf(vm)))
    assert "In diesem Monat wurden keine Vorfälle eröffnet." in text
    assert "März 2026" in text


def test_kaleido_server_is_started_once_and_reused(rendered_en, rendered_de):
    assert charts.server_starts() == 1
    trend = rendered_en.vm.trend
    t0 = time.perf_counter()
    svgs = [charts.svg_from_figure(charts.volume_figure(trend, "en"), width=400, height=240,
                                   chart_id=f"c{k}") for k in range(5)]
    elapsed = time.perf_counter() - t0
    assert charts.server_starts() == 1
    assert elapsed < 5.0, f"5 charts took {elapsed:.1f}s: is a browser started per chart?"
    # deterministic: same figure, same SVG apart from the chart id we chose
    assert len({s.replace(f'c{k}', 'X') for k, s in enumerate(svgs)}) == 1
    assert all(s.startswith("<svg") for s in svgs)


def test_strict_undefined():
    env = render.environment()
    assert env.autoescape is True
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ nope }}").render()


def test_write_bytes_atomic(tmp_path):
    target = tmp_path / "2026-03" / "customers" / "C-0042-acme.pdf"
    write_bytes_atomic(b"%PDF-old", target)
    write_bytes_atomic(b"%PDF-new", target)
    assert target.read_bytes() == b"%PDF-new"
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_write_bytes_atomic_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "r.pdf"
    write_bytes_atomic(b"%PDF-old", target)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError):
        write_bytes_atomic(b"%PDF-new", target)
    assert target.read_bytes() == b"%PDF-old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.pdf"]


def test_reports_package_imports_no_dagster_or_duckdb():
    for path in REPORTS_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in ("dagster", "duckdb"), (path, name)


def test_view_models_refuse_naive_datetimes():
    vm = sample_report()
    with pytest.raises(ValueError, match="aware"):
        replace(vm, cutoff=datetime(2026, 4, 1))


def test_bytes_are_identical_across_processes(rendered_en):
    """Font subset tags, chart ids and metadata must not depend on the process."""
    import hashlib
    import subprocess
    import sys

    code = ("import hashlib, sys; from tests.fixtures.sample_report import sample_report; "
            "from reports.render import render_customer_pdf; "
            "sys.stdout.write(hashlib.sha256(render_customer_pdf(sample_report('en'))).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPORTS_DIR.parent, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    assert out == hashlib.sha256(rendered_en.pdf).hexdigest()


# --- performance-related guarantees (issue 3's benchmark) --------------------------------

def test_one_kaleido_call_per_report_and_deterministic_svg():
    vm = sample_report("en")
    charts.trend_svg(vm.trend, "en")  # the server is up
    before = charts._calls  # noqa: SLF001
    render_customer_pdf(vm)
    assert charts._calls - before == 1  # both trend panels are one figure, one SVG  # noqa: SLF001
    first, second = charts.trend_svg(vm.trend, "en"), charts.trend_svg(vm.trend, "en")
    assert first == second  # no random figure or trace uids left in the SVG
    assert 'id="defs-trend"' in first and "clip-path" in first


def test_kaleido_page_is_not_reloaded_per_figure_and_history_does_not_change_the_svg():
    """Issue 18: the page (with plotly.js) stays loaded between figures, ~0.3 CPU-s of chromium
    saved per report; a figure drawn after others gives the same SVG as drawn first."""
    vm = sample_report("en")
    first = charts.trend_svg(vm.trend, "en")
    reloads = charts.page_reloads()
    others = [charts.trend_svg(vm.trend, "de"), charts.trend_svg(vm.trend[:5], "en"),
              charts.trend_svg(empty_report("en").trend, "en", resolution=False)]
    assert charts.trend_svg(vm.trend, "en") == first
    assert charts.page_reloads() == reloads, "kaleido reloads its page per figure again"
    assert len(set(others)) == 3


def test_simplified_svg_keeps_what_is_drawn():
    raw = ('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" class="main-svg" '
           'width="10" height="10"><defs id="defs-ab12c"><g class="clips"><clipPath '
           'id="clipab12cxy"><rect width="5" height="5"/></clipPath></g></defs>'
           '<g class="layer"><g class="empty"/><path class="xlines-below"/>'
           '<rect class="scrollbar" width="0" height="0"/>'
           '<path d="M0,0h5" clip-path="url(#clipab12cxy)" style="stroke: red;" class="x"/>'
           '<g transform="translate(1,1)"><text y="2" data-unformatted="A" x="1">A</text></g>'
           '</g></svg>')
    svg = charts.normalise_svg(raw, "trend")
    assert svg == ('<svg xmlns="http://www.w3.org/2000/svg" height="10" width="10">'
                   '<defs id="defs-trend"><g><clipPath id="cliptrendxy"><rect height="5" '
                   'width="5" /></clipPath></g></defs><path clip-path="url(#cliptrendxy)" '
                   'd="M0,0h5" stroke="red" /><g transform="translate(1,1)">'
                   '<text x="1" y="2">A</text></g></svg>')
    # inline styles become attributes; one that cannot be split safely stays a style
    assert charts._style_declarations("fill: rgb(1, 2, 3); font-family: 'A', sans-serif") == {  # noqa: SLF001
        "fill": "rgb(1, 2, 3)", "font-family": "'A', sans-serif"}
    for kept in ("fill: red !important", "font-family: 'a;b'", "-webkit-x: 1", "nonsense"):
        assert charts._style_declarations(kept) == {"style": kept}  # noqa: SLF001


def test_report_css_is_parsed_once_per_process_through_the_confined_fetcher():
    style = render.report_style()
    assert render.report_style() is style  # reused, not re-parsed per report
    root = os.path.realpath(TEMPLATES_DIR)
    assert style.fetcher.refused == []
    paths = [p for _, p in style.fetcher.fetched]
    assert paths and all(p.startswith(root + os.sep) for p in paths), paths
    assert any(p.endswith("static/report.css") for p in paths)
    assert any(p.endswith("DejaVuSans.ttf") for p in paths)  # the shipped fonts
    # the customer template does not link report.css itself (it would be parsed again)
    html = render_customer_html(sample_report("en"), with_charts=False)
    assert "report.css" not in html


def test_render_history_does_not_change_the_bytes(rendered_en):
    """Shared fonts/CSS per process: a report rendered after others is the same PDF."""
    render_customer_pdf(sample_report("de"))
    render_customer_pdf(empty_report("en"))
    assert render_customer_pdf(sample_report("en")) == rendered_en.pdf


def test_nine_character_ticket_ids_do_not_wrap():
    vm = sample_report("en")
    ids = {i.ticket_id: f"T{k:08d}" for k, i in enumerate(vm.incidents, start=1)}
    ids.update({i.ticket_id: f"T{k:08d}" for k, i in enumerate(vm.carried_over, start=100)})
    vm = replace(vm, incidents=tuple(replace(i, ticket_id=ids[i.ticket_id]) for i in vm.incidents),
                 carried_over=tuple(replace(i, ticket_id=ids[i.ticket_id]) for i in vm.carried_over),
                 breaches=tuple(replace(b, ticket_id=ids[b.ticket_id]) for b in vm.breaches),
                 explanations=tuple(replace(e, ticket_id=ids[e.ticket_id])
                                    for e in vm.explanations))
    pdf = render_customer_pdf(vm)
    with __import__("pdfplumber").open(io.BytesIO(pdf)) as doc:
        words = {w["text"] for page in doc.pages for w in page.extract_words()}
    assert set(ids.values()) <= words, sorted(set(ids.values()) - words)


def test_customer_report_uses_the_lean_user_agent_stylesheet(monkeypatch):
    """Issue 18: WeasyPrint's UA stylesheet gives every element six pseudo-element styles for
    list markers and footnotes; the customer report (no lists, no footnotes) drops those rules
    and must come out byte for byte as with the stock stylesheet."""
    from weasyprint.html import UA

    lean = render.lean_ua_css(UA)
    assert lean is not None, "WeasyPrint's UA stylesheet changed: update render.lean_ua_css"
    assert "li::marker" in lean and "::footnote-call" not in lean
    css = render.REPORT_CSS.read_text()
    assert "footnote" not in css and "list-item" not in css
    assert render._lean_ua_stylesheet() is not None  # noqa: SLF001
    html = render_customer_html(sample_report("de"))
    vm = sample_report("de")
    lean_pdf = html_to_pdf(html, created=vm.cutoff, report_css=True)
    monkeypatch.setattr(render, "_lean_ua_stylesheet", lambda: None)
    assert html_to_pdf(html, created=vm.cutoff, report_css=True) == lean_pdf


def _page_texts(pdf: bytes) -> list[str]:
    with __import__("pdfplumber").open(io.BytesIO(pdf)) as doc:
        return [page.extract_text() for page in doc.pages]


@pytest.mark.parametrize("language", ["en", "de"])
def test_methodology_laid_out_once_draws_the_same_pages(language):
    """Issue 18: the methodology page is laid out once per thread and content and drawn onto
    placeholder pages under the report's own running header and page numbers: same pages and
    same text as the section laid out inline, and a later report reuses the laid-out page."""
    vm = sample_report(language)
    inline = html_to_pdf(render_customer_html(vm), created=vm.cutoff, report_css=True)
    overlaid = render_customer_pdf(vm)
    assert _page_texts(overlaid) == _page_texts(inline)
    assert [o.title for o in PdfReader(io.BytesIO(overlaid)).outline[-1][-1]] == [
        o.title for o in PdfReader(io.BytesIO(inline)).outline[-1][-1]]
    context = render.customer_context(vm, with_charts=False)
    html, pages = render.customer_html_and_overlays(context)
    assert html.count("methodology-placeholder") == len(pages) >= 1
    assert render.customer_html_and_overlays(context)[1] is pages  # cached, not laid out again
    other = render.customer_context(replace(vm, customer=replace(vm.customer, tier="enterprise")),
                                    with_charts=False)
    assert render.customer_html_and_overlays(other)[1] is not pages  # other tier, other page


def test_overlays_need_their_placeholder_pages():
    vm = sample_report("en")
    _, pages = render.customer_html_and_overlays(render.customer_context(vm, with_charts=False))
    with pytest.raises(RuntimeError, match="placeholders"):
        html_to_pdf(render_customer_html(vm, with_charts=False), created=vm.cutoff,
                    report_css=True, overlays=pages)


def test_svg_labels_are_laid_out_once(monkeypatch):
    """Issue 18: the chart's labels are laid out whole (one Pango layout per label, not per
    letter) in customer reports only; WeasyPrint's SVG tag table is as svg_text expects."""
    import weasyprint.svg as wsvg
    from weasyprint.text import line_break

    from reports import svg_text

    assert svg_text.install(), "WeasyPrint's SVG text drawing changed: update reports/svg_text.py"
    assert wsvg.TAGS["text"] is wsvg.TAGS["tspan"] is wsvg.text is svg_text.text
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40">'
           '<text x="100" y="20" text-anchor="middle" font-size="9px">March<tspan dy="1.3em" '
           'x="100">2026</tspan></text><text x="1 2 3" y="30">abc</text></svg>')
    html = f'<img src="{render._svg_data_uri(svg)}">'
    created = datetime(2026, 4, 1, tzinfo=timezone.utc)
    calls = []
    real = line_break.split_first_line
    monkeypatch.setattr(line_break, "split_first_line",
                        lambda text, *a, **k: calls.append(text) or real(text, *a, **k))
    fast = html_to_pdf(html, created=created, report_css=True)
    assert [c for c in calls if c in ("March", "2026")] == ["March", "2026"]  # whole labels
    assert {"a", "b", "c"} <= set(calls)  # per-letter x: WeasyPrint's own code
    calls.clear()
    html_to_pdf(html, created=created)  # other PDFs: WeasyPrint's per-letter layout
    assert {"M", "a", "r", "2", "0"} <= set(calls)
    assert "March" in pdf_text(fast) and "2026" in pdf_text(fast)


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("resolution", [True, False])
def test_trend_figure_dict_is_the_figures_to_dict(language, resolution):
    """Issue 18: the report's chart is exported from plain dicts, without plotly objects;
    kaleido must get exactly what Figure.to_dict() gave it."""
    import json

    for vm in (sample_report(language), empty_report(language)):
        fast = charts.trend_figure_dict(vm.trend, language, resolution=resolution)
        slow = charts.trend_figure(vm.trend, language, resolution=resolution).to_dict()
        assert json.dumps(fast, sort_keys=True) == json.dumps(slow, sort_keys=True)


def test_prepared_svg_labels_land_where_weasyprint_anchors_them():
    """Issue 18: `svg_text.prepare` moves text-anchor of simple labels to an attribute that
    svg_text.text applies itself (no PDF group per label): the glyphs land where WeasyPrint's
    anchoring put them, and labels it cannot place stay as they are."""
    from reports import svg_text

    assert svg_text.install()
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="60">'
           '<text x="100" y="20" text-anchor="middle" font-size="9px">Mar 75 %</text>'
           '<text x="200" y="20" text-anchor="end" font-size="9px"><tspan x="200" dy="0em">'
           'Apr</tspan><tspan x="200" dy="1.3em">26</tspan></text>'
           '<text x="250" y="40" text-anchor="middle" font-size="9px">a<tspan>b</tspan></text>'
           '</svg>')
    prepared = svg_text.prepare(svg)
    assert prepared.count(f'{svg_text.ANCHOR}=') == 2
    assert prepared.count(' text-anchor="middle"') == 1  # text between tspans: kept
    created = datetime(2026, 4, 1, tzinfo=timezone.utc)

    def chars(svg_):
        pdf = html_to_pdf(f'<img src="{render._svg_data_uri(svg_)}">', created=created,
                          report_css=True)
        with __import__("pdfplumber").open(io.BytesIO(pdf)) as doc:
            return [(c["text"], round(c["x0"], 2), round(c["top"], 2)) for c in doc.pages[0].chars]

    assert chars(prepared) == chars(svg)


def test_methodology_over_several_pages_keeps_headers_and_page_numbers():
    """A methodology section longer than a page is laid out once as several pages, drawn onto
    as many placeholder pages: same text per page as laid out inline, 'Page n of N' right."""
    vm = sample_report("en")
    context = render.customer_context(vm)
    context["methodology"] = list(context["methodology"]) * 3
    html, pages = render.customer_html_and_overlays(context)
    assert len(pages) >= 2
    overlaid = render.customer_pdf(context, created=vm.cutoff)
    inline_html = render.environment().get_template("customer_monthly.html").render(**context)
    inline = html_to_pdf(inline_html, created=vm.cutoff, report_css=True)
    texts = _page_texts(overlaid)
    assert texts == _page_texts(inline)
    assert f"Page {len(texts)} of {len(texts)}" in texts[-1]
    assert "Acme Logistik GmbH" in texts[-1].splitlines()[0]
    with pytest.raises(ValueError, match="report_css"):
        html_to_pdf(html, created=vm.cutoff, overlays=pages)


@pytest.mark.parametrize("language", ["en", "de"])
def test_compliance_panel_says_why_it_has_no_points(language, rendered_en):
    """A month's rate is drawn only from 5 rated incidents; when no month has that many, the
    panel says so instead of standing empty (a small Professional customer's usual trend)."""
    words = filters.text("no_solid_rates", language).split("\n")[0]
    vm = sample_report(language)
    thin = replace(vm, trend=tuple(replace(p, first_response_rated=min(p.first_response_rated, 4),
                                           resolution_rated=min(p.resolution_rated, 4))
                                   for p in vm.trend))
    assert squash(words) in squash(pdf_text(render_customer_pdf(thin)))
    if language == "en":  # the sample has months with 5 rated: points, and no such sentence
        assert squash(words) not in rendered_en.squashed
