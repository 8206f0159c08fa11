"""Ticket-system connectors as Dagster resources, chosen by configuration; the hourly sync.

`SLA_SOURCE` picks the connector: `csv` (default: the canonical export folder), `request_tracker`,
`zendesk` or `jira`. Credentials are read only as `dg.EnvVar` (Dagster keeps the variable's name
in the run config, never its value); other settings have environment variables with defaults:

| connector | required | optional |
|---|---|---|
| request_tracker | SLA_RT_URL, SLA_RT_USER + SLA_RT_PASSWORD or SLA_RT_TOKEN | SLA_RT_QUERY, SLA_RT_SEVERITY_SOURCE (custom_field/priority), SLA_RT_SEVERITY_FIELD, SLA_RT_TIMEZONE |
| zendesk | SLA_ZENDESK_URL or SLA_ZENDESK_SUBDOMAIN, SLA_ZENDESK_EMAIL, SLA_ZENDESK_TOKEN | SLA_ZENDESK_CUSTOMER_KEY (name/id/external_id), SLA_ZENDESK_HISTORY (audits/comments) |
| jira | SLA_JIRA_URL, SLA_JIRA_EMAIL, SLA_JIRA_TOKEN | SLA_JIRA_JQL, SLA_JIRA_ORG_FIELD, SLA_JIRA_CUSTOMER_KEY, SLA_JIRA_TIMEZONE |
| all API connectors | SLA_CONTRACTS_CSV (tiers live outside the ticket system) | SLA_SYNC_OVERLAP_MINUTES (10) |

Mappings (severity, status) are JSON objects in SLA_<RT|ZENDESK|JIRA>_SEVERITY_MAP and
SLA_<RT|ZENDESK|JIRA>_STATUS_MAP, merged over each connector's defaults.
"""

from __future__ import annotations

import json
import os

import dagster as dg

from connectors.base import TicketSource
from pipelines.resources import TicketSourceResource

API_SOURCES = ("request_tracker", "zendesk", "jira")
SOURCES = ("csv", *API_SOURCES)


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
        from connectors.request_tracker import RequestTrackerSource

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

    def source(self) -> TicketSource:
        from connectors.zendesk import ZendeskSource

        return ZendeskSource(
            self.url, subdomain=self.subdomain, email=self.email, token=self.token, contracts_csv=self.contracts_csv,
            history=self.history, export=self.export, customer_key=self.customer_key,
            priority_map=self.priority_map or None, status_map=self.status_map or None,
            default_severity=self.default_severity, overlap_minutes=self.overlap_minutes,
            page_size=max(self.page_size, 100))


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

    def source(self) -> TicketSource:
        from connectors.jira import JiraSource

        return JiraSource(
            self.url, email=self.email, token=self.token, contracts_csv=self.contracts_csv, jql=self.jql,
            organization_field=self.organization_field, customer_key=self.customer_key,
            priority_map=self.priority_map or None, status_map=self.status_map or None,
            overlap_minutes=self.overlap_minutes, page_size=self.page_size, jira_timezone=self.jira_timezone)


class ConnectorConfigError(ValueError):
    """SLA_SOURCE or a connector variable is wrong (one line; names variables, never values of secrets)."""


def _secret(env, name: str):
    """A credential as `dg.EnvVar` (resolved by Dagster at run time), or None when unset."""
    return dg.EnvVar(name) if env.get(name) else None


def _json_map(env, name: str) -> dict[str, str]:
    text = env.get(name)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise ConnectorConfigError(f"{name} is not a JSON object like {{\"urgent\": \"1\"}}") from None
    if not isinstance(value, dict):
        raise ConnectorConfigError(f"{name} is not a JSON object like {{\"urgent\": \"1\"}}")
    return {str(k): str(v) for k, v in value.items()}


def _need(env, *names: str) -> None:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise ConnectorConfigError(f"SLA_SOURCE={env.get('SLA_SOURCE')}: set {', '.join(missing)}")


def source_name(env=None) -> str:
    env = os.environ if env is None else env
    name = (env.get("SLA_SOURCE") or "csv").strip().lower()
    if name not in SOURCES:
        raise ConnectorConfigError(f"SLA_SOURCE={name!r}: expected one of {', '.join(SOURCES)}")
    return name


def connector_resource_from_env(env=None) -> ApiSourceResource | None:
    """The API connector chosen by SLA_SOURCE, or None for `csv` (the file connector)."""
    env = os.environ if env is None else env
    name = source_name(env)
    if name == "csv":
        return None
    _need(env, "SLA_CONTRACTS_CSV")
    common = dict(contracts_csv=env["SLA_CONTRACTS_CSV"],
                  overlap_minutes=float(env.get("SLA_SYNC_OVERLAP_MINUTES", "10")))
    if name == "request_tracker":
        _need(env, "SLA_RT_URL")
        if not env.get("SLA_RT_TOKEN"):
            _need(env, "SLA_RT_USER", "SLA_RT_PASSWORD")
        return RequestTrackerResource(
            url=env["SLA_RT_URL"], user=env.get("SLA_RT_USER"), password=_secret(env, "SLA_RT_PASSWORD"),
            token=_secret(env, "SLA_RT_TOKEN"), query=env.get("SLA_RT_QUERY", ""),
            severity_source=env.get("SLA_RT_SEVERITY_SOURCE", "custom_field"),
            severity_field=env.get("SLA_RT_SEVERITY_FIELD", "Severity"),
            severity_map=_json_map(env, "SLA_RT_SEVERITY_MAP"), status_map=_json_map(env, "SLA_RT_STATUS_MAP"),
            rt_timezone=env.get("SLA_RT_TIMEZONE", "UTC"), **common)
    if name == "zendesk":
        if not env.get("SLA_ZENDESK_URL"):
            _need(env, "SLA_ZENDESK_SUBDOMAIN")
        _need(env, "SLA_ZENDESK_EMAIL", "SLA_ZENDESK_TOKEN")
        return ZendeskResource(
            url=env.get("SLA_ZENDESK_URL"), subdomain=env.get("SLA_ZENDESK_SUBDOMAIN"),
            email=env["SLA_ZENDESK_EMAIL"], token=dg.EnvVar("SLA_ZENDESK_TOKEN"),
            history=env.get("SLA_ZENDESK_HISTORY", "audits"), customer_key=env.get("SLA_ZENDESK_CUSTOMER_KEY", "name"),
            priority_map=_json_map(env, "SLA_ZENDESK_SEVERITY_MAP"), status_map=_json_map(env, "SLA_ZENDESK_STATUS_MAP"),
            default_severity=env.get("SLA_ZENDESK_DEFAULT_SEVERITY") or None, **common)
    _need(env, "SLA_JIRA_URL", "SLA_JIRA_EMAIL", "SLA_JIRA_TOKEN")
    return JiraResource(
        url=env["SLA_JIRA_URL"], email=env["SLA_JIRA_EMAIL"], token=dg.EnvVar("SLA_JIRA_TOKEN"),
        jql=env.get("SLA_JIRA_JQL", ""), organization_field=env.get("SLA_JIRA_ORG_FIELD", "customfield_10002"),
        customer_key=env.get("SLA_JIRA_CUSTOMER_KEY", "name"),
        priority_map=_json_map(env, "SLA_JIRA_SEVERITY_MAP"), status_map=_json_map(env, "SLA_JIRA_STATUS_MAP"),
        jira_timezone=env.get("SLA_JIRA_TIMEZONE", "UTC"), **common)


def configured_api_sources(env=None) -> list[str]:
    """API sources to build sync assets for (the one SLA_SOURCE names; none for csv)."""
    name = source_name(env)
    return [name] if name in API_SOURCES else []


# ---- the hourly sync -------------------------------------------------------------------------

#: sync every configured API source, then import and recompute the unpartitioned figures
hourly_sync_job = dg.define_asset_job(
    "hourly_sync",
    selection=dg.AssetSelection.groups("sync") | dg.AssetSelection.assets("raw_import", "incident_sla",
                                                                          "gold_reconciliation"),
    description="Fetch what changed in the ticket system, import it and recompute the incident figures.",
)

hourly_sync_schedule = dg.ScheduleDefinition(
    name="hourly_sync_schedule", job=hourly_sync_job, cron_schedule="5 * * * *",
    execution_timezone="Europe/Berlin", default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every hour at :05. Start it in the UI or with `dagster schedule start` once a connector is set.",
)

#: the monthly aggregates of one month, rebuilt for the months a sync touched
refresh_month_job = dg.define_asset_job(
    "refresh_changed_month", selection=dg.AssetSelection.assets("monthly_sla"),
    description="Rebuild one month's aggregates after a sync changed incidents created in it.",
)


@dg.sensor(job=refresh_month_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="After `incident_sla` is recomputed, refresh the months that the latest sync changed.")
def changed_months_sensor(context: dg.SensorEvaluationContext):
    event = context.instance.get_latest_materialization_event(dg.AssetKey("incident_sla"))
    if event is None or str(event.storage_id) == context.cursor:
        return dg.SkipReason("no new incident_sla materialization")
    months: set[str] = set()
    for name in configured_api_sources():
        sync_event = context.instance.get_latest_materialization_event(dg.AssetKey(f"sync_{name}"))
        if sync_event is None or sync_event.asset_materialization is None:
            continue
        meta = sync_event.asset_materialization.metadata.get("changed_months")
        if meta is not None:
            months |= set(json.loads(meta.value) if isinstance(meta.value, str) else meta.value)
    context.update_cursor(str(event.storage_id))
    for month in sorted(months):
        yield dg.RunRequest(run_key=f"{event.storage_id}:{month}", partition_key=f"{month}-01")
