"""Sensors: refresh the months a sync changed, once the incident figures are recomputed."""

import json

import dagster as dg

from pipelines.jobs import refresh_month_job
from pipelines.resources import configured_api_sources
from pipelines.settings import load_settings


@dg.sensor(job=refresh_month_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="After `incident_sla` is recomputed, refresh the months that the latest sync changed.")
def changed_months_sensor(context: dg.SensorEvaluationContext):
    event = context.instance.get_latest_materialization_event(dg.AssetKey("incident_sla"))
    if event is None or str(event.storage_id) == context.cursor:
        return dg.SkipReason("no new incident_sla materialization")
    months: set[str] = set()
    for name in configured_api_sources(load_settings()):
        sync_event = context.instance.get_latest_materialization_event(dg.AssetKey(f"sync_{name}"))
        if sync_event is None or sync_event.asset_materialization is None:
            continue
        meta = sync_event.asset_materialization.metadata.get("changed_months")
        if meta is not None:
            months |= set(json.loads(meta.value) if isinstance(meta.value, str) else meta.value)
    context.update_cursor(str(event.storage_id))
    for month in sorted(months):
        yield dg.RunRequest(run_key=f"{event.storage_id}:{month}", partition_key=f"{month}-01")
