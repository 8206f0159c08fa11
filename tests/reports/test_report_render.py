"""The customer PDF, end to end: real Jinja, real WeasyPrint, real kaleido/chromium."""

from __future__ import annotations

import ast
import io
import os
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
        assert filters.rate(m.rate, "en").replace("\u00a0", " ") in text
        assert f"{m.met} met · {m.breached} breached" in text
        assert f"{m.pending} pending · {m.no_target} no target" in text
    # golden values of the sample, so a formatter bug cannot hide behind itself
    assert "85.7 %" in text and "75.0 %" in text
    assert "4 of 4 included incidents" in text and "3 over quota" in text


def test_per_severity_targets_and_figures(rendered_en):
    text = rendered_en.flat
    for row in rendered_en.vm.severities:
        assert filters.target(row.first_response_target, "en") in text
        if row.resolution_median is not None:
            assert filters.duration(row.resolution_median) in text
    assert "16 business hours" in text and "7 business days" in text


def test_incident_figures_and_explanations(rendered_en):
    text = rendered_en.flat
    vm = rendered_en.vm
    created = squash(column_text(rendered_en.pdf, "CREATED", "FIRST"))
    for inc in vm.incidents:  # date and time wrap onto two lines in the table
        assert squash(filters.datetime_local(inc.created_at, "en")) in created
    # RT-10437: breached resolution with a stop while solved and a reopen
    assert "16:20 / 16:00" in text and "breached" in text
    assert "stopped, solved" in text and "paused, waiting for you" in text
    explained = {e.ticket_id for e in vm.explanations}
    assert explained == {"RT-10437", "RT-10471", "RT-10490", "RT-10519"}
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
    assert "85,7 %" in text and "75,0 %" in text
    assert "4 von 4 inklusive Vorfällen" in text
    assert "16 Geschäftsstunden" in text and "7 Geschäftstage" in text
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
    vm = replace(vm, incidents=tuple(replace(i, ticket_id=ids[i.ticket_id]) for i in vm.incidents),
                 explanations=tuple(replace(e, ticket_id=ids[e.ticket_id])
                                    for e in vm.explanations))
    pdf = render_customer_pdf(vm)
    with __import__("pdfplumber").open(io.BytesIO(pdf)) as doc:
        words = {w["text"] for page in doc.pages for w in page.extract_words()}
    assert set(ids.values()) <= words, sorted(set(ids.values()) - words)
