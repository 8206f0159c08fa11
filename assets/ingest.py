"""Import: the ticket source staged and validated into accepted tables and `rejects`."""

import dagster as dg

from assets.sync import sync_asset_keys
from pipelines.resources import SlaSettings, TicketSourceResource, WarehouseResource
from sla.steps import import_source


@dg.asset(group_name="ingest", deps=sync_asset_keys(), description="Tickets, events, contracts and invoices accepted from the "
          "ticket source; every other row is in `rejects` with its reason.")
def raw_import(context: dg.AssetExecutionContext, ticket_source: TicketSourceResource,
               warehouse: WarehouseResource, settings: SlaSettings) -> dg.MaterializeResult:
    policy = settings.policy()
    with warehouse.connect() as con:
        counts = import_source(con, ticket_source.source(), policy)
    for c in counts:
        context.log.info(f"{c.source}: {c.rows_in} rows in = {c.accepted} accepted + {c.rejected} rejected"
                         f" ({c.duplicates_collapsed} identical duplicates counted once)")
    return dg.MaterializeResult(metadata={
        **{f"{c.source} rows in": c.rows_in for c in counts},
        **{f"{c.source} accepted": c.accepted for c in counts},
        "rejected rows": sum(c.rejected for c in counts),
    })
