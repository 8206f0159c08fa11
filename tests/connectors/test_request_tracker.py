"""Request Tracker 5, for real: a server on 127.0.0.1 (scripts/request_tracker.sh installs and starts
it when it is not running), tickets seeded through its REST 2.0 API and its mail gateway under
libfaketime so the histories span real business days, then synced, imported and measured.

These tests never skip: when RT cannot be installed or started they fail loudly.
Run alone: `pytest -k request_tracker`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pytest
import requests

from connectors.request_tracker import RequestTrackerSource
from sla.policy import load_policy
from sla.steps import compute_metrics, import_source

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("SLA_RT_STATE", "/var/tmp/sla-rt"))
PORT = os.environ.get("SLA_RT_PORT", "8080")
URL = f"http://127.0.0.1:{PORT}"
AGENT = ("agent1", "agentpass1")
SYNC_USER, SYNC_PASSWORD = "slasync", "syncpass1"
AS_OF = dt.datetime(2026, 1, 16, 12, 0, tzinfo=dt.timezone.utc)
POLICY = load_policy()
UTC = dt.timezone.utc


def _up() -> bool:
    try:
        return requests.get(URL + "/", timeout=5).status_code < 500
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def rt_server():
    if not _up():
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "request_tracker.sh")], capture_output=True,
                              text=True, timeout=900, env={**os.environ, "SLA_RT_PORT": PORT})
        if proc.returncode != 0 or not _up():
            pytest.fail("Request Tracker could not be installed or started by scripts/request_tracker.sh "
                        f"(exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    faketime = STATE / "faketime.rc"
    if not faketime.exists():
        pytest.fail(f"{faketime} missing: rt-server was not started by scripts/request_tracker.sh (under libfaketime)")
    return URL


class Seeder:
    """Drives RT like people do: customers write e-mail, agents use the API; the clock is set first."""

    def __init__(self, url: str, tag: str):
        self.rest = url + "/REST/2.0"
        self.url = url
        self.tag = tag
        self.clock = STATE / "faketime.rc"

    def at(self, when: str) -> None:  # UTC
        self.clock.write_text(when + "\n")

    def mail(self, sender: str, subject: str, body: str, ticket: int | None = None) -> int:
        subject = f"[{self.tag}] {subject}"
        if ticket is not None:
            subject = f"Re: [rt.example.test #{ticket}] {subject}"
        msg = (f"From: {sender}\nTo: support@example.test\nSubject: {subject}\n"
               f"Message-ID: <{uuid.uuid4().hex}@example.test>\n\n{body}\n")
        proc = subprocess.run(["rt-mailgate", "--queue", "Support", "--action", "correspond", "--url", self.url + "/"],
                              input=msg, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        if ticket is not None:
            return ticket
        found = self.call("GET", "/tickets", params={
            "query": f"Queue = 'Support' AND Requestor.EmailAddress = '{sender}' AND Subject LIKE '{self.tag}'",
            "orderby": "id", "order": "DESC"})
        return int(found["items"][0]["id"])

    def call(self, method: str, path: str, body: dict | None = None, params=None) -> dict:
        r = requests.request(method, self.rest + path, auth=AGENT, json=body, params=params, timeout=30)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json()

    def create(self, requestor: str, subject: str, **fields) -> int:
        body = {"Queue": "Support", "Subject": f"[{self.tag}] {subject}", "Requestor": requestor, **fields}
        return int(self.call("POST", "/ticket", body)["id"])

    def put(self, ticket: int, body: dict) -> None:
        self.call("PUT", f"/ticket/{ticket}", body)

    def reply(self, ticket: int, text: str, status: str | None = None) -> None:
        body = {"Content": text, "ContentType": "text/plain", **({"Status": status} if status else {})}
        self.call("POST", f"/ticket/{ticket}/correspond", body)

    def comment(self, ticket: int, text: str) -> None:
        self.call("POST", f"/ticket/{ticket}/comment", {"Content": text, "ContentType": "text/plain"})


def _phase1(s: Seeder) -> dict[str, int]:
    t = {}
    # T1 Acme (gold): e-mail on Friday afternoon, triaged as severity 2, answered Monday, waiting for
    # the customer, reopened by the agent, escalated to 1, solved Wednesday.
    s.at("2026-01-09 15:30:00"); t["T1"] = s.mail("carol@acme.test", "Login fails for all users", "Nobody can log in.")
    s.at("2026-01-09 15:45:00"); s.put(t["T1"], {"CustomFields": {"Severity": "2"}, "Owner": "agent1"})
    # T2 Globex (enterprise): e-mail on Saturday
    s.at("2026-01-10 11:00:00"); t["T2"] = s.mail("dave@globex.test", "Feature request: CSV export", "Please add it.")
    s.at("2026-01-12 08:20:00"); s.reply(t["T1"], "Thanks, investigating.")
    s.at("2026-01-12 08:40:00"); s.put(t["T1"], {"Status": "stalled"})
    s.at("2026-01-12 09:00:00"); s.put(t["T2"], {"CustomFields": {"Severity": "4"}})
    s.at("2026-01-12 09:05:00"); s.reply(t["T2"], "Logged as a feature request.")
    s.at("2026-01-12 11:00:00"); s.reply(t["T2"], "Tracked in the roadmap.", status="resolved")
    s.at("2026-01-13 10:00:00")
    # T3 Initech (enterprise): opened by an agent on the phone, severity 3; only internal notes
    t["T3"] = s.create("erin@initech.test", "Slow reports", CustomFields={"Severity": "3"})
    # T4: a requestor without an Organization -> the ticket and its events are rejected
    t["T4"] = s.create("nobody@nowhere.test", "Who am I", CustomFields={"Severity": "3"})
    s.at("2026-01-13 10:30:00"); s.comment(t["T3"], "Internal: looks like the nightly job.")
    s.reply(t["T4"], "Which company are you with?")
    s.at("2026-01-13 13:00:00"); s.mail("carol@acme.test", "Login fails for all users", "Logs attached.", ticket=t["T1"])
    s.at("2026-01-13 13:05:00"); s.put(t["T1"], {"Status": "open"})
    s.at("2026-01-13 14:30:00"); s.put(t["T1"], {"CustomFields": {"Severity": "1"}})
    s.at("2026-01-14 09:00:00"); s.reply(t["T1"], "Fixed in hotfix 1.2.3.", status="resolved")
    return t


def _phase2(s: Seeder, t: dict[str, int]) -> None:
    # the customer writes again: RT reopens the solved ticket (as RT_System); solved again
    s.at("2026-01-15 07:00:00"); s.mail("carol@acme.test", "Login fails for all users", "Still broken for one user.", ticket=t["T1"])
    s.at("2026-01-15 08:30:00"); s.comment(t["T1"], "Internal: cache of one node.")
    s.at("2026-01-15 10:00:00"); s.reply(t["T1"], "Fixed that user too.", status="resolved")
    s.at("2026-01-16 11:00:00"); s.comment(t["T3"], "Internal: still looking.")


def _contracts(folder: Path) -> Path:
    path = folder / "contracts.csv"
    path.write_text("customer_id,customer_name,tier,valid_from,valid_to,account_manager\n"
                    "Acme Corp,Acme Corp,gold,2025-01-01,,am@example.test\n"
                    "Globex Inc,Globex Inc,enterprise,2025-01-01,,am@example.test\n"
                    "Initech,Initech,enterprise,2025-06-01,,am@example.test\n")
    return path


def _source(tag: str, contracts: Path, **kw) -> RequestTrackerSource:
    return RequestTrackerSource(URL, user=SYNC_USER, password=SYNC_PASSWORD, contracts_csv=str(contracts),
                                query=f"Queue = 'Support' AND Subject LIKE '{tag}'", page_size=2, **kw)


def _snapshot(con) -> list:
    return con.execute("SELECT source, kind, record_id, parent_id, updated_at, CAST(payload AS VARCHAR) "
                       "FROM src_records ORDER BY ALL").fetchall()


@pytest.fixture(scope="module")
def rt_run(rt_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rt")
    tag = "sla" + uuid.uuid4().hex[:10]
    seeder = Seeder(rt_server, tag)
    contracts = _contracts(folder)
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    ids = _phase1(seeder)
    first = _source(tag, contracts).sync(con)
    _phase2(seeder, ids)
    second = _source(tag, contracts).sync(con)
    again = _source(tag, contracts).sync(con)
    source = _source(tag, contracts)
    counts = import_source(con, source, POLICY)
    compute_metrics(con, POLICY, AS_OF)
    # one clean full sync into another warehouse must give the same raw records
    clean = duckdb.connect(str(folder / "clean.duckdb"))
    clean.execute("SET TimeZone = 'UTC'")
    _source(tag, contracts).sync(clean)
    yield dict(con=con, clean=clean, ids=ids, first=first, second=second, again=again, counts=counts, tag=tag)
    con.close()
    clean.close()


def _events(con, ticket: int) -> list[tuple]:
    return [(o.astimezone(UTC).strftime("%m-%d %H:%M"), k, a, v) for o, k, a, v in con.execute(
        "SELECT occurred_at, kind, actor, value FROM ticket_events WHERE ticket_id = ? ORDER BY occurred_at, line",
        [str(ticket)]).fetchall()]


def test_request_tracker_incremental_sync(rt_run):
    first, second, again = rt_run["first"], rt_run["second"], rt_run["again"]
    assert len(first.parents) == 4 and first.pages >= 2  # page_size 2: paging exercised
    # the second run fetched what changed since the cursor (minus the overlap): T1 and T3
    ids = rt_run["ids"]
    assert {str(ids["T1"]), str(ids["T3"])} <= second.parents
    assert str(ids["T2"]) not in second.parents
    assert second.cursor == "2026-01-16T11:00:00Z"
    assert again.cursor == second.cursor
    # incremental runs give exactly the raw records of one clean run
    assert _snapshot(rt_run["con"]) == _snapshot(rt_run["clean"])


def test_request_tracker_tickets_and_rejects(rt_run):
    con, ids = rt_run["con"], rt_run["ids"]
    tickets = {r[0]: r[1:] for r in con.execute(
        "SELECT ticket_id, customer_id, severity, created_at, channel FROM tickets").fetchall()}
    assert tickets == {
        str(ids["T1"]): ("Acme Corp", 2, dt.datetime(2026, 1, 9, 15, 30, tzinfo=UTC), "email"),
        str(ids["T2"]): ("Globex Inc", 4, dt.datetime(2026, 1, 10, 11, 0, tzinfo=UTC), "email"),
        str(ids["T3"]): ("Initech", 3, dt.datetime(2026, 1, 13, 10, 0, tzinfo=UTC), "email"),
    }
    rejects = con.execute("SELECT source, line, reason FROM rejects ORDER BY source").fetchall()
    t4 = ids["T4"]
    assert (f"request_tracker tickets:ticket/{t4}", None, "customer_id is empty") in rejects
    event_rejects = [r for r in rejects if r[0].startswith(f"request_tracker events:ticket/{t4}/txn/")]
    assert len(event_rejects) == 2  # the agent's reply and RT's new -> open
    assert all("is not an accepted ticket" in r[2] for r in event_rejects)
    assert len(rejects) == 3
    for c in rt_run["counts"]:
        assert c.rows_in == c.accepted + c.rejected
    raw = json.loads(con.execute("SELECT raw FROM rejects WHERE line IS NULL AND source LIKE '%tickets%'").fetchall()[0][0])
    assert raw["id"] == str(t4)


def test_request_tracker_histories(rt_run):
    con, ids = rt_run["con"], rt_run["ids"]
    assert _events(con, ids["T1"]) == [
        ("01-12 08:20", "reply", "agent", None),
        ("01-12 08:20", "status", "system", "open"),      # RT opens a new ticket on the first reply
        ("01-12 08:40", "status", "agent", "pending"),    # stalled = waiting for the customer
        ("01-13 13:00", "reply", "customer", None),       # does not reopen a stalled ticket
        ("01-13 13:05", "status", "agent", "open"),
        ("01-13 14:30", "severity", "agent", "1"),        # escalation
        ("01-14 09:00", "reply", "agent", None),
        ("01-14 09:00", "status", "agent", "solved"),
        ("01-15 07:00", "reply", "customer", None),
        ("01-15 07:00", "status", "system", "open"),      # reopened by the customer's mail
        ("01-15 10:00", "reply", "agent", None),          # the internal comment at 08:30 is no event
        ("01-15 10:00", "status", "agent", "solved"),
    ]
    assert _events(con, ids["T2"]) == [
        ("01-12 09:05", "reply", "agent", None),
        ("01-12 09:05", "status", "system", "open"),
        ("01-12 11:00", "reply", "agent", None),
        ("01-12 11:00", "status", "agent", "solved"),
    ]
    assert _events(con, ids["T3"]) == []  # internal comments only


def test_request_tracker_incident_sla_figures(rt_run):
    con, ids = rt_run["con"], rt_run["ids"]
    cur = con.execute("SELECT * FROM incident_sla")
    names = [d[0] for d in cur.description]
    rows = {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
    assert set(rows) == {str(ids["T1"]), str(ids["T2"]), str(ids["T3"])}
    t1 = rows[str(ids["T1"])]
    # Berlin = UTC+1. Created Fri 16:30, first reply Mon 09:20: 30 + 20 business minutes.
    assert (t1["tier"], t1["first_response_severity"], t1["resolution_severity"]) == ("gold", 2, 1)
    assert t1["first_response_at"] == dt.datetime(2026, 1, 12, 8, 20, tzinfo=UTC)
    assert t1["first_response_business_seconds"] == 50 * 60
    assert t1["first_response_target_seconds"] == 8 * 3600 and t1["first_response_met"] is True
    # running: Fri 16:30-17:00, Mon 09:00-09:40, Tue 14:05-17:00, Wed 09:00-10:00, Thu 09:00-11:00
    # paused (stalled): Mon 09:40-17:00, Tue 09:00-14:05; solved Wed 10:00 -> Thu 08:00 counts for nothing
    assert t1["resolved_at"] == dt.datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    assert t1["resolution_business_seconds"] == (30 + 40 + 175 + 60 + 120) * 60
    assert t1["paused_business_seconds"] == (440 + 305) * 60
    assert t1["resolution_target_seconds"] == 16 * 3600 and t1["resolution_met"] is True
    t2 = rows[str(ids["T2"])]
    # created Saturday: the clock starts Monday 09:00; replied 10:05, solved 12:00 (Berlin)
    assert (t2["tier"], t2["first_response_severity"]) == ("enterprise", 4)
    assert t2["first_response_business_seconds"] == 65 * 60 and t2["first_response_met"] is True
    assert t2["resolution_business_seconds"] == 3 * 3600 and t2["paused_business_seconds"] == 0
    assert t2["resolution_target_seconds"] is None and t2["resolution_met"] is None
    t3 = rows[str(ids["T3"])]
    # created Tue 11:00 Berlin, never answered (comments are internal): 24 business hours are due
    # Fri 11:00 Berlin; as of Fri 13:00 Berlin it is breached
    assert t3["first_response_at"] is None
    assert t3["first_response_due_at"] == dt.datetime(2026, 1, 16, 10, 0, tzinfo=UTC)
    assert t3["first_response_met"] is False
    assert t3["resolved_at"] is None and t3["resolution_met"] is None


def test_request_tracker_secret_never_stored(rt_run):
    con = rt_run["con"]
    for table in ("src_records", "sync_cursors", "rejects", "tickets", "ticket_events"):
        text = con.execute(f"SELECT string_agg(CAST(t AS VARCHAR), '') FROM {table} t").fetchall()[0][0] or ""
        assert SYNC_PASSWORD not in text, table


def test_request_tracker_bad_credentials_named(rt_server, tmp_path):
    from connectors.http import AuthError

    source = RequestTrackerSource(URL, user=SYNC_USER, password="wrong-Sentinel-123", contracts_csv=None)
    con = duckdb.connect()
    with pytest.raises(AuthError) as err:
        source.sync(con)
    assert "request_tracker" in str(err.value) and "SLA_RT_PASSWORD" in str(err.value)
    assert "wrong-Sentinel-123" not in str(err.value)


def test_sla_run_from_request_tracker(rt_run, tmp_path):
    """`sla run --source request_tracker`: sync, import, compute and render, no export folder,
    and RT's own RT_System (it writes SLA date changes) does not trigger the Organization warning."""
    contracts = _contracts(tmp_path)
    env = {**os.environ, "SLA_RT_URL": URL, "SLA_RT_USER": SYNC_USER, "SLA_RT_PASSWORD": SYNC_PASSWORD,
           "SLA_RT_QUERY": f"Queue = 'Support' AND Subject LIKE '{rt_run['tag']}'",
           "SLA_CONTRACTS_CSV": str(contracts), "SLA_SOURCE": "csv"}
    db, out = tmp_path / "w.duckdb", tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--source", "request_tracker",
                           "--db", str(db), "--out", str(out), "--as-of", AS_OF.isoformat(), "--month", "2026-01"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sync request_tracker" in proc.stderr and "Organization is not visible" not in proc.stderr
    assert SYNC_PASSWORD not in proc.stdout + proc.stderr
    con = duckdb.connect(str(db), read_only=True)
    ids = rt_run["ids"]
    assert {r[0] for r in con.execute("SELECT ticket_id FROM incident_sla").fetchall()} == {
        str(ids["T1"]), str(ids["T2"]), str(ids["T3"])}
    assert len(list((out / "2026-01" / "customers").glob("*.pdf"))) == 3


def test_no_organization_warning_for_rt_system(rt_run, tmp_path):
    # every customer's Organization is visible; RT_System (SLA date changes) and agents are no
    # customers, so a sync must not ask for the AdminUsers right
    messages: list[str] = []
    _source(rt_run["tag"], _contracts(tmp_path)).sync(duckdb.connect(), progress=messages.append)
    assert messages and not [m for m in messages if "Organization is not visible" in m]
