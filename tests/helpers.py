"""Build small canonical exports in tests and run the domain pipeline on them (no Dagster)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb

from connectors.csv_export import CsvExportSource
from sla.policy import load_policy
from sla.steps import compute_metrics, import_source

HEADERS = {
    "tickets.csv": ["ticket_id", "customer_id", "subject", "severity", "created_at", "channel"],
    "ticket_events.csv": ["ticket_id", "occurred_at", "kind", "actor", "value"],
    "contracts.csv": ["customer_id", "customer_name", "tier", "valid_from", "valid_to", "account_manager"],
    "invoices.csv": ["invoice_id", "customer_id", "issued_on", "period_start", "period_end", "amount_eur"],
    "exclusions.csv": ["ticket_id", "metric", "reason", "approved_by", "approved_at"],
}


def write_export(folder: Path, tickets=(), events=(), contracts=(), invoices=None, exclusions=None) -> Path:
    """Rows are tuples in header order (or dicts). Contract rows of 7 values (or dicts with `terms`)
    add the optional `terms` column."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"tickets.csv": tickets, "ticket_events.csv": events, "contracts.csv": contracts}
    if invoices is not None:
        files["invoices.csv"] = invoices
    if exclusions is not None:
        files["exclusions.csv"] = exclusions
    for name, rows in files.items():
        header = list(HEADERS[name])
        if name == "contracts.csv" and any(len(r) == 7 if not isinstance(r, dict) else "terms" in r for r in rows):
            header.append("terms")
        with (folder / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for r in rows:
                if isinstance(r, dict):
                    w.writerow([r.get(h, "") for h in header])
                else:
                    w.writerow(list(r) + [""] * (len(header) - len(r)))
    return folder


def run_domain(export_dir: Path, as_of: dt.datetime, policy=None, db: str = ":memory:"):
    """Import + metrics; returns (connection, load counts)."""
    policy = policy or load_policy()
    con = duckdb.connect(db)
    con.execute("SET TimeZone = 'UTC'")
    counts = import_source(con, CsvExportSource(export_dir), policy)
    compute_metrics(con, policy, as_of)
    return con, counts


def incident_rows(con) -> dict[str, dict]:
    cur = con.execute("SELECT * FROM incident_sla")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r)) for r in cur.fetchall()}


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data (real material); SLA_SHARED_DIR overrides where shared/ lives."""
    import os

    candidates = [Path(os.environ["SLA_SHARED_DIR"])] if os.environ.get("SLA_SHARED_DIR") else []
    candidates += [Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")]
    for base in candidates:
        path = base.joinpath("data", *parts)
        if path.exists():
            return path
    return candidates[0].joinpath("data", *parts)
