"""Data-quality checks over the warehouse (pure SQL; Dagster wraps them as asset checks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    failing: int
    examples: list[str]
    description: str


def _outcome(con, sql: str, ok: str, bad: str, shown: int = 5) -> CheckOutcome:
    rows = [str(r[0]) for r in con.execute(sql).fetchall()]
    n = len(rows)
    examples = "; ".join(rows[:shown]) + ("; ..." if n > shown else "")
    return CheckOutcome(n == 0, n, rows[:10], ok if n == 0 else bad.format(n=n, examples=examples))


def unique_ticket_ids(con) -> CheckOutcome:
    return _outcome(con, "SELECT ticket_id FROM incident_sla GROUP BY ticket_id HAVING count(*) > 1 ORDER BY 1",
                    "every ticket id appears once", "{n} ticket id(s) appear more than once: {examples}")


def incidents_have_contract(con) -> CheckOutcome:
    return _outcome(
        con, "SELECT ticket_id || ' (' || customer_id || ')' FROM incident_sla WHERE tier IS NULL ORDER BY ticket_id",
        "every incident has a contract",
        "{n} incident(s) without a contract in force on their creation date (no targets): {examples}")


def events_in_order(con) -> CheckOutcome:
    return _outcome(
        con,
        """
        SELECT DISTINCT ticket_id FROM (
            SELECT e.ticket_id FROM ticket_events e JOIN tickets t USING (ticket_id) WHERE e.occurred_at < t.created_at
            UNION ALL
            SELECT ticket_id FROM incident_sla
            WHERE first_response_at < created_at OR resolved_at < created_at
            UNION ALL
            SELECT ticket_id FROM (
                SELECT ticket_id, start_at, end_at,
                       lag(end_at) OVER (PARTITION BY ticket_id ORDER BY seq) AS previous_end
                FROM incident_clock_segments)
            WHERE end_at < start_at OR (previous_end IS NOT NULL AND previous_end <> start_at)
        ) ORDER BY 1
        """,
        "all events and clock segments are in time order",
        "{n} incident(s) with events or clock segments out of order: {examples}")


def no_rejects(con) -> CheckOutcome:
    return _outcome(con, "SELECT source || ' line ' || coalesce(CAST(line AS VARCHAR), '-') || ': ' || reason "
                         "FROM rejects ORDER BY source, line",
                    "no input row was rejected", "{n} input row(s) rejected (all in the rejects table), e.g. {examples}",
                    shown=2)
