"""Render many customer reports: in parallel over the machine's cores, written atomically.

No Dagster, no DuckDB: view models in, PDF files out. Each worker process is long-lived and
renders a chunk of reports after another, so its kaleido server (one headless chromium per
process) is started once per worker, not once per report. Workers are started with `spawn`:
a forked child would inherit the parent's kaleido/DuckDB/Dagster state.

Each report is rendered in three timed stages, exactly as `render.render_customer_pdf` does:
charts (plotly -> SVG through kaleido: one figure with both trend panels, one call), HTML
(Jinja; and the methodology page, laid out once per worker and content) and PDF (WeasyPrint,
with the worker's shared fonts and parsed report.css). The
timings, the worker's CPU seconds and its chromium's CPU seconds per report are returned so
the asset and the benchmark can report where the time goes.

Incremental (issue 18): `plan_customer_reports` fingerprints every view model
(`reports.fingerprint`) and keeps the PDFs whose manifest says they are current; only the rest
is rendered, and each PDF's manifest is written right after it. `split_batches` cuts the work
into batches for the Dagster fan-out (`assets/reports.py`), where each batch is rendered in
one process by `render_reports(..., workers=1)`.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reports import charts, fingerprint, render
from sla.files import write_bytes_atomic
from sla.report_data.models import CustomerReport

#: below this many reports, rendering in-process beats starting worker processes
MIN_PARALLEL = 4


@dataclass(frozen=True)
class Rendered:
    customer_id: str
    path: str
    bytes: int
    charts_s: float  # kaleido (plotly figure -> SVG)
    html_s: float  # Jinja
    pdf_s: float  # WeasyPrint (layout + PDF)
    pid: int
    cpu_s: float = 0.0  # CPU seconds of the worker process for this report (not chromium)
    chromium_cpu_s: float = 0.0  # CPU seconds of the worker's chromium processes (kaleido)

    @property
    def total_s(self) -> float:
        return self.charts_s + self.html_s + self.pdf_s


def render_pdf_timed(vm: CustomerReport) -> tuple[bytes, float, float, float]:
    """(PDF bytes, kaleido s, Jinja s, WeasyPrint s); same bytes as render_customer_pdf(vm)."""
    t0 = time.perf_counter()
    context = render.customer_context(vm, with_charts=False)
    if vm.trend:
        context["charts"] = render.trend_chart_uris(vm)
    t1 = time.perf_counter()
    # the methodology page's layout, once per worker and content, counts as Jinja here
    html, overlays = render.customer_html_and_overlays(context)
    t2 = time.perf_counter()
    pdf = render.html_to_pdf(html, created=vm.cutoff, report_css=True, overlays=overlays)
    t3 = time.perf_counter()
    return pdf, t1 - t0, t2 - t1, t3 - t2


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _descendants(pid: int) -> list[int]:
    """Child processes of every thread of `pid`, recursively (Linux /proc; else [])."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's descendants (its chromium), from /proc."""
    total = 0.0
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
        except (OSError, IndexError, ValueError):
            pass
    return total


@dataclass(frozen=True)
class RenderJob:
    """One customer PDF to render: its view model, where it goes and, to record it after the
    PDF is written, its fingerprint and manifest path (None: no manifest)."""

    vm: CustomerReport
    path: str
    fingerprint: fingerprint.Fingerprint | None = None
    manifest: str | None = None


def _as_job(job) -> RenderJob:
    if isinstance(job, RenderJob):
        return job
    vm, path = job
    return RenderJob(vm, str(path))


def _render_one(job: RenderJob) -> Rendered:
    vm, path = job.vm, job.path
    cpu0, chromium0 = time.process_time(), children_cpu_s()
    pdf, c, h, p = render_pdf_timed(vm)
    write_bytes_atomic(pdf, path)
    if job.manifest is not None:  # after the PDF: a manifest never vouches for a PDF not yet written
        fingerprint.record([path], job.fingerprint, job.manifest, contents={Path(path).name: pdf})
    cpu1, chromium1 = time.process_time(), children_cpu_s()
    return Rendered(vm.customer.id, path, len(pdf), c, h, p, os.getpid(),
                    cpu_s=cpu1 - cpu0, chromium_cpu_s=max(0.0, chromium1 - chromium0))


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent was killed exits (with its chromium) instead of lingering."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            try:
                charts._stop_server()  # noqa: SLF001
            finally:
                os._exit(1)


def _warm_up(parent: int) -> None:
    """Worker initializer: start the kaleido server and load the fonts and report.css before
    the first report; watch the parent."""
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    charts._ensure_server()  # noqa: SLF001
    render.report_style()


def default_workers() -> int:
    return os.cpu_count() or 1


def render_reports(jobs: Sequence[RenderJob | tuple[CustomerReport, str | os.PathLike]], *,
                   workers: int | None = None, chunksize: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> list[Rendered]:
    """Render `RenderJob`s (or (view model, output path) pairs); returns one `Rendered` per job,
    in job order.

    workers: processes (default: all cores); 1 (or a handful of reports) renders in this
    process. chunksize: reports handed to a worker at once (default: up to 8, at least 4
    chunks per worker, so progress is reported steadily and no core idles at the end).
    A failure in any report raises after the pool stops; PDFs already written stay complete
    (write-then-rename), none is half-written.
    """
    items = [_as_job(job) for job in jobs]
    total = len(items)
    workers = max(1, min(workers or default_workers(), total or 1))
    done: list[Rendered] = []
    if workers == 1 or total < MIN_PARALLEL:
        for item in items:
            done.append(_render_one(item))
            if progress:
                progress(len(done), total)
        return done
    chunksize = chunksize or max(1, min(8, -(-total // (workers * 4))))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_warm_up,
                             initargs=(os.getpid(),)) as pool:
        for result in pool.map(_render_one, items, chunksize=chunksize):
            done.append(result)
            if progress:
                progress(len(done), total)
    return done


def remove_stale(folder: Path, keep: set[str]) -> list[Path]:
    """Delete PDFs (and leftover temporary files) in `folder` that this run did not write."""
    removed = []
    if not folder.is_dir():
        return removed
    for f in folder.iterdir():
        if f.is_file() and f.name not in keep and (f.suffix == ".pdf" or f.name.endswith(".pdf.tmp")
                                                   or (f.name.startswith(".") and f.suffix == ".tmp")):
            f.unlink()
            removed.append(f)
    return removed


# ----------------------------------------------------------------------------- file names
def slug(text: str, max_len: int = 60) -> str:
    """'Müller & Söhne GmbH' -> 'muller-sohne-gmbh' (ASCII, safe in any file system)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    return s[:max_len].rstrip("-") or "customer"


def safe_id(customer_id: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", customer_id).lstrip(".")
    return s[:80] or "_"


def report_filename(report: CustomerReport) -> str:
    """`<customer_id>-<slug>.pdf` (both made safe for a file name)."""
    return f"{safe_id(report.customer.id)}-{slug(report.customer.name)}.pdf"


# ----------------------------------------------------------------------------- writing
@dataclass(frozen=True)
class CustomerPlan:
    """What a month's run has to do: every report file of the month, which of them must be
    rendered (with their fingerprints) and which are current on disk and kept as they are."""

    month: str
    folder: Path
    out_dir: Path  # the root of the outputs (manifests live in <out_dir>/.fingerprints/)
    names: tuple[str, ...]  # every report file of the month, in report order
    todo: tuple[RenderJob, ...]  # to render (new, changed, or forced)
    reused: tuple[str, ...]  # current on disk: not rendered again
    plan_s: float = 0.0  # fingerprinting and checking what is on disk

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(self.folder / n for n in self.names)


@dataclass(frozen=True)
class WrittenReports:
    month: str
    folder: Path
    paths: tuple[Path, ...]
    removed: tuple[Path, ...]
    rendered: tuple  # reports.batch.Rendered, with the per-stage timings
    wall_s: float
    reused: tuple[Path, ...] = ()  # current on disk (fingerprint unchanged): not rendered again


def customers_folder(out_dir: str | Path, month: str) -> Path:
    return Path(out_dir) / month / "customers"


def plan_customer_reports(reports: Sequence[CustomerReport], out_dir: str | Path, month: str, *,
                          force: bool = False) -> CustomerPlan:
    """Fingerprint every report and keep those whose PDF is current (`reports.fingerprint`);
    with `force` every report is rendered again."""
    started = time.perf_counter()
    folder = customers_folder(out_dir, month)
    folder.mkdir(parents=True, exist_ok=True)
    names = [report_filename(vm) for vm in reports]
    if len(set(names)) != len(names):  # two customer ids made equal by safe_id
        raise ValueError("two customers map to the same report file name")
    todo, reused = [], []
    for vm, name in zip(reports, names):
        path = folder / name
        fp = fingerprint.fingerprint(vm)
        manifest = fingerprint.manifest_path(path, out_dir)
        if not force and fingerprint.is_current([path], fp, manifest):
            reused.append(name)
        else:
            todo.append(RenderJob(vm, str(path), fp, str(manifest)))
    return CustomerPlan(month, folder, Path(out_dir), tuple(names), tuple(todo), tuple(reused),
                        time.perf_counter() - started)


def finish_customer_reports(out_dir: str | Path, month: str, names: Sequence[str]) -> list[Path]:
    """After a whole month: delete PDFs (and their manifests, and leftover temporary files) of the
    month's folder that are not the month's reports, so the folder is exactly the month's reports."""
    folder = customers_folder(out_dir, month)
    removed = remove_stale(folder, set(names))
    fingerprint.prune_manifests(folder, names, out_dir)
    return removed


def auto_batch_size(reports: int, cores: int | None = None) -> int:
    """Reports per batch of the fan-out: about two batches per core, so no core idles at the end,
    but at least 10 and at most 200 reports, so starting a step (a process with Dagster and a
    chromium, seconds) stays small next to rendering the batch (about a second per report)."""
    cores = cores or default_workers()
    return max(10, min(200, -(-reports // (2 * cores))))


def split_batches(jobs: Sequence[RenderJob], size: int) -> list[tuple[RenderJob, ...]]:
    """Consecutive batches of at most `size` jobs (the last may be smaller)."""
    size = max(1, size)
    return [tuple(jobs[i:i + size]) for i in range(0, len(jobs), size)]


def write_customer_reports(reports: list[CustomerReport], out_dir: str | Path, month: str, *,
                           workers: int | None = None, prune: bool = True, force: bool = False,
                           progress=None) -> WrittenReports:
    """Render every report to `<out>/<YYYY-MM>/customers/<customer_id>-<slug>.pdf`, in parallel,
    unless its PDF is current (same fingerprint, same bytes on disk); `force` renders them all.

    Each PDF is written to a temporary name and renamed, then its manifest. With `prune` (a whole
    month), PDFs of the folder that this run did not write or keep (a renamed customer, a customer
    no longer in the month) are deleted afterwards, so the folder is exactly the month's reports.
    """
    started = time.perf_counter()
    plan = plan_customer_reports(reports, out_dir, month, force=force)
    rendered = render_reports(plan.todo, workers=workers, progress=progress)
    wall = time.perf_counter() - started
    removed = finish_customer_reports(out_dir, month, plan.names) if prune else []
    return WrittenReports(month, plan.folder, plan.paths, tuple(removed), tuple(rendered), wall,
                          reused=tuple(plan.folder / n for n in plan.reused))
