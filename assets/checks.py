"""Asset checks: blocking ones stop bad data before it reaches a customer PDF."""

import dagster as dg

from assets.ingest import raw_import
from assets.metrics import incident_sla
from pipelines.resources import WarehouseResource
from sla import checks


def _result(outcome: checks.CheckOutcome, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=outcome.passed, severity=severity,
                               description=outcome.description,
                               metadata={"failing rows": outcome.failing, "examples": ", ".join(outcome.examples)})


@dg.asset_check(asset=incident_sla, blocking=True, description="Every ticket id appears once.")
def unique_ticket_ids(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=False) as con:
        return _result(checks.unique_ticket_ids(con), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(asset=incident_sla, blocking=True,
                description="Every incident has a contract in force on its creation date (else it has no targets).")
def incidents_have_contract(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        return _result(checks.incidents_have_contract(con), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(asset=incident_sla, blocking=True,
                description="Events and clock segments are in time order, none before creation.")
def events_in_order(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        return _result(checks.events_in_order(con), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(asset=raw_import, blocking=False, description="No input row was rejected.")
def no_rejects(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        return _result(checks.no_rejects(con), dg.AssetCheckSeverity.WARN)
