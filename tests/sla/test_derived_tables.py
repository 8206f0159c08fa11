"""The calendar and policy tables are rebuilt only when what they are built from changed, or they did;
views are remade only when their text changed or the tables under them were rebuilt.

An incremental metrics run reuses them (issue 18); these tests make sure reuse never serves stale rows.
"""

import datetime as dt

import duckdb
import yaml

from sla.calendar import BusinessCalendar, ensure_business_calendar
from sla.db import ensure_views
from sla.metrics import write_policy_tables
from sla.policy import DEFAULT_POLICY_PATH, load_policy

POLICY = load_policy()
FIRST, LAST = dt.date(2025, 1, 1), dt.date(2027, 12, 31)


def periods(calendar=POLICY.calendar):
    return [(dt.date(1, 1, 1), dt.date(9999, 12, 31), calendar)]


def calendar_rows(con):
    return con.execute("SELECT day, open_epoch, close_epoch, cum_before FROM business_calendar ORDER BY day").fetchall()


def test_calendar_is_reused_when_nothing_changed_and_rebuilt_when_its_source_did():
    con = duckdb.connect()
    buckets = ensure_business_calendar(con, periods(), FIRST, LAST)
    written = calendar_rows(con)
    oid = con.execute("SELECT table_oid FROM duckdb_tables() WHERE table_name = 'business_calendar'").fetchone()
    assert ensure_business_calendar(con, periods(), FIRST, LAST) == buckets
    assert con.execute("SELECT table_oid FROM duckdb_tables() WHERE table_name = 'business_calendar'").fetchone() == oid
    # a closed day more: rebuilt, and the day is gone from the table
    closed = POLICY.calendar.model_copy(update={"extra_closed_dates": [dt.date(2026, 3, 4)]})
    ensure_business_calendar(con, periods(closed), FIRST, LAST)
    assert dt.date(2026, 3, 4) not in {r[0] for r in calendar_rows(con)}
    # a longer range: rebuilt to the new last day
    ensure_business_calendar(con, periods(), FIRST, dt.date(2028, 12, 31))
    assert calendar_rows(con)[-1][0] == BusinessCalendar.from_policy(POLICY.calendar, FIRST, dt.date(2028, 12, 31)).last_day
    # back to the first source: the same rows as the first build
    ensure_business_calendar(con, periods(), FIRST, LAST)
    assert calendar_rows(con) == written


def test_calendar_edited_in_the_warehouse_is_rebuilt():
    con = duckdb.connect()
    ensure_business_calendar(con, periods(), FIRST, LAST)
    written = calendar_rows(con)
    con.execute("UPDATE business_calendar SET close_epoch = close_epoch + 3600 WHERE day = DATE '2026-03-04'")
    ensure_business_calendar(con, periods(), FIRST, LAST)
    assert calendar_rows(con) == written
    con.execute("DELETE FROM business_clock_buckets WHERE k = 5")
    ensure_business_calendar(con, periods(), FIRST, LAST)
    assert con.execute("SELECT count(*) FROM business_clock_buckets WHERE k = 5").fetchone()[0] == 1


def test_policy_tables_are_rewritten_when_the_policy_or_the_tables_changed(tmp_path):
    con = duckdb.connect()
    on = dt.date(2026, 3, 1)
    write_policy_tables(con, POLICY, on)
    targets = con.execute("SELECT * FROM sla_targets_versioned ORDER BY ALL").fetchall()
    oid = con.execute("SELECT table_oid FROM duckdb_tables() WHERE table_name = 'sla_targets'").fetchone()
    write_policy_tables(con, POLICY, on)  # unchanged: not rewritten
    assert con.execute("SELECT table_oid FROM duckdb_tables() WHERE table_name = 'sla_targets'").fetchone() == oid
    con.execute("UPDATE sla_targets_versioned SET first_response_seconds = 1")
    write_policy_tables(con, POLICY, on)  # edited by hand: rewritten from the policy
    assert con.execute("SELECT * FROM sla_targets_versioned ORDER BY ALL").fetchall() == targets
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["tiers"]["gold"]["monthly_incident_quota"] = 7  # the demo policy's is 4
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    write_policy_tables(con, load_policy(tmp_path / "policy.yaml"), on)
    assert con.execute("SELECT monthly_incident_quota FROM sla_tiers WHERE tier = 'gold'").fetchone()[0] == 7


def test_views_are_remade_when_their_text_changed_or_on_rebind_only():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    ensure_views(con, {"v": "SELECT a FROM t"})
    assert con.execute("SELECT * FROM v").fetchall() == [(1,)]
    # a stand-in with the same recorded text: kept unless a rebind is asked for
    key = con.execute("SELECT comment FROM duckdb_views() WHERE view_name = 'v'").fetchone()[0]
    con.execute("CREATE OR REPLACE VIEW v AS SELECT 2 AS a")
    con.execute(f"COMMENT ON VIEW v IS '{key}'")
    ensure_views(con, {"v": "SELECT a FROM t"}, rebind=False)
    assert con.execute("SELECT * FROM v").fetchall() == [(2,)]
    ensure_views(con, {"v": "SELECT a FROM t"}, rebind=True)
    assert con.execute("SELECT * FROM v").fetchall() == [(1,)]
    # new text: remade without a rebind; a missing view is made
    ensure_views(con, {"v": "SELECT a + 10 AS a FROM t", "w": "SELECT 3 AS b"}, rebind=False)
    assert con.execute("SELECT * FROM v, w").fetchall() == [(11, 3)]
