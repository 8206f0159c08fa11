"""Incremental rendering (issue 18): fingerprints of view models, manifests next to the outputs,
and a month's batch that renders only what changed.

The batch tests swap WeasyPrint for a fast stand-in (`render_pdf_timed`): what is tested here is
which reports are rendered and which are kept, not the PDF itself (the rendering tests and
tests/pipelines/test_incremental.py use the real renderer)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from decimal import Decimal

import pandas as pd
import pytest

from reports import batch, fingerprint
from tests.fixtures.sample_report import sample_report


def fake_pdf(vm) -> bytes:
    return b"%PDF-fake " + fingerprint.view_hash(vm).encode()


@pytest.fixture()
def fake_renderer(monkeypatch):
    calls = []

    def render(vm):
        calls.append(vm.customer.id)
        return fake_pdf(vm), 0.0, 0.0, 0.0

    monkeypatch.setattr(batch, "render_pdf_timed", render)
    return calls


def customer(vm, cid: str, name: str):
    return dataclasses.replace(vm, customer=dataclasses.replace(vm.customer, id=cid, name=name))


@pytest.fixture(scope="module")
def reports():
    vm = sample_report("en")
    return [customer(vm, f"C{i:04d}", f"Customer {i}") for i in range(1, 6)]


# ---- canonical form -----------------------------------------------------------------------------
def test_equal_view_models_have_equal_hashes_and_any_field_counts():
    a, b = sample_report("en"), sample_report("en")
    assert a is not b and fingerprint.view_hash(a) == fingerprint.view_hash(b)
    assert fingerprint.view_hash(sample_report("de")) != fingerprint.view_hash(a)
    first = a.incidents[0]
    changed = dataclasses.replace(a, incidents=(dataclasses.replace(first, subject=first.subject + "!"),
                                                *a.incidents[1:]))
    assert fingerprint.view_hash(changed) != fingerprint.view_hash(a)
    later = dataclasses.replace(a, cutoff=a.cutoff + dt.timedelta(seconds=1))
    assert fingerprint.view_hash(later) != fingerprint.view_hash(a)


def test_canonical_form_keeps_what_can_print_differently():
    c = fingerprint.canonical
    assert c(Decimal("0.95")) != c(Decimal("0.950"))  # may print "95 %" vs "95.0 %"
    assert c(1) != c(1.0) != c(True)
    utc = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
    assert c(utc) != c(utc.astimezone(dt.timezone(dt.timedelta(hours=1))))
    assert c({("gold", "2026-03"): 1}) == c({("gold", "2026-03"): 1})
    assert c({"b": 1, "a": 2}) == c({"a": 2, "b": 1})  # mapping order does not matter
    assert c((1, 2)) != c((2, 1))  # sequence order does
    frame = pd.DataFrame({"month": ["2026-03"], "rate": [0.5]})
    assert c(frame) == c(frame.copy())
    assert c(frame) != c(frame.assign(rate=[0.25]))
    assert c(frame) != c(frame.rename(columns={"rate": "r"}))
    assert c(pd.DataFrame({"x": [float("nan"), None]})) == c(pd.DataFrame({"x": [float("nan"), None]}))
    with pytest.raises(TypeError, match="cannot fingerprint"):
        c(object())


def test_environment_covers_templates_fonts_code_and_renderers():
    env = fingerprint.environment()
    assert {"customer_monthly.html", "static/report.css", "static/fonts/DejaVuSans.ttf",
            "static/logo.svg"} <= set(env["templates"])
    assert {"reports/batch.py", "reports/render.py", "reports/charts.py", "reports/format.py",
            "sla/report_data/models.py"} <= set(env["code"])
    assert {"weasyprint", "pydyf", "plotly", "kaleido", "jinja2"} <= set(env["packages"])
    assert env["packages"]["weasyprint"] != "absent"
    assert env["pango"] and env["chromium"]
    assert fingerprint.environment_hash() == fingerprint.environment_hash()


def test_manifest_vouches_only_for_the_exact_bytes(tmp_path):
    out = tmp_path / "billing" / "a.pdf"
    out.parent.mkdir()
    out.write_bytes(b"one")
    manifest = fingerprint.manifest_path(out, tmp_path)
    assert manifest == tmp_path / ".fingerprints" / "billing" / "a.pdf.json"  # the output folder stays clean
    fp = fingerprint.Fingerprint("v", "e")
    assert not fingerprint.is_current([out], fp, manifest)  # no manifest yet
    fingerprint.record([out], fp, manifest)
    data = json.loads(manifest.read_text())
    assert data["files"] == {"a.pdf": {"bytes": 3, "sha256": hashlib.sha256(b"one").hexdigest()}}
    assert fingerprint.is_current([out], fp, manifest)
    assert not fingerprint.is_current([out], fingerprint.Fingerprint("v2", "e"), manifest)  # view changed
    assert not fingerprint.is_current([out], fingerprint.Fingerprint("v", "e2"), manifest)  # template/renderer
    out.write_bytes(b"two")  # same size, other bytes (edited or damaged by hand)
    assert not fingerprint.is_current([out], fp, manifest)
    out.unlink()
    assert not fingerprint.is_current([out], fp, manifest)
    manifest.write_text("{not json")
    assert not fingerprint.is_current([out], fp, manifest)


def test_a_manifest_of_several_files_needs_all_of_them(tmp_path):
    files = [tmp_path / "r.pdf", tmp_path / "r.csv"]
    for f in files:
        f.write_bytes(f.name.encode())
    fp = fingerprint.Fingerprint("v", "e")
    written = []
    assert fingerprint.refresh(files, fp, lambda: written.append(1), root=tmp_path)
    assert not fingerprint.refresh(files, fp, lambda: written.append(2), root=tmp_path)
    assert fingerprint.refresh(files, fp, lambda: written.append(3), root=tmp_path, force=True)
    assert written == [1, 3]
    manifest = fingerprint.manifest_path(files[0], tmp_path)
    assert not fingerprint.is_current(files[:1], fp, manifest)
    files[1].unlink()
    assert not fingerprint.is_current(files, fp, manifest)


# ---- a month's batch ------------------------------------------------------------------------------
def test_unchanged_rerun_renders_nothing_and_one_change_renders_one(tmp_path, reports, fake_renderer):
    first = batch.write_customer_reports(reports, tmp_path, "2026-03", workers=1)
    assert len(first.rendered) == 5 and first.reused == ()
    folder = tmp_path / "2026-03" / "customers"
    pdfs = {p.name: p.read_bytes() for p in folder.glob("*.pdf")}
    assert len(pdfs) == 5 and sorted(p.name for p in folder.iterdir()) == sorted(pdfs)  # only the PDFs there
    assert len(list((tmp_path / ".fingerprints" / "2026-03" / "customers").glob("*.pdf.json"))) == 5

    fake_renderer.clear()
    again = batch.write_customer_reports(reports, tmp_path, "2026-03", workers=1)
    assert fake_renderer == [] and again.rendered == () and len(again.reused) == 5
    assert {p.name: p.read_bytes() for p in folder.glob("*.pdf")} == pdfs

    vm = reports[2]
    changed = [*reports[:2], dataclasses.replace(vm, incidents=(dataclasses.replace(vm.incidents[0], subject="new"),
                                                                *vm.incidents[1:])), *reports[3:]]
    third = batch.write_customer_reports(changed, tmp_path, "2026-03", workers=1)
    assert fake_renderer == ["C0003"] and len(third.reused) == 4

    fake_renderer.clear()
    forced = batch.write_customer_reports(changed, tmp_path, "2026-03", workers=1, force=True)
    assert len(fake_renderer) == 5 and forced.reused == ()


def test_a_damaged_or_missing_pdf_is_rendered_again(tmp_path, reports, fake_renderer):
    batch.write_customer_reports(reports, tmp_path, "2026-03", workers=1)
    folder = tmp_path / "2026-03" / "customers"
    names = sorted(p.name for p in folder.glob("*.pdf"))
    (folder / names[0]).unlink()
    (folder / names[1]).write_bytes(b"%PDF-truncated")
    fake_renderer.clear()
    batch.write_customer_reports(reports, tmp_path, "2026-03", workers=1)
    assert sorted(fake_renderer) == ["C0001", "C0002"]


def test_a_customer_who_left_takes_its_manifest_along(tmp_path, reports, fake_renderer):
    batch.write_customer_reports(reports, tmp_path, "2026-03", workers=1)
    folder = tmp_path / "2026-03" / "customers"
    manifests = tmp_path / ".fingerprints" / "2026-03" / "customers"
    (manifests / ".C0001-customer-1.pdf.json.x.tmp").write_text("left over")
    written = batch.write_customer_reports(reports[1:], tmp_path, "2026-03", workers=1)
    assert [p.name for p in written.removed] == ["C0001-customer-1.pdf"]
    assert sorted(p.name for p in manifests.iterdir()) == sorted(f"{p.name}.json" for p in folder.glob("*.pdf"))


def test_one_customer_rerender_keeps_the_rest(tmp_path, reports, fake_renderer):
    batch.write_customer_reports(reports, tmp_path, "2026-03", workers=1)
    fake_renderer.clear()
    one = batch.write_customer_reports(reports[:1], tmp_path, "2026-03", workers=1, prune=False)
    assert fake_renderer == [] and len(one.reused) == 1
    assert len(list((tmp_path / "2026-03" / "customers").glob("*.pdf"))) == 5


def test_batches_cover_the_work_in_order():
    jobs = [batch.RenderJob(None, f"/x/{i}.pdf") for i in range(23)]
    parts = batch.split_batches(jobs, 10)
    assert [len(p) for p in parts] == [10, 10, 3]
    assert [j for p in parts for j in p] == jobs
    assert batch.split_batches([], 10) == []
    assert batch.auto_batch_size(300, 2) == 75  # two batches per core
    assert batch.auto_batch_size(5000, 2) == 200  # at most 200: a step's start-up stays small
    assert batch.auto_batch_size(15, 2) == 10  # at least 10
