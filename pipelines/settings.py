"""All configuration from the environment, in one typed model (pydantic-settings).

The only place that reads environment variables. Every variable starts with `SLA_`; nested
sections use `_` as in the README's table (`SLA_RT_URL` is `rt.url`). Secrets are `SecretStr`
here and handed to Dagster as `dg.EnvVar` (pipelines/definitions.py), so their values never
reach run configs, logs or the warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sla.ingest import EXCLUSION_METRICS
from sla.policy import DEFAULT_POLICY_PATH

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VAR = PROJECT_ROOT / "var"

API_SOURCES = ("request_tracker", "zendesk", "jira")
SOURCES = ("csv", *API_SOURCES)


class ConfigError(ValueError):
    """A setting is missing or wrong (one line; names variables, never values of secrets)."""


def _json_map(value) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError('not a JSON object like {"urgent": "1"}') from None
    if not isinstance(value, dict):
        raise ValueError('not a JSON object like {"urgent": "1"}')
    return {str(k): str(v) for k, v in value.items()}


def _exclusion_map(value) -> dict[str, str]:
    """A JSON map {name in the ticket system: first_response | resolution | both}."""
    mapping = _json_map(value)
    for key, metric in mapping.items():
        if metric.strip().lower() not in EXCLUSION_METRICS:
            raise ValueError(f"{key!r} maps to {metric!r}, expected one of {', '.join(EXCLUSION_METRICS)}")
    return mapping


class UsageError(ValueError):
    """A command-line argument that cannot work (one line, exit code 2)."""


class _Section(BaseModel):
    model_config = {"extra": "ignore"}


class RtSettings(_Section):
    url: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    query: str = ""
    severity_source: Literal["custom_field", "priority"] = "custom_field"
    severity_field: str = "Severity"
    severity_map: dict[str, str] = {}
    status_map: dict[str, str] = {}
    timezone: str = "UTC"

    _maps = field_validator("severity_map", "status_map", mode="before")(_json_map)


class ZendeskSettings(_Section):
    url: str | None = None
    subdomain: str | None = None
    email: str | None = None
    token: SecretStr | None = None
    history: Literal["audits", "comments"] = "audits"
    customer_key: Literal["name", "id", "external_id"] = "name"
    severity_map: dict[str, str] = {}
    status_map: dict[str, str] = {}
    default_severity: str | None = None
    exclusion_tags: dict[str, str] = {}  # tag -> first_response / resolution / both
    exclusion_reason: str | None = None  # reason text; {tag} and {metric} are filled in

    _maps = field_validator("severity_map", "status_map", mode="before")(_json_map)
    _exclusions = field_validator("exclusion_tags", mode="before")(_exclusion_map)


class JiraSettings(_Section):
    url: str | None = None
    email: str | None = None
    token: SecretStr | None = None
    jql: str = ""
    org_field: str = "customfield_10002"
    customer_key: str = "name"
    severity_map: dict[str, str] = {}
    status_map: dict[str, str] = {}
    timezone: str = "UTC"
    exclusion_field: str | None = None  # custom field naming the exclusion, e.g. customfield_10050
    exclusion_map: dict[str, str] = {}  # its value -> first_response / resolution / both
    exclusion_reason_field: str | None = None  # a text field with the reason (else the value's text)

    _maps = field_validator("severity_map", "status_map", mode="before")(_json_map)
    _exclusions = field_validator("exclusion_map", mode="before")(_exclusion_map)


class SmtpSettingsModel(_Section):
    host: str | None = None
    port: int = 25
    user: str | None = None
    password: SecretStr | None = None
    starttls: bool = False


class Settings(BaseSettings):
    """Every `SLA_*` variable. Paths default to the demo layout of a fresh checkout."""

    model_config = SettingsConfigDict(env_prefix="SLA_", env_nested_delimiter="_", env_nested_max_split=1,
                                      extra="ignore", case_sensitive=False)

    source: Literal["csv", "request_tracker", "zendesk", "jira"] = "csv"
    export_dir: str = str(DEFAULT_VAR / "demo-export")
    db: str = str(DEFAULT_VAR / "warehouse.duckdb")
    out: str = str(PROJECT_ROOT / "out")
    as_of: str | None = None
    policy: str = str(DEFAULT_POLICY_PATH)
    contracts_csv: str | None = None
    sync_overlap_minutes: float = Field(10, ge=0)
    deliver: bool = False
    mail_from: str = "sla-reports@localhost"
    csv_locale: Literal["en", "de"] = "en"  # finance CSV dialect: en = , and 1499.00; de = ; and 1499,00
    report_batch_size: int = Field(0, ge=0)  # customer PDFs per fan-out batch; 0 = automatic
    fanout_executor: Literal["multiprocess", "celery", "k8s"] = "multiprocess"  # customer_reports_fanout job
    io_storage: str | None = None  # where op outputs (the fan-out's batches) go; None: $DAGSTER_HOME/storage
    rt: RtSettings = RtSettings()
    zendesk: ZendeskSettings = ZendeskSettings()
    jira: JiraSettings = JiraSettings()
    smtp: SmtpSettingsModel = SmtpSettingsModel()

    @field_validator("source", "csv_locale", "fanout_executor", mode="before")
    @classmethod
    def _lower(cls, v):
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("as_of", "policy", "contracts_csv", "io_storage", mode="before")
    @classmethod
    def _empty_is_unset(cls, v, info):
        if v == "":
            return cls.model_fields[info.field_name].default
        return v


def parse_as_of(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"--as-of {text!r} has no UTC offset; write e.g. 2026-04-01T00:00:00+02:00")
    return value.replace(microsecond=0)


def load_settings(**overrides) -> Settings:
    """Settings from the environment (overrides win), with a one-line ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "SLA_" + "_".join(str(p) for p in err["loc"]).upper()
        raise ConfigError(f"{name}: {err['msg']}") from None
