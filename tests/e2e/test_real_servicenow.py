"""The real ServiceNow incident log through the pipeline: invariants on every incident and the
figures of a sample equal to the independent reference."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from connectors.servicenow_log import servicenow_to_canonical
from sla.policy import load_policy
from tests.helpers import incident_rows, run_domain, shared_data
from tests.reference import Contract, Event, Ticket, reference_incident_sla

SOURCE = shared_data("real", "servicenow-incident-log", "incident_event_log.csv.gz")
AS_OF = dt.datetime(2017, 3, 1, tzinfo=dt.timezone.utc)
POLICY = load_policy()

pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="shared real data not present")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("servicenow")
    servicenow_to_canonical(SOURCE, folder)
    con, counts = run_domain(folder, AS_OF)
    return folder, con, counts


def test_rows_are_conserved(warehouse):
    _, con, counts = warehouse
    for c in counts:
        assert c.rows_in == c.accepted + c.rejected, c
    tickets = con.execute("SELECT count(*) FROM tickets").fetchall()[0][0]
    assert tickets > 24_000
    assert con.execute("SELECT count(*) FROM incident_sla").fetchall()[0][0] == tickets


def test_invariants_on_every_incident(warehouse):
    _, con, _ = warehouse
    bad = con.execute("""
        SELECT count(*) FILTER (WHERE first_response_business_seconds < 0 OR resolution_business_seconds < 0
                                   OR paused_business_seconds < 0),
               count(*) FILTER (WHERE first_response_at < created_at OR resolved_at < created_at),
               count(*) FILTER (WHERE resolved_at IS NOT NULL AND resolution_business_seconds IS NULL),
               count(*) FILTER (WHERE first_response_met IS NOT NULL AND first_response_target_seconds IS NULL),
               count(*) FILTER (WHERE tier IS NULL)
        FROM incident_sla""").fetchall()[0]
    assert bad == (0, 0, 0, 0, 0)
    # quota: per customer and month exactly max(0, n - quota) incidents are over quota
    wrong = con.execute("""
        SELECT count(*) FROM (
            SELECT s.customer_id, s.month, count(*) AS n, count(*) FILTER (WHERE over_quota) AS over,
                   any_value(t.monthly_incident_quota) AS q
            FROM incident_sla s JOIN sla_tiers t USING (tier) GROUP BY ALL) WHERE over <> greatest(n - q, 0)""").fetchall()[0][0]
    assert wrong == 0
    # running + paused time never exceeds the business time from creation to resolution
    over = con.execute("""
        WITH clock AS (
            SELECT i.ticket_id, i.resolution_business_seconds + i.paused_business_seconds AS counted,
                   epoch(i.created_at)::BIGINT AS a, epoch(i.resolved_at)::BIGINT AS b
            FROM incident_sla i WHERE resolved_at IS NOT NULL
        ), ca AS (
            SELECT c.*, coalesce(k.cum_before + least(greatest(c.a - k.open_epoch, 0), k.business_seconds), 0) AS ba
            FROM clock c ASOF LEFT JOIN business_calendar k ON c.a >= k.open_epoch
        ), cb AS (
            SELECT c.*, coalesce(k.cum_before + least(greatest(c.b - k.open_epoch, 0), k.business_seconds), 0) AS bb
            FROM ca c ASOF LEFT JOIN business_calendar k ON c.b >= k.open_epoch
        )
        SELECT count(*) FILTER (WHERE counted > bb - ba), count(*) FROM cb""").fetchall()[0]
    assert over[0] == 0 and over[1] > 20_000


def test_sample_equals_reference(warehouse):
    folder, con, _ = warehouse
    got = incident_rows(con)
    sample = sorted(random.Random(2017).sample(sorted(got), 300))
    wanted = set(sample)
    tickets = [Ticket(*r) for r in con.execute(
        "SELECT ticket_id, customer_id, severity, created_at FROM tickets").fetchall() if r[0] in wanted]
    events = [Event(r[0], r[1], r[2], r[3], r[4], r[5]) for r in con.execute(
        "SELECT ticket_id, occurred_at, kind, actor, value, line FROM ticket_events").fetchall() if r[0] in wanted]
    contracts = [Contract(*r) for r in con.execute(
        "SELECT customer_id, tier, valid_from, valid_to FROM contracts").fetchall()]
    expected = reference_incident_sla(tickets, events, contracts, POLICY, AS_OF)
    columns = ["tier", "first_response_severity", "resolution_severity", "first_response_at", "resolved_at",
               "first_response_business_seconds", "first_response_target_seconds", "first_response_due_at",
               "first_response_met", "resolution_business_seconds", "paused_business_seconds",
               "resolution_target_seconds", "resolution_met"]
    mismatches = [(t, c, got[t][c], expected[t][c]) for t in sample for c in columns if got[t][c] != expected[t][c]]
    assert mismatches == []
