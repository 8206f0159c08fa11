"""Resources, bound in one place. The only module that reads the environment.

Paths have demo defaults so `dagster dev` works on a fresh checkout; secrets (added by the
connector and delivery resources) are read with `dg.EnvVar` and never logged or stored.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg

from connectors.base import TicketSource
from connectors.csv_export import CsvExportSource
from sla import warehouse
from sla.policy import DEFAULT_POLICY_PATH, Policy, load_policy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VAR = PROJECT_ROOT / "var"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file. Writes are serialised: one process at a time (see dagster.yaml)."""

    path: str

    def connect(self, read_only: bool = False):
        return warehouse.connect(self.path, read_only=read_only)


class SlaSettings(dg.ConfigurableResource):
    """Run-wide settings: the policy file, the data cut-off and where reports go."""

    policy_path: str = str(DEFAULT_POLICY_PATH)
    out_dir: str
    as_of: str | None = None  # ISO 8601 with offset; None = now

    def policy(self) -> Policy:
        return load_policy(self.policy_path)

    def cutoff(self) -> dt.datetime:
        if not self.as_of:
            return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        return parse_as_of(self.as_of)


def parse_as_of(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"--as-of {text!r} has no UTC offset; write e.g. 2026-04-01T00:00:00+02:00")
    return value.replace(microsecond=0)


class TicketSourceResource(dg.ConfigurableResource):
    """Abstract: where incident histories come from. Assets depend on this type only."""

    def source(self) -> TicketSource:  # pragma: no cover - abstract
        raise NotImplementedError


class CsvExportResource(TicketSourceResource):
    """The canonical CSV export folder (data-contract.md part A)."""

    export_dir: str

    def source(self) -> TicketSource:
        return CsvExportSource(self.export_dir)


def build_resources(*, export_dir: str, db_path: str, out_dir: str, as_of: str | None = None,
                    policy_path: str | None = None, ticket_source: TicketSourceResource | None = None,
                    smtp: "SmtpResource | None" = None) -> dict:
    return {
        "warehouse": WarehouseResource(path=db_path),
        "settings": SlaSettings(out_dir=out_dir, as_of=as_of, policy_path=policy_path or str(DEFAULT_POLICY_PATH)),
        "ticket_source": ticket_source or CsvExportResource(export_dir=export_dir),
        "smtp": smtp or SmtpResource(),
    }


def resources_from_env() -> dict:
    from pipelines.connectors import connector_resource_from_env

    env = os.environ
    return build_resources(
        export_dir=env.get("SLA_EXPORT_DIR", str(DEFAULT_VAR / "demo-export")),
        db_path=env.get("SLA_DB", str(DEFAULT_VAR / "warehouse.duckdb")),
        out_dir=env.get("SLA_OUT", str(PROJECT_ROOT / "out")),
        as_of=env.get("SLA_AS_OF") or None,
        policy_path=env.get("SLA_POLICY") or None,
        ticket_source=connector_resource_from_env(),  # None for SLA_SOURCE=csv (the default)
        smtp=smtp_from_env(),
    )


class SmtpResource(dg.ConfigurableResource):
    """Outgoing mail for report delivery. The password comes from `SLA_SMTP_PASSWORD` via dg.EnvVar."""

    host: str | None = None
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    mail_from: str = "sla-reports@localhost"
    enabled: bool = False  # the monthly schedule delivers only when SLA_DELIVER=1

    def settings(self):
        from sla.delivery import SmtpSettings

        if not self.host:
            return None
        return SmtpSettings(host=self.host, port=self.port, user=self.user or None, password=self.password or None,
                            starttls=self.starttls, mail_from=self.mail_from)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def smtp_from_env(env=None) -> SmtpResource:
    env = os.environ if env is None else env
    password = dg.EnvVar("SLA_SMTP_PASSWORD") if env.get("SLA_SMTP_PASSWORD") else None
    return SmtpResource(
        host=env.get("SLA_SMTP_HOST") or None,
        port=int(env.get("SLA_SMTP_PORT") or 25),
        user=env.get("SLA_SMTP_USER") or None,
        password=password,
        starttls=_flag(env.get("SLA_SMTP_STARTTLS")),
        mail_from=env.get("SLA_MAIL_FROM") or "sla-reports@localhost",
        enabled=_flag(env.get("SLA_DELIVER")),
    )
