"""Asset jobs: the monthly reporting, the yearly Gold billing report, the hourly sync, and the
customer-report fan-out that an executor spreads over processes or machines."""

import dagster as dg

from pipelines.settings import ConfigError, load_settings

#: import, metrics and every report of one month (the yearly billing report has its own job)
monthly_reporting_job = dg.define_asset_job(
    "monthly_reporting",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets("gold_billing_report"),
    description="Import the ticket source, recompute the SLA figures and render the month's reports.",
)

gold_billing_job = dg.define_asset_job(
    "gold_billing", selection=dg.AssetSelection.assets("gold_billing_report"),
    description="Render the Gold billing report (PDF + CSV) of one year.",
)

#: sync every configured API source, then import and recompute the unpartitioned figures
hourly_sync_job = dg.define_asset_job(
    "hourly_sync",
    selection=dg.AssetSelection.groups("sync") | dg.AssetSelection.assets("raw_import", "incident_sla",
                                                                          "gold_reconciliation"),
    description="Fetch what changed in the ticket system, import it and recompute the incident figures.",
)

#: the monthly aggregates of one month, rebuilt for the months a sync touched
refresh_month_job = dg.define_asset_job(
    "refresh_changed_month", selection=dg.AssetSelection.assets("monthly_sla"),
    description="Rebuild one month's aggregates after a sync changed incidents created in it.",
)


def fanout_executor(name: str) -> dg.ExecutorDefinition:
    """The executor of `customer_reports_fanout` (SLA_FANOUT_EXECUTOR): `multiprocess` (every core
    of the machine; the default), `celery` (dagster-celery workers) or `k8s` (one Kubernetes job per
    step, dagster-k8s). The assets are the same under each; the extra packages are imported only when
    chosen (README, "Running the report fan-out on Celery or Kubernetes")."""
    if name == "multiprocess":
        return dg.multiprocess_executor
    try:
        if name == "celery":
            from dagster_celery import celery_executor

            return celery_executor
        if name == "k8s":
            from dagster_k8s import k8s_job_executor

            return k8s_job_executor
    except ImportError:
        package = {"celery": "dagster-celery", "k8s": "dagster-k8s"}[name]
        raise ConfigError(f"SLA_FANOUT_EXECUTOR={name} needs the {package} package "
                          f"(the version of dagster-postgres in requirements.lock)") from None
    raise ConfigError(f"SLA_FANOUT_EXECUTOR={name}: expected multiprocess, celery or k8s")


#: the month's customer PDFs alone, in batches run in parallel by the executor (the warehouse is only
#: read, by the first step); the other jobs keep the in-process executor (one DuckDB writer)
_FANOUT_EXECUTOR = load_settings().fanout_executor

customer_reports_fanout_job = dg.define_asset_job(
    "customer_reports_fanout", selection=dg.AssetSelection.assets("customer_reports"),
    executor_def=fanout_executor(_FANOUT_EXECUTOR),
    # multiprocess: step processes are forked from a server that imported the definitions once, instead
    # of each importing Dagster and the definitions again (seconds per step). Run config that sets
    # `execution` replaces this default, so name the start method there too.
    config={"execution": {"config": {"start_method": {"forkserver": {}}}}} if _FANOUT_EXECUTOR == "multiprocess"
    else None,
    description="Render the month's customer PDFs in batches spread over processes (multiprocess executor) or "
    "machines (SLA_FANOUT_EXECUTOR=celery|k8s); unchanged reports are kept.",
)
