"""The `sla` command: drives the Dagster assets in process (`sla run`, `sla demo`, ...).

Errors a user can fix (missing folder, bad policy file, busy database, bad argument) end
with one clear line on stderr and exit code 2; a run that completes exits 0 even when rows
were rejected (they are counted in the summary and kept in `rejects`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from pathlib import Path

from connectors.demo_export import DEMO_POLICY_FILE, earlier_delivery, write_demo_export
from pipelines.cli.deliver import add_deliver_parser
from pipelines.cli.restatements import add_restatements_parser
from pipelines.cli.serve import serve
from pipelines.cli.sync import add_sync_parser
from pipelines.resources import ticket_source_resource
from pipelines.settings import ConfigError, UsageError, load_settings, parse_as_of
from sla.months import parse_month
from sla.policy import PolicyError, load_policy
from sla.report_data.customer import NoSuchCustomer
from sla.sources import ExportError
from sla.warehouse import WarehouseBusy

DEFAULT_VAR = Path("var")
FORCE_HELP = "render every report again, even those whose inputs are unchanged since they were written"




def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parse_month(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        parse_month(text)
    except ValueError:
        raise UsageError(f"--month {text!r}: expected YYYY-MM") from None
    return text


def _run_pipeline(args) -> int:
    # Imported here so `sla --help` stays fast (Dagster takes seconds to import).
    from pipelines.orchestrate import run_all

    settings = load_settings(**({"source": args.source} if getattr(args, "source", None) else {}))
    source = ticket_source_resource(settings, as_env_var=False)  # None: the export folder
    if source is None:
        if not args.export_dir:
            raise UsageError("sla run needs --export-dir (or an API source: --source NAME / SLA_SOURCE)")
        export_dir = Path(args.export_dir)
        if not export_dir.is_dir():
            raise ExportError(f"export folder not found: {export_dir}")
    try:
        as_of = parse_as_of(args.as_of) if args.as_of else dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    outcome = run_all(
        export_dir=args.export_dir or ".", ticket_source=source, db_path=args.db, out_dir=args.out, as_of=as_of,
        month=_parse_month(args.month), policy_path=args.policy, strict=args.strict, years=args.year,
        progress=_progress, csv_locale=settings.csv_locale, full=getattr(args, "full", False), force=getattr(args, "force", False),
    )
    print(outcome.summary_text())
    return 0 if outcome.completed else 1


def cmd_run(args) -> int:
    return _run_pipeline(args)


def cmd_demo(args) -> int:
    as_of = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    if args.as_of:
        as_of = parse_as_of(args.as_of)
    export_dir = Path(args.export_dir)
    _progress(f"[demo] writing a demo export ({args.customers} customers, {args.months} months, seed {args.seed}) "
              f"to {export_dir}")
    started = time.monotonic()
    counts = write_demo_export(export_dir, customers=args.customers, months=args.months, seed=args.seed,
                               as_of=as_of, incidents=args.incidents, progress=lambda m: _progress(f"[demo] {m}"))
    _progress(f"[demo] wrote {', '.join(f'{n} {k}' for k, n in counts.items())} in {time.monotonic() - started:.1f}s")
    args.as_of = as_of.isoformat()
    if not args.policy:  # the demo's policy: customer term sets and a second version (issue 17)
        args.policy = str(export_dir / DEMO_POLICY_FILE)
    # an earlier report "sent" before this run, so this month's PDFs show changes to it (issue 17)
    from pipelines.orchestrate import record_earlier_delivery

    tz = load_policy(args.policy).calendar.tz
    earlier_month, delivered_at = earlier_delivery(as_of, tz)
    _progress(f"[demo] recording the {earlier_month} reports as delivered at {delivered_at.isoformat()} "
              "(what `sla deliver` keeps), so this run can show changes to them ...")
    started = time.monotonic()
    recorded = record_earlier_delivery(export_dir=str(export_dir), db_path=args.db, out_dir=args.out,
                                       month=earlier_month, as_of=delivered_at, policy_path=args.policy)
    _progress(f"[demo] recorded {recorded} customers' {earlier_month} figures in {time.monotonic() - started:.1f}s")
    return _run_pipeline(args)


def cmd_report(args) -> int:
    if args.kind == "billing":
        if args.year is None:
            raise UsageError("sla report billing needs --year YYYY")
        from pipelines.orchestrate import render_billing

        print(render_billing(db_path=args.db, out_dir=args.out, year=args.year, policy_path=args.policy,
                             progress=_progress, csv_locale=load_settings().csv_locale, force=args.force))
        return 0
    from pipelines.orchestrate import render_reports

    if args.month is None:
        raise UsageError("sla report customers needs --month YYYY-MM")
    month = _parse_month(args.month)
    try:
        outcome = render_reports(db_path=args.db, out_dir=args.out, month=month, customer=args.customer,
                                 policy_path=args.policy, progress=_progress, kind=args.kind, force=args.force)
    except NoSuchCustomer as exc:
        raise UsageError(str(exc)) from None
    print(outcome)
    return 0


def cmd_serve(args) -> int:
    try:
        serve(args.out, args.port)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise UsageError(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    return 0


def _year(text: str) -> int:
    if not (len(text) == 4 and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: expected YYYY")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sla", description="SLA-compliance reporting pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, export_default: str | None = None):
        if export_default is None:
            p.add_argument("--export-dir", help="folder with the canonical CSV export (not with an API --source)")
            p.add_argument("--source", choices=["csv", "request_tracker", "zendesk", "jira"],
                           help="ticket source (default: SLA_SOURCE, else csv); an API source is synced first, "
                                "with settings and credentials from the environment")
        else:
            p.add_argument("--export-dir", default=export_default, help="where the demo export is written")
        p.add_argument("--db", default=str(DEFAULT_VAR / "warehouse.duckdb"), help="DuckDB warehouse file")
        p.add_argument("--out", default="out", help="folder for reports and exports")
        p.add_argument("--as-of", help="data cut-off, ISO 8601 with offset (default: now)")
        p.add_argument("--month", help="reporting month YYYY-MM (default: last complete month before the cut-off)")
        p.add_argument("--policy", help="SLA policy file (default: config/sla-policy.yaml)")
        p.add_argument("--strict", action="store_true",
                       help="stop before the reports when a blocking data check fails")
        p.add_argument("--year", type=_year, action="append", default=[],
                       help="also render the Gold billing report of this year (repeatable; the cut-off's year always is)")
        p.add_argument("--force", action="store_true", help=FORCE_HELP)

    run = sub.add_parser("run", help="import an export, compute every figure and render the month's reports")
    common(run)
    run.add_argument("--full", action="store_true",
                     help="recompute every incident's figures (default: only those whose history changed since "
                          "the last run, or that depend on the cut-off; the result is the same)")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="write a realistic demo export and run the pipeline on it")
    common(demo, export_default=str(DEFAULT_VAR / "demo-export"))
    demo.add_argument("--customers", type=int, default=300)
    demo.add_argument("--months", type=int, default=24)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--incidents", type=int, default=None, help="total incidents (for scale runs)")
    demo.set_defaults(func=cmd_demo)

    report = sub.add_parser("report", help="re-render reports from the warehouse")
    report.add_argument("kind", choices=["customers", "billing"])
    report.add_argument("--month", help="YYYY-MM (customers)")
    report.add_argument("--year", type=_year, help="YYYY (billing)")
    report.add_argument("--customer")
    report.add_argument("--db", default=str(DEFAULT_VAR / "warehouse.duckdb"))
    report.add_argument("--out", default="out")
    report.add_argument("--policy")
    report.add_argument("--force", action="store_true", help=FORCE_HELP)
    report.set_defaults(func=cmd_report)

    def month_type(text: str) -> str:
        try:
            return _parse_month(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    add_deliver_parser(sub, month_type)
    add_restatements_parser(sub, month_type, default_db=str(DEFAULT_VAR / "warehouse.duckdb"))

    add_sync_parser(sub, default_db=str(DEFAULT_VAR / "warehouse.duckdb"))

    serve = sub.add_parser("serve", help="serve the output folder (dashboard, reports) on 127.0.0.1")
    serve.add_argument("--out", default="out")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("dagster").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ExportError, PolicyError, WarehouseBusy, UsageError, ConfigError, FileNotFoundError) as exc:
        print(f"sla: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sla: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
