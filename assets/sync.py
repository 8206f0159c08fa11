"""Sync assets: one per configured API ticket source (`sync_<name>`), upstream of `raw_import`.

Each fetches what changed since its cursor into `src_records` (connectors.sync) and reports the
local months of creation of the tickets it touched (`changed_months`), which
`pipelines.sensors.changed_months_sensor` refreshes after the figures are recomputed.
"""


import json

import dagster as dg

from pipelines.resources import SlaSettings, TicketSourceResource, WarehouseResource, configured_api_sources
from pipelines.settings import load_settings


def build_sync_asset(name: str, resource_key: str = "ticket_source") -> dg.AssetsDefinition:
    """The sync asset of one source; `resource_key` names its connector resource."""

    @dg.asset(name=f"sync_{name}", group_name="sync", required_resource_keys={resource_key, "warehouse", "settings"},
              description=f"Incremental sync of {name}: raw records and the cursor, committed page by page.")
    def _sync(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        source_resource: TicketSourceResource = getattr(context.resources, resource_key)
        warehouse: WarehouseResource = context.resources.warehouse
        settings: SlaSettings = context.resources.settings
        source = source_resource.source()
        with warehouse.connect() as con:
            result = source.sync(con, progress=context.log.info)
        months = result.changed_months(settings.policy().calendar.timezone)
        return dg.MaterializeResult(metadata={
            "pages": result.pages, "records stored": result.records, "tickets updated": len(result.parents),
            "cursor": result.cursor or "", "changed_months": json.dumps(months),
        })

    return _sync


def sync_assets(names: list[str]) -> list[dg.AssetsDefinition]:
    """The sync assets of the configured sources (SLA_SOURCE); none when it is `csv`."""
    return [build_sync_asset(n) for n in names]


def sync_asset_keys(names: list[str] | None = None) -> list[dg.AssetKey]:
    """Keys of the sync assets upstream of `raw_import` (those of SLA_SOURCE by default)."""
    names = configured_api_sources(load_settings()) if names is None else names
    return [dg.AssetKey(f"sync_{n}") for n in names]
