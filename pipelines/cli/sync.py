"""`sla sync [--source NAME] [--db FILE]`: fetch what changed in the ticket system, with progress.

Wired into `pipelines.cli` by `add_sync_parser(subparsers)`. The connector and its settings come from
the environment (`pipelines.settings`: SLA_SOURCE, SLA_RT_*, SLA_ZENDESK_*, SLA_JIRA_*,
SLA_CONTRACTS_CSV); `--source` overrides SLA_SOURCE. With `--import` the synced records are then
staged and validated into the warehouse's accepted tables and `rejects` (what `raw_import` does).
Exit codes: 0 done, 2 a configuration, credential or connection problem (one line on stderr).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from connectors.http import ConnectorError
from pipelines.resources import ticket_source_resource
from pipelines.settings import API_SOURCES, ConfigError, load_settings
from sla import warehouse
from sla.policy import load_policy
from sla.sources import ExportError
from sla.steps import import_source


def _progress(message: str) -> None:
    print(f"[sync] {message}", file=sys.stderr, flush=True)


def build_source(name: str | None = None):
    """The TicketSource configured in the environment (SLA_SOURCE, or `name`)."""
    settings = load_settings(**({"source": name} if name else {}))
    resource = ticket_source_resource(settings, as_env_var=False)
    if resource is None:
        raise ConfigError(f"SLA_SOURCE is csv: nothing to sync (choose one of {', '.join(API_SOURCES)} "
                          "with --source or SLA_SOURCE)")
    return resource.source()


def cmd_sync(args) -> int:
    try:
        return _sync(args)
    except (ConfigError, ConnectorError, ExportError) as exc:  # one line, never a traceback
        print(f"sla: error: {exc}", file=sys.stderr)
        return 2


def _sync(args) -> int:
    source = build_source(args.source)
    started = time.monotonic()
    with warehouse.connect(args.db) as con:
        result = source.sync(con, progress=_progress)
        if getattr(args, "do_import", False):
            for c in import_source(con, source, load_policy(args.policy) if args.policy else load_policy()):
                _progress(f"{c.source}: {c.rows_in} in = {c.accepted} accepted + {c.rejected} rejected")
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
