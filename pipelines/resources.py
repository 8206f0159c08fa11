"""Dagster resources: the warehouse, run settings, ticket sources and outgoing mail.

Resource classes only; `pipelines.definitions` binds them to the environment's settings
(`pipelines.settings`), with secrets as `dg.EnvVar` so they are never logged or stored.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from connectors.csv_export import CsvExportSource
from connectors.jira import JiraSource
from connectors.request_tracker import RequestTrackerSource
from connectors.zendesk import ZendeskSource
from pipelines.settings import API_SOURCES, ConfigError, Settings, parse_as_of
from sla import warehouse
from sla.delivery import SmtpSettings
from sla.policy import DEFAULT_POLICY_PATH, Policy, load_policy
from sla.sources import TicketSource


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
    csv_locale: str = "en"  # finance CSV dialect (SLA_CSV_LOCALE): "en" or "de"
    full_recompute: bool = False  # metrics: recompute every incident instead of the changed ones
    force: bool = False  # re-render every output, even those whose fingerprint is unchanged
    report_batch_size: int = 0  # customer PDFs per fan-out batch (0: automatic, see assets/reports.py)

    def policy(self) -> Policy:
        return load_policy(self.policy_path)

    def cutoff(self) -> dt.datetime:
        if not self.as_of:
            return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        return parse_as_of(self.as_of)


class TicketSourceResource(dg.ConfigurableResource):
    """Abstract: where incident histories come from. Assets depend on this type only."""

    def source(self) -> TicketSource:  # pragma: no cover - abstract
        raise NotImplementedError


class CsvExportResource(TicketSourceResource):
    """The canonical CSV export folder (data-contract.md part A)."""

    export_dir: str

    def source(self) -> TicketSource:
        return CsvExportSource(self.export_dir)


class ApiSourceResource(TicketSourceResource):
    """An API ticket system: synced incrementally into the warehouse, staged from there."""

    contracts_csv: str
    overlap_minutes: float = 10
    page_size: int = 50

    def source(self) -> TicketSource:  # pragma: no cover - abstract
        raise NotImplementedError


class RequestTrackerResource(ApiSourceResource):
    """Request Tracker 5 (REST 2.0). The user must see users' Organization (AdminUsers right)."""

    url: str
    user: str | None = None
    password: str | None = None
    token: str | None = None
    query: str = ""
    severity_source: str = "custom_field"
    severity_field: str = "Severity"
    severity_map: dict[str, str] = {}
    status_map: dict[str, str] = {}
    rt_timezone: str = "UTC"

    def source(self) -> TicketSource:
        return RequestTrackerSource(
            self.url, user=self.user, password=self.password, token=self.token, contracts_csv=self.contracts_csv,
            query=self.query, severity_source=self.severity_source, severity_field=self.severity_field,
            severity_map=self.severity_map or None, status_map=self.status_map or None,
            overlap_minutes=self.overlap_minutes, page_size=self.page_size, rt_timezone=self.rt_timezone)


class ZendeskResource(ApiSourceResource):
    """Zendesk Support (API v2, API token of an agent who can read users and organizations)."""

    url: str | None = None
    subdomain: str | None = None
    email: str
    token: str
    history: str = "audits"
    export: str = "cursor"
    customer_key: str = "name"
    priority_map: dict[str, str] = {}
    status_map: dict[str, str] = {}
    default_severity: str | None = None
    exclusion_tags: dict[str, str] = {}  # none: no exclusions staged
    exclusion_reason: str | None = None

    def source(self) -> TicketSource:
        return ZendeskSource(
            self.url, subdomain=self.subdomain, email=self.email, token=self.token, contracts_csv=self.contracts_csv,
            history=self.history, export=self.export, customer_key=self.customer_key,
            priority_map=self.priority_map or None, status_map=self.status_map or None,
            default_severity=self.default_severity, overlap_minutes=self.overlap_minutes,
            page_size=max(self.page_size, 100), exclusion_tags=self.exclusion_tags or None,
            exclusion_reason=self.exclusion_reason)


class JiraResource(ApiSourceResource):
    """Jira Service Management (Cloud REST API; e-mail + API token)."""

    url: str
    email: str
    token: str
    jql: str = ""
    organization_field: str = "customfield_10002"
    customer_key: str = "name"
    priority_map: dict[str, str] = {}
    status_map: dict[str, str] = {}
    jira_timezone: str = "UTC"
    exclusion_field: str | None = None  # none: no exclusions staged
    exclusion_map: dict[str, str] = {}
    exclusion_reason_field: str | None = None

    def source(self) -> TicketSource:
        return JiraSource(
            self.url, email=self.email, token=self.token, contracts_csv=self.contracts_csv, jql=self.jql,
            organization_field=self.organization_field, customer_key=self.customer_key,
            priority_map=self.priority_map or None, status_map=self.status_map or None,
            overlap_minutes=self.overlap_minutes, page_size=self.page_size, jira_timezone=self.jira_timezone,
            exclusion_field=self.exclusion_field, exclusion_map=self.exclusion_map or None,
            exclusion_reason_field=self.exclusion_reason_field)


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
        if not self.host:
            return None
        return SmtpSettings(host=self.host, port=self.port, user=self.user or None, password=self.password or None,
                            starttls=self.starttls, mail_from=self.mail_from)



def build_resources(*, export_dir: str, db_path: str, out_dir: str, as_of: str | None = None,
                    policy_path: str | None = None, ticket_source: TicketSourceResource | None = None,
                    smtp: SmtpResource | None = None, csv_locale: str = "en", full_recompute: bool = False,
                    force: bool = False, report_batch_size: int = 0) -> dict:
    return {
        "warehouse": WarehouseResource(path=db_path),
        "settings": SlaSettings(out_dir=out_dir, as_of=as_of, policy_path=policy_path or str(DEFAULT_POLICY_PATH),
                                csv_locale=csv_locale, full_recompute=full_recompute, force=force,
                                report_batch_size=report_batch_size),
        "ticket_source": ticket_source or CsvExportResource(export_dir=export_dir),
        "smtp": smtp or SmtpResource(),
    }


# ---- binding: resources from the settings --------------------------------------------------------
def _secret(value, variable: str, as_env_var: bool):
    """A credential for a resource: `dg.EnvVar` in Dagster (resolved at run time, never stored in
    the run config), the plain value for the command line; None when unset."""
    if value is None or not value.get_secret_value():
        return None
    return dg.EnvVar(variable) if as_env_var else value.get_secret_value()


def _need(settings: Settings, **values) -> None:
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(f"SLA_SOURCE={settings.source}: set {', '.join(missing)}")


def ticket_source_resource(settings: Settings, *, as_env_var: bool = True) -> TicketSourceResource | None:
    """The API connector chosen by SLA_SOURCE, or None for `csv` (the export folder)."""
    if settings.source == "csv":
        return None
    _need(settings, SLA_CONTRACTS_CSV=settings.contracts_csv)
    common = dict(contracts_csv=settings.contracts_csv, overlap_minutes=settings.sync_overlap_minutes)
    if settings.source == "request_tracker":
        rt = settings.rt
        _need(settings, SLA_RT_URL=rt.url)
        if rt.token is None:
            _need(settings, SLA_RT_USER=rt.user, SLA_RT_PASSWORD=rt.password)
        return RequestTrackerResource(
            url=rt.url, user=rt.user, password=_secret(rt.password, "SLA_RT_PASSWORD", as_env_var),
            token=_secret(rt.token, "SLA_RT_TOKEN", as_env_var), query=rt.query,
            severity_source=rt.severity_source, severity_field=rt.severity_field,
            severity_map=rt.severity_map, status_map=rt.status_map, rt_timezone=rt.timezone, **common)
    if settings.source == "zendesk":
        zd = settings.zendesk
        if not zd.url:
            _need(settings, SLA_ZENDESK_SUBDOMAIN=zd.subdomain)
        _need(settings, SLA_ZENDESK_EMAIL=zd.email, SLA_ZENDESK_TOKEN=zd.token)
        return ZendeskResource(
            url=zd.url, subdomain=zd.subdomain, email=zd.email,
            token=_secret(zd.token, "SLA_ZENDESK_TOKEN", as_env_var), history=zd.history,
            customer_key=zd.customer_key, priority_map=zd.severity_map, status_map=zd.status_map,
            default_severity=zd.default_severity, exclusion_tags=zd.exclusion_tags,
            exclusion_reason=zd.exclusion_reason, **common)
    jira = settings.jira
    _need(settings, SLA_JIRA_URL=jira.url, SLA_JIRA_EMAIL=jira.email, SLA_JIRA_TOKEN=jira.token)
    return JiraResource(
        url=jira.url, email=jira.email, token=_secret(jira.token, "SLA_JIRA_TOKEN", as_env_var), jql=jira.jql,
        organization_field=jira.org_field, customer_key=jira.customer_key, priority_map=jira.severity_map,
        status_map=jira.status_map, jira_timezone=jira.timezone, exclusion_field=jira.exclusion_field,
        exclusion_map=jira.exclusion_map, exclusion_reason_field=jira.exclusion_reason_field, **common)


def configured_api_sources(settings: Settings) -> list[str]:
    """API sources to build sync assets for (the one SLA_SOURCE names; none for csv)."""
    return [settings.source] if settings.source in API_SOURCES else []


def smtp_resource(settings: Settings, *, as_env_var: bool = True) -> SmtpResource:
    smtp = settings.smtp
    return SmtpResource(host=smtp.host, port=smtp.port, user=smtp.user,
                        password=_secret(smtp.password, "SLA_SMTP_PASSWORD", as_env_var),
                        starttls=smtp.starttls, mail_from=settings.mail_from, enabled=settings.deliver)


def resources_from_settings(settings: Settings) -> dict:
    resources = build_resources(
        export_dir=settings.export_dir, db_path=settings.db, out_dir=settings.out, as_of=settings.as_of,
        policy_path=settings.policy, ticket_source=ticket_source_resource(settings), smtp=smtp_resource(settings),
        csv_locale=settings.csv_locale, report_batch_size=settings.report_batch_size)
    if settings.io_storage:  # a folder every step process can reach (shared volume), or s3://... / gs://...
        resources["io_manager"] = dg.FilesystemIOManager(base_dir=settings.io_storage)
    return resources
