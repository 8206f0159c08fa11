"""Markers by module, so the edit-test loop can skip what is slow or needs a server:

    pytest -m "not slow and not service"     the fast loop
    pytest                                   everything (the README's test command, .ci/run)

`slow`: PDF batches, demo and end-to-end runs, fuzzing, kill -9 runs, real data, browsers, and the
property tests against the independent references.
`service`: needs a server that .ci/run starts (Request Tracker, PostgreSQL).
"""

from __future__ import annotations

import pytest

SLOW = (
    "tests/connectors/test_fuzz.py",
    "tests/connectors/test_demo_export.py",
    "tests/connectors/test_servicenow_log.py",
    "tests/connectors/test_csv_export_fastpath.py",
    "tests/e2e/",
    "tests/reports/test_customer_reports.py",
    "tests/reports/test_dashboard.py",
    "tests/reports/test_report_render.py",
    "tests/reports/test_billing_report.py",
    "tests/pipelines/test_dagster.py",
    "tests/pipelines/test_cli.py",
    # property tests against the independent references (hundreds of generated histories each)
    "tests/sla/test_event_order.py::test_shuffled_rows_give_identical_tables",
    "tests/sla/test_incident_sla.py::test_matches_reference",
    "tests/sla/test_billing.py::test_matches_reference",
    "tests/sla/test_contract_terms.py::test_incident_sla_matches_reference",
    "tests/sla/test_contract_terms.py::test_billing_matches_reference",
    "tests/sla/test_incremental.py::test_incremental_equals_full_recompute",
)
SERVICE = (
    "tests/connectors/test_request_tracker.py",
    "tests/pipelines/test_dagster_postgres.py",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(SERVICE):
            item.add_marker(pytest.mark.service)
        elif item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
