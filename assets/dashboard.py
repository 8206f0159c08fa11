"""Dashboard: the management dashboard, one self-contained HTML file, rewritten on every run."""

import dagster as dg

from assets.billing import gold_reconciliation
from assets.metrics import incident_sla
from pipelines.resources import SlaSettings, WarehouseResource
from reports import fingerprint
from reports.dashboard import dashboard_path, write_dashboard
from sla.report_data.dashboard import ensure_monthly_views, load_dashboard_data


@dg.asset(group_name="reports", deps=[incident_sla, gold_reconciliation],
          description="Management dashboard (issue 5): `<out>/dashboard/index.html`, self-contained "
          "(plotly.js and CSS inline, no network), compliance trends, volume, open incidents at the "
          "cut-off, top breaching customers, quota use and Gold billing status. Rewritten only when its "
          "fingerprint (data, template, renderer) changed, or with `settings.force`.")
def dashboard(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
              settings: SlaSettings) -> dg.MaterializeResult:
    with warehouse.connect() as con:  # same open mode as the other assets of the run (one process)
        ensure_monthly_views(con)  # a fresh warehouse may not have run a monthly slice yet
        data = load_dashboard_data(con, settings.policy())
    path = dashboard_path(settings.out_dir)
    rendered = fingerprint.refresh([path], fingerprint.fingerprint(data), lambda: write_dashboard(data, settings.out_dir),
                                   root=settings.out_dir, force=settings.force)
    context.log.info(f"dashboard: {path} (reporting month {data.reporting_month}; "
                     f"{'rendered' if rendered else 'unchanged, reused'})")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)),
        "rendered": int(rendered),
        "reused": int(not rendered),
        "reporting_month": data.reporting_month,
        "as_of": data.as_of.isoformat(),
        "bytes": path.stat().st_size,
        "open_at_cutoff": data.open_summary["all"].open,
    })
