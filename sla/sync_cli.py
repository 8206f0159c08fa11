"""`sla sync [--source NAME] [--db FILE]`: fetch what changed in the ticket system, with progress.

Wired into `sla.cli` by `add_sync_parser(subparsers)`. The connector and its settings come from
the environment (`pipelines.connectors`: SLA_SOURCE, SLA_RT_*, SLA_ZENDESK_*, SLA_JIRA_*,
SLA_CONTRACTS_CSV); `--source` overrides SLA_SOURCE. With `--import` the synced records are then
staged and validated into the warehouse's accepted tables and `rejects` (what `raw_import` does).
Exit codes: 0 done, 2 a configuration, credential or connection problem (one line on stderr).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


class SyncUsageError(Exception):
    pass


def _progress(message: str) -> None:
    print(f"[sync] {message}", file=sys.stderr, flush=True)


def _resolve(value):
    """A resource field that may be a `dg.EnvVar`: its value from the environment."""
    import dagster as dg

    if isinstance(value, dg.EnvVar):
        return value.get_value()
    return value


def build_source(name: str | None = None, env=None):
    """The TicketSource configured in the environment (SLA_SOURCE, or `name`)."""
    from pipelines.connectors import API_SOURCES, ConnectorConfigError, connector_resource_from_env

    env = dict(os.environ if env is None else env)
    if name:
        env["SLA_SOURCE"] = name
    try:
        resource = connector_resource_from_env(env)
    except ConnectorConfigError as exc:
        raise SyncUsageError(str(exc)) from None
    if resource is None:
        raise SyncUsageError(f"SLA_SOURCE is csv: nothing to sync (choose one of {', '.join(API_SOURCES)} "
                             "with --source or SLA_SOURCE)")
    fields = {k: _resolve(getattr(resource, k)) for k in type(resource).model_fields}
    return type(resource)(**fields).source()


def cmd_sync(args) -> int:
    from connectors.base import ExportError
    from connectors.http import ConnectorError
    from sla import warehouse

    try:
        source = build_source(args.source)
    except SyncUsageError as exc:
        print(f"sla: error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        with warehouse.connect(args.db) as con:
            result = source.sync(con, progress=_progress)
            if getattr(args, "do_import", False):
                from sla.pipeline import import_source
                from sla.policy import load_policy

                for c in import_source(con, source, load_policy(args.policy) if args.policy else load_policy()):
                    _progress(f"{c.source}: {c.rows_in} in = {c.accepted} accepted + {c.rejected} rejected")
    except (ConnectorError, ExportError) as exc:
        print(f"sla: error: {exc}", file=sys.stderr)
        return 2
    print(f"{result.summary()} in {time.monotonic() - started:.1f}s; warehouse {Path(args.db)}")
    months = result.changed_months()
    if months:
        print(f"  months with changed incidents: {', '.join(months)}")
    return 0


def add_sync_parser(subparsers, default_db: str = "var/warehouse.duckdb") -> None:
    p = subparsers.add_parser("sync", help="fetch new and changed tickets from the ticket system (incremental)")
    p.add_argument("--source", choices=["request_tracker", "zendesk", "jira"],
                   help="connector (default: SLA_SOURCE); settings and credentials come from the environment")
    p.add_argument("--db", default=default_db, help="DuckDB warehouse file")
    p.add_argument("--import", dest="do_import", action="store_true",
                   help="then stage and validate the synced records into the warehouse (tickets, events, rejects)")
    p.add_argument("--policy", help="SLA policy file for --import (default: config/sla-policy.yaml)")
    p.set_defaults(func=cmd_sync)
