"""Run the Dagster assets in process, step by step with progress, for the `sla` command.

Each step is one Dagster run (`materialize`) over a selection of the same asset graph that
`dagster dev` shows, so the CLI and the UI execute identical code. With DAGSTER_HOME set the
runs land in that instance (visible in the UI); otherwise an ephemeral instance is used.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import dagster as dg

from assets import checks
from assets.sync import sync_assets
from connectors.http import AuthError, ConnectorError, HttpError
from pipelines.definitions import ASSET_MODULES
from pipelines.partitions import month_partition_key, monthly_partitions, yearly_partitions
from pipelines.resources import TicketSourceResource, build_resources
from pipelines.settings import API_SOURCES, UsageError
from reports.batch import customers_folder, write_customer_reports
from reports.billing import report_paths
from sla import warehouse
from sla.delivery import record_as_delivered
from sla.months import last_complete_month, local_month
from sla.policy import PolicyError, load_policy
from sla.report_data.billing import open_item_years
from sla.report_data.customer import build_customer_reports
from sla.sources import ExportError
from sla.steps import run_summary
from sla.warehouse import WarehouseBusy

ALL_ASSETS = dg.load_assets_from_modules(ASSET_MODULES)
ALL_CHECKS = list(dg.load_asset_checks_from_modules([checks]))
#: one sync asset per API source, so `sla run --source NAME` syncs before it imports
SYNC_ASSETS = sync_assets(list(API_SOURCES))
RECONCILE_STEP = "reconcile Gold billing"
BILLING_STEP = "render the Gold billing report"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class RunOutcome:
    db_path: str
    out_dir: str
    month: str
    as_of: dt.datetime
    completed: bool = True
    summary: dict = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    rendered: int = 0  # outputs (customer PDFs, billing reports, dashboard) rendered by this run
    reused: int = 0  # outputs whose fingerprint was unchanged: kept as they were

    def summary_text(self) -> str:
        s = self.summary
        lines = [f"SLA run as of {self.as_of.isoformat()} - reporting month {self.month}"]
        if s:
            def rate(met, breached):
                return f"{100 * met / (met + breached):.1f} %" if met + breached else "n/a"

            lines += [
                f"  incidents in warehouse: {s['incidents_total']}   rejected input rows: {s['rejects']}",
                *([f"  metrics: {s['metrics']}"] if s.get("metrics") else []),
                f"  {self.month}: {s['month_incidents']} incidents; first response {rate(s['fr_met'], s['fr_breached'])} "
                f"compliant ({s['fr_met']} met, {s['fr_breached']} breached); resolution "
                f"{rate(s['res_met'], s['res_breached'])} ({s['res_met']} met, {s['res_breached']} breached)",
            ]
            if s.get("gold_lines"):
                lines.append("  Gold billing lines: " + ", ".join(f"{n} {k}" for k, n in s["gold_lines"].items()))
        for w in self.warnings:
            lines.append(f"  WARNING: {w}")
        for c in self.failed_checks:
            lines.append(f"  CHECK FAILED: {c}")
        lines.append(f"  warehouse: {self.db_path}")
        lines.append(f"  reports:   {self.out_dir}")
        if self.rendered or self.reused:
            lines.append(f"    rendered {self.rendered}, reused {self.reused} (unchanged since the last run; "
                         "--force renders all)")
        lines += [f"    {o}" for o in self.outputs]
        if not self.completed:
            lines.append("  STOPPED before the reports (--strict and a blocking check failed)")
        return "\n".join(lines)


def _instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


#: errors a user can fix, re-raised as themselves so the CLI prints one clear line
USER_ERRORS = {cls.__name__: cls for cls in (ExportError, PolicyError, WarehouseBusy, FileNotFoundError)}
#: a ticket system that refuses or fails is the operator's to fix, not a crash
USER_ERRORS.update({cls.__name__: ExportError for cls in (ConnectorError, AuthError, HttpError)})


def _raise_step_failure(result: dg.ExecuteInProcessResult) -> None:
    """Re-raise the real cause of a failed step (not Dagster's wrapper); check failures pass."""
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        error = event.event_specific_data.error
        while error.cause is not None:
            error = error.cause
        if error.cls_name == "DagsterAssetCheckFailedError":
            continue
        message = error.message.strip()
        message = message.split(": ", 1)[1] if message.startswith(error.cls_name) or "Error: " in message.split(" ", 1)[0] else message
        raise USER_ERRORS.get(error.cls_name, RuntimeError)(message)


def _materialize(selection, resources, instance, partition_key: str | None = None) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [*ALL_ASSETS, *SYNC_ASSETS, *ALL_CHECKS], selection=selection, resources=resources, instance=instance,
        partition_key=partition_key, run_config=QUIET, raise_on_error=False,
    )
    if not result.success:
        _raise_step_failure(result)
    return result


def render_counts(result: dg.ExecuteInProcessResult) -> tuple[int, int] | None:
    """(rendered, reused) summed over the run's materializations that report them, else None."""
    counts = None
    for event in result.get_asset_materialization_events():
        meta = event.event_specific_data.materialization.metadata
        if "rendered" in meta and "reused" in meta:
            rendered, reused = counts or (0, 0)
            counts = (rendered + meta["rendered"].value, reused + meta["reused"].value)
    return counts


def _counts_text(counts: tuple[int, int] | None) -> str:
    return "" if counts is None else f" (rendered {counts[0]}, reused {counts[1]})"


def check_reporting_month(month: str, as_of: dt.datetime, tz) -> None:
    """Any month up to the cut-off's own month (month to date) can be reported; a later month
    has no data yet. Checked before anything is written."""
    cutoff_month = local_month(as_of, tz)
    if month > cutoff_month:
        raise UsageError(f"--month {month} is after the cut-off's month {cutoff_month} "
                         f"(cut-off {as_of.isoformat()}): nothing to report yet")
    if month_partition_key(month) not in set(monthly_partitions.get_partition_keys()):
        raise UsageError(f"--month {month}: not a month the pipeline's partitions know "
                         f"({monthly_partitions.get_first_partition_key()[:7]} to "
                         f"{monthly_partitions.get_last_partition_key()[:7]})")


def run_all(*, db_path: str, **kwargs) -> RunOutcome:
    """Import, compute and render everything of a month (`sla run`), holding the warehouse."""
    with warehouse.exclusive(db_path, "sla run"):
        return _run_all(db_path=db_path, **kwargs)


def billing_years(db_path: str, cutoff_year: int, extra: Sequence[int] = ()) -> list[int]:
    """The years whose billing report a run renders: the cut-off's, those asked for, and every
    year with an open item (`gold_open_items`, read after gold_reconciliation is computed)."""
    with warehouse.connect(db_path, read_only=False) as con:
        return sorted({cutoff_year, *extra, *open_item_years(con)})


def _run_all(*, export_dir: str, db_path: str, out_dir: str, as_of: dt.datetime, month: str | None,
             ticket_source: TicketSourceResource | None = None,
             policy_path: str | None = None, strict: bool = False, years: Sequence[int] = (),
             progress: Callable[[str], None] = print, csv_locale: str = "en", full: bool = False,
             force: bool = False) -> RunOutcome:
    policy = load_policy(policy_path)  # fail fast, with the field named, before any work
    month = month or last_complete_month(as_of, policy.calendar.tz)
    check_reporting_month(month, as_of, policy.calendar.tz)
    warehouse.connect(db_path).close()  # fail fast when another process holds the database
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    resources = build_resources(export_dir=export_dir, db_path=db_path, out_dir=out_dir,
                                as_of=as_of.isoformat(), policy_path=policy_path, ticket_source=ticket_source,
                                csv_locale=csv_locale, full_recompute=full, force=force)
    source_name = ticket_source.source().name if ticket_source is not None else None
    instance = _instance()
    outcome = RunOutcome(db_path=db_path, out_dir=out_dir, month=month, as_of=as_of)
    known_years = set(yearly_partitions.get_partition_keys())
    cutoff_year = as_of.astimezone(policy.calendar.tz).year
    asked_years = tuple(years)
    # until gold_reconciliation is computed, the years with an open item are unknown: the step
    # count shown assumes none, and grows by one per extra year after the reconciliation step
    years = [y for y in sorted({cutoff_year, *asked_years}) if str(y) in known_years]

    def billing_steps(years):
        return [(f"{BILLING_STEP} {y}", dg.AssetSelection.assets("gold_billing_report"), str(y))
                for y in years]

    sync = [] if source_name is None else [
        (f"sync {source_name}", dg.AssetSelection.assets(f"sync_{source_name}"), None)]
    steps = [
        *sync,
        ("import the export" if source_name is None else f"import from {source_name}",
         dg.AssetSelection.assets("raw_import"), None),
        ("compute per-incident SLA figures", dg.AssetSelection.assets("incident_sla"), None),
        (RECONCILE_STEP, dg.AssetSelection.assets("gold_reconciliation"), None),
        (f"aggregate {month}", dg.AssetSelection.assets("monthly_sla"), month_partition_key(month)),
        (f"render the customer PDFs of {month}", dg.AssetSelection.assets("customer_reports"),
         month_partition_key(month)),
        *billing_steps(years),
        ("write the management dashboard", dg.AssetSelection.assets("dashboard"), None),
    ]
    number = 0
    while number < len(steps):
        title, selection, partition = steps[number]
        number += 1
        progress(f"[{number}/{len(steps)}] {title} ...")
        started = time.monotonic()
        result = _materialize(selection, resources, instance, partition)
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                text = f"{evaluation.check_name}: {evaluation.description}"
                if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                    outcome.failed_checks.append(text)
                else:
                    outcome.warnings.append(text)
        counts = render_counts(result)
        if counts is not None:
            outcome.rendered += counts[0]
            outcome.reused += counts[1]
        progress(f"[{number}/{len(steps)}] {title}: done in {time.monotonic() - started:.1f}s{_counts_text(counts)}")
        if outcome.failed_checks and strict:
            outcome.completed = False
            break
        if title == RECONCILE_STEP:
            wanted = billing_years(db_path, cutoff_year, asked_years)
            outcome.warnings += [f"no billing report for {y}: not a year of the data"
                                 + (" (its open items are on page 1 of every billing report)" if y > cutoff_year else "")
                                 for y in wanted if str(y) not in known_years]
            extra = [y for y in wanted if str(y) in known_years and y not in years]
            years = sorted([*years, *extra])
            steps = [s for s in steps if s[2] is None or not s[0].startswith(BILLING_STEP)]  # then again,
            steps[-1:-1] = billing_steps(years)  # with the extra years, before the dashboard (last)

    with warehouse.connect(db_path, read_only=False) as con:
        outcome.summary = run_summary(con, month)
    if outcome.completed:
        outcome.outputs.append(_customer_pdfs_line(out_dir, month))
        outcome.outputs += [str(p) for y in years for p in report_paths(out_dir, y)]  # PDF, CSV, xlsx
        outcome.outputs.append(str(Path(out_dir) / "dashboard" / "index.html"))
    return outcome


def record_earlier_delivery(*, export_dir: str, db_path: str, out_dir: str, month: str, as_of: dt.datetime,
                            policy_path: str | None = None) -> int:
    """Import the export and compute its figures as of an earlier cut-off, then keep `month`'s figures
    as delivered at that cut-off (what `sla deliver` keeps when it sends). `sla demo` does this
    before its run, so the run's reports can show changes to an earlier report. Returns the
    customers recorded."""
    with warehouse.exclusive(db_path, "sla demo"):
        resources = build_resources(export_dir=export_dir, db_path=db_path, out_dir=out_dir,
                                    as_of=as_of.isoformat(), policy_path=policy_path)
        _materialize(dg.AssetSelection.assets("raw_import", "incident_sla"), resources, _instance())
        with warehouse.connect(db_path, read_only=False) as con:
            return record_as_delivered(con, month, as_of)


def _customer_pdfs_line(out_dir: str, month: str) -> str:
    folder = customers_folder(out_dir, month)
    return f"{folder}{os.sep} ({len(list(folder.glob('*.pdf')))} customer PDFs)"


def render_reports(*, db_path: str, **kwargs) -> str:
    with warehouse.exclusive(db_path, "sla report customers"):
        return _render_reports(db_path=db_path, **kwargs)


def _render_reports(*, db_path: str, out_dir: str, month: str, customer: str | None = None,
                   policy_path: str | None = None, progress: Callable[[str], None] = print,
                   kind: str = "customers", force: bool = False) -> str:
    """`sla report customers --month YYYY-MM [--customer ID]`: re-render from the warehouse.

    A whole month materializes the `customer_reports` partition (same code as `sla run`);
    one customer is rendered in this process by the same domain functions, leaving the
    month's other PDFs as they are. Raises NoSuchCustomer for a customer without contract
    or incidents in the month. Only reports whose fingerprint changed are rendered, unless `force`.
    """
    if kind != "customers":
        raise ValueError(f"unknown report kind {kind!r}")
    policy = load_policy(policy_path)
    warehouse.connect(db_path, read_only=True).close()  # clear error when missing or busy
    if customer is None:
        progress(f"rendering the customer PDFs of {month} ...")
        started = time.monotonic()
        resources = build_resources(export_dir=".", db_path=db_path, out_dir=out_dir,
                                    policy_path=policy_path, force=force)
        result = _materialize(dg.AssetSelection.assets("customer_reports"), resources, _instance(),
                              month_partition_key(month))
        progress(f"rendered the customer PDFs of {month} in {time.monotonic() - started:.1f}s"
                 f"{_counts_text(render_counts(result))}")
        return _customer_pdfs_line(out_dir, month)
    with warehouse.connect(db_path, read_only=True) as con:
        vms = build_customer_reports(con, policy, month, customer_id=customer)
    written = write_customer_reports(vms, out_dir, month, workers=1, prune=False, force=force)
    progress(f"{customer}: {'rendered' if written.rendered else 'unchanged, reused'}")
    return "\n".join(str(p) for p in written.paths)


def render_billing(*, db_path: str, **kwargs) -> str:
    """`sla report billing --year YYYY`: re-render the finance report from the warehouse."""
    with warehouse.exclusive(db_path, "sla report billing"):
        return _render_billing(db_path=db_path, **kwargs)


def _render_billing(*, db_path: str, out_dir: str, year: int, policy_path: str | None = None,
                    progress: Callable[[str], None] = print, csv_locale: str = "en", force: bool = False) -> str:
    load_policy(policy_path)
    if str(year) not in set(yearly_partitions.get_partition_keys()):
        raise ExportError(f"no billing year {year}: choose one from {yearly_partitions.get_first_partition_key()}"
                          f" to {yearly_partitions.get_last_partition_key()}")
    warehouse.connect(db_path, read_only=True).close()
    progress(f"rendering the Gold billing report {year} ...")
    resources = build_resources(export_dir=".", db_path=db_path, out_dir=out_dir, policy_path=policy_path,
                                csv_locale=csv_locale, force=force)
    result = _materialize(dg.AssetSelection.assets("gold_billing_report"), resources, _instance(), str(year))
    counts = render_counts(result)
    if counts is not None:
        progress(f"Gold billing report {year}: {'rendered' if counts[0] else 'unchanged, reused'}")
    return "\n".join(str(p) for p in report_paths(out_dir, year))
