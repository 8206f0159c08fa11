"""Zendesk connector against real recorded Zendesk API responses, served over HTTP on 127.0.0.1.

- `zendesk_import.bodies.json.gz` (Zammad's importer recording): time-based incremental exports of
  organizations, users and tickets (with their `next_page` / `end_time` cursors) and the comments
  of every ticket -> `history="comments"`, `export="time"`.
- zenpy's recordings (one sandbox account): 91 real tickets, their real audits (status and
  priority changes, public and private comments) and organizations -> the cursor-based export
  (`after_cursor` pages cut from the real tickets) and `history="audits"`. That account's users
  were not recorded: the five users the audits mention are given here with their roles.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import re
from collections import defaultdict

import duckdb
import pytest

from connectors.zendesk import ZendeskSource
from sla.policy import load_policy
from sla.steps import compute_metrics, import_source
from tests.helpers import shared_data
from tests.http_fixture_server import FixtureServer

ZD = shared_data("real", "zendesk-api")
POLICY = load_policy()
UTC = dt.timezone.utc
TOKEN = "SENTINEL-zendesk-token-5150"
EMAIL = "sync@example.test"
AUTH = "Basic " + base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()

pytestmark = pytest.mark.skipif(not ZD.exists(), reason="shared real data not present")


# ---- the Zammad recording: time-based exports + comments -------------------------------------
def zammad_route():
    entries = json.load(gzip.open(ZD / "zendesk_import.bodies.json.gz"))
    by_path: dict[str, dict[str, dict]] = defaultdict(dict)
    for e in entries:
        if e["status"] != 200:
            continue
        path, _, query = e["uri"].split("/api/v2/", 1)[1].partition("?")
        path = re.sub(r"\.json$", "", path)
        start = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("start_time", "")
        by_path[path][start] = e["body"]

    def route(path, query):
        path = re.sub(r"\.json$", "", path.split("/api/v2/", 1)[-1])
        bodies = by_path.get(path)
        if not bodies:
            return None
        start = query.get("start_time", "")
        if start in bodies:
            return 200, bodies[start]
        # a later start_time (our cursor minus the overlap): the recorded follow-up page
        later = [k for k in bodies if k not in ("", "1")]
        return 200, bodies[later[0] if later else next(iter(bodies))]

    return route


def _contracts(folder, rows):
    path = folder / "contracts.csv"
    path.write_text("customer_id,customer_name,tier,valid_from,valid_to,account_manager\n" +
                    "".join(f"{r},{r},{t},2015-01-01,,am@example.test\n" for r, t in rows))
    return path


@pytest.fixture(scope="module")
def zammad(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zendesk")
    contracts = _contracts(folder, [("Znuny", "gold")])
    with FixtureServer(zammad_route(), expect_auth=AUTH) as server:
        con = duckdb.connect(str(folder / "w.duckdb"))
        con.execute("SET TimeZone = 'UTC'")

        def source():
            return ZendeskSource(server.url, email=EMAIL, token=TOKEN, contracts_csv=str(contracts),
                                 export="time", history="comments")

        first = source().sync(con)
        before = con.execute("SELECT count(*) FROM src_records").fetchall()[0][0]
        second = source().sync(con)  # from the cursor minus the overlap: the recorded follow-up pages
        counts = import_source(con, source(), POLICY)
        compute_metrics(con, POLICY, dt.datetime(2022, 6, 16, tzinfo=UTC))
        yield dict(con=con, first=first, second=second, before=before, counts=counts, server=server)


def test_zendesk_recorded_time_export_and_cursor(zammad):
    con, first, second = zammad["con"], zammad["first"], zammad["second"]
    assert len(first.parents) == 144
    # the time-based export's cursor is its end_time; the rerun starts 10 minutes before it
    assert first.cursor == "2022-04-21T06:48:05Z"
    starts = [q for p, q in zammad["server"].requests if p.endswith("/incremental/tickets")]
    assert starts == ["start_time=1", f"start_time={1650523685 - 600}"]
    assert second.parents == {"143"}
    # the overlap re-fetched ticket 143 and users: upserted, nothing duplicated
    assert con.execute("SELECT count(*) FROM src_records").fetchall()[0][0] == zammad["before"]
    kinds = dict(con.execute("SELECT kind, count(*) FROM src_records GROUP BY kind").fetchall())
    assert kinds["ticket"] == 144 and kinds["user"] == 142 and kinds["organization"] == 1
    dupes = con.execute("SELECT count(*) FROM (SELECT source, kind, record_id FROM src_records GROUP BY ALL "
                        "HAVING count(*) > 1)").fetchall()[0][0]
    assert dupes == 0


def test_zendesk_recorded_mapping(zammad):
    con = zammad["con"]
    for c in zammad["counts"]:
        assert c.rows_in == c.accepted + c.rejected, c
    tickets = {r[0]: r[1:] for r in con.execute(
        "SELECT ticket_id, customer_id, severity, created_at FROM tickets").fetchall()}
    # tickets 1, 2 and 145 belong to the organisation Znuny (1 and 145 through the requester);
    # 1 is high and 2 urgent; 145 has no priority (-> rejected: severity is empty)
    assert tickets == {"1": ("Znuny", 2, dt.datetime(2015, 7, 19, 22, 39, 43, tzinfo=UTC)),
                       "2": ("Znuny", 1, dt.datetime(2015, 7, 19, 22, 44, 20, tzinfo=UTC))}
    rejects = dict(con.execute("SELECT source, reason FROM rejects WHERE source LIKE 'zendesk tickets:%'").fetchall())
    assert len(rejects) == 142
    assert rejects["zendesk tickets:ticket/145"] == "severity is empty (expected one of 1, 2, 3, 4)"
    assert rejects["zendesk tickets:ticket/4"] == ("customer_id is empty; severity is empty "
                                                   "(expected one of 1, 2, 3, 4)")
    events = con.execute("SELECT ticket_id, occurred_at, kind, actor, value FROM ticket_events "
                         "ORDER BY ticket_id, occurred_at, line").fetchall()
    # ticket 1: description (not a reply), a private note (internal), a public agent reply,
    # another private note; current status pending at its last update
    # ticket 2: customer's e-mail is the description; the agent's note is private
    assert [(t, o.strftime("%Y-%m-%d %H:%M:%S"), k, a, v) for t, o, k, a, v in events] == [
        ("1", "2015-07-19 22:41:44", "reply", "agent", None),
        ("1", "2016-05-19 10:50:54", "status", "system", "pending"),
        ("2", "2016-05-19 14:00:42", "status", "system", "pending"),
    ]
    row = con.execute("SELECT first_response_business_seconds, tier FROM incident_sla WHERE ticket_id = '1'").fetchall()
    assert row == [(0, "gold")]  # created and answered on a Sunday night: no business time elapsed


def test_zendesk_secret_not_stored(zammad):
    con = zammad["con"]
    for table in ("src_records", "sync_cursors", "rejects"):
        text = con.execute(f"SELECT string_agg(CAST(t AS VARCHAR), '') FROM {table} t").fetchall()[0][0] or ""
        assert TOKEN not in text


def test_zendesk_bad_token_names_source_not_secret(tmp_path):
    from connectors.http import AuthError

    with FixtureServer(zammad_route(), expect_auth=AUTH) as server:
        source = ZendeskSource(server.url, email=EMAIL, token="WRONG-sentinel-777", export="time", history="comments")
        with pytest.raises(AuthError) as err:
            source.sync(duckdb.connect())
    text = str(err.value)
    assert text.startswith("zendesk:") and "401" in text and "SLA_ZENDESK_TOKEN" in text
    assert "WRONG-sentinel-777" not in text and EMAIL not in text


# ---- zenpy's recordings: cursor-based export + audits ------------------------------------------
ZENPY_USERS = [  # the users the recorded tickets and audits mention, with their roles
    {"id": 6130907993114, "role": "admin", "organization_id": None, "updated_at": "2023-09-09T23:52:05Z"},
    {"id": 6130869168922, "role": "end-user", "organization_id": 6130869157658, "updated_at": "2023-09-09T23:52:05Z"},
    {"id": 6295881799834, "role": "end-user", "organization_id": 6295841670298, "updated_at": "2023-10-29T00:00:00Z"},
    {"id": 6314931549722, "role": "end-user", "organization_id": None, "updated_at": "2023-10-29T00:00:00Z"},
    {"id": 6130871991962, "role": "end-user", "organization_id": None, "updated_at": "2023-10-29T00:00:00Z"},
]


def zenpy_data():
    tickets = json.load(open(ZD / "TestTicketsPagination.test_values.bodies.json"))[2]["body"]["tickets"]
    audits = json.load(open(ZD / "TestTicketAudits.test_values.bodies.json"))[0]["body"]["audits"]
    orgs = json.load(open(ZD / "TestOrganizationCreateUpdateDelete.test_values.bodies.json"))[2]["body"]["organizations"]
    return tickets, audits, orgs


def zenpy_route(page_size: int = 25):
    tickets, audits, orgs = zenpy_data()
    tickets = sorted(tickets, key=lambda t: (t["updated_at"], t["id"]))  # the export's order
    per_ticket = defaultdict(list)
    for a in audits:
        per_ticket[str(a["ticket_id"])].append(a)

    def cursor_page(offset: int):
        page = tickets[offset: offset + page_size]
        after = base64.b64encode(json.dumps({"o": offset + page_size}).encode()).decode()
        end = offset + page_size >= len(tickets)
        return 200, {"tickets": page, "after_cursor": None if end else after,
                     "after_url": None if end else f"https://x.zendesk.com/api/v2/incremental/tickets/cursor.json?cursor={after}",
                     "before_cursor": None, "before_url": None, "end_of_stream": end}

    def route(path, query):
        path = path.split("/api/v2/", 1)[-1].removesuffix(".json")
        if path == "incremental/organizations":
            return 200, {"organizations": orgs, "count": len(orgs), "end_of_stream": True,
                         "end_time": 1707414266, "next_page": None}
        if path == "incremental/users":
            return 200, {"users": ZENPY_USERS, "count": 5, "end_of_stream": True, "end_time": 1707414266,
                         "next_page": None}
        if path == "incremental/tickets/cursor":
            if "cursor" in query:
                return cursor_page(json.loads(base64.b64decode(query["cursor"]))["o"])
            start = dt.datetime.fromtimestamp(int(query["start_time"]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            first = next((i for i, t in enumerate(tickets) if t["updated_at"] >= start), len(tickets))
            return cursor_page(first)
        m = re.fullmatch(r"tickets/(\d+)/audits", path)
        if m:
            return 200, {"audits": per_ticket.get(m.group(1), []), "meta": {"has_more": False},
                         "links": {"next": None}}
        return None

    return route


def zenpy_source(url, contracts, **kw):
    return ZendeskSource(url, email=EMAIL, token=TOKEN, contracts_csv=str(contracts), page_size=25, **kw)


def test_zendesk_cursor_export_with_audits(tmp_path):
    contracts = _contracts(tmp_path, [("Z3n Tests (09cace/1694303517)", "enterprise")])
    with FixtureServer(zenpy_route(), expect_auth=AUTH) as server:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        result = zenpy_source(server.url, contracts).sync(con)
        assert result.pages == 4 and len(result.parents) == 91
        cursor_requests = [q for p, q in server.requests if p.endswith("/incremental/tickets/cursor")]
        assert cursor_requests[0].startswith("start_time=1") and all(q.startswith("cursor=") for q in cursor_requests[1:])
        counts = import_source(con, zenpy_source(server.url, contracts), POLICY)
    for c in counts:
        assert c.rows_in == c.accepted + c.rejected, c
    # ticket 1: created open with a customer's description, priority normal set by triage (the
    # ticket's severity 3), deleted and restored by the admin, then a public reply and a private note
    t1 = con.execute("SELECT customer_id, severity FROM tickets WHERE ticket_id = '1'").fetchall()
    assert t1 == [("Z3n Tests (09cace/1694303517)", 3)]
    ev = con.execute("SELECT occurred_at, kind, actor, value FROM ticket_events WHERE ticket_id = '1' "
                     "ORDER BY occurred_at, line").fetchall()
    assert [(o.strftime("%Y-%m-%d %H:%M"), k, a, v) for o, k, a, v in ev] == [
        ("2023-09-09 23:52", "status", "agent", "open"),
        ("2023-09-19 00:25", "status", "agent", "open"),
        ("2024-02-07 00:09", "reply", "agent", None),
    ]
    # `deleted` is no canonical status: that event is rejected with the reason, not dropped
    rej = con.execute("SELECT source, reason FROM rejects WHERE source LIKE 'zendesk events:ticket/1/%'").fetchall()
    assert len(rej) == 1 and rej[0][0].startswith("zendesk events:ticket/1/audit/")
    assert "status value 'deleted' is not one of new, open, pending, on_hold, solved, closed" in rej[0][1]
    # no duplicates of keys; one row per audit
    assert con.execute("SELECT count(*) FROM src_records WHERE kind = 'audit'").fetchall()[0][0] == 91


# ---- approved SLA exclusions from ticket tags (issue 17) --------------------------------------
ADMIN = 6130907993114
EXCLUSION_AUDIT = {  # the admin adds the tag sla_exclude_response to ticket 1 (a Change of `tags`)
    "id": 6130852599999, "ticket_id": 1, "created_at": "2023-09-20T08:00:00Z", "author_id": ADMIN,
    "metadata": {"system": {}, "custom": {}}, "via": {"channel": "web"},
    "events": [{"id": 6130852599998, "type": "Change", "field_name": "tags",
                "value": ["sample", "sla_exclude_response", "support", "zendesk"],
                "previous_value": ["sample", "support", "zendesk"]}],
}


def zenpy_exclusion_route():
    """zenpy's recordings plus one audit adding a tag to ticket 1 (the ticket carries it now) and the
    admin's name. Ticket 1's recorded tags (set when it was created) include `support`."""
    base = zenpy_route()

    def route(path, query):
        status, body = base(path, query)
        body = json.loads(json.dumps(body))
        for t in body.get("tickets", []):
            if t["id"] == 1:
                t["tags"] = EXCLUSION_AUDIT["events"][0]["value"]
        for u in body.get("users", []):
            if u["id"] == ADMIN:
                u["name"] = "Ada Admin"
        if path.split("/api/v2/", 1)[-1].removesuffix(".json") == "tickets/1/audits":
            body["audits"].append(EXCLUSION_AUDIT)
        return status, body

    return route


@pytest.mark.parametrize("tags", [None, {"sla_exclude_response": "first_response", "support": "resolution"}])
def test_zendesk_exclusion_tags(tmp_path, tags):
    contracts = _contracts(tmp_path, [("Z3n Tests (09cace/1694303517)", "enterprise")])
    with FixtureServer(zenpy_exclusion_route(), expect_auth=AUTH) as server:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        zenpy_source(server.url, contracts).sync(con)
        counts = import_source(con, zenpy_source(server.url, contracts, exclusion_tags=tags), POLICY)
    for c in counts:
        assert c.rows_in == c.accepted + c.rejected, c
    compute_metrics(con, POLICY, dt.datetime(2024, 6, 1, tzinfo=UTC))
    sla = con.execute("SELECT first_response_met, resolution_met, first_response_excluded, resolution_excluded "
                      "FROM incident_sla WHERE ticket_id = '1'").fetchall()
    if tags is None:  # no tags mapped: nothing staged, nothing changes
        assert "zendesk exclusions" not in [c.source for c in counts]
        assert con.execute("SELECT count(*) FROM exclusions").fetchall() == [(0,)]
        assert sla[0][2:] == (False, False) and sla[0][:2] != (None, None), sla
        return
    # each mapped tag the ticket carries, approved by the audit that added it
    assert con.execute("SELECT ticket_id, metric, reason, approved_by, approved_at FROM exclusions "
                       "ORDER BY metric").fetchall() == [
        ("1", "first_response", "excluded in Zendesk (tag sla_exclude_response)", "Ada Admin",
         dt.datetime(2023, 9, 20, 8, 0, tzinfo=UTC)),
        ("1", "resolution", "excluded in Zendesk (tag support)", "Ada Admin",
         dt.datetime(2023, 9, 9, 23, 52, 5, tzinfo=UTC)),
    ]
    assert sla == [(None, None, True, True)]  # still measured, out of the SLA
    staged_refs = dict(con.execute("SELECT metric, source_ref FROM stg_exclusions").fetchall())
    assert staged_refs["first_response"] == "ticket/1/audit/6130852599999/event/0"
    # ticket 4043 carries a mapped tag too, but the ticket itself is rejected: so is its exclusion
    counts = import_source(con, zenpy_source(server.url, contracts, exclusion_tags={"foo": "both"},
                                             exclusion_reason="disputed ({tag})"), POLICY)
    rejects = con.execute("SELECT source, reason FROM rejects WHERE source LIKE 'zendesk exclusions:%'").fetchall()
    assert rejects == [("zendesk exclusions:ticket/4043/audit/6517443892634/event/5",
                        "ticket_id '4043' is not an accepted ticket (unknown, or rejected in zendesk tickets)")]
    assert json.loads(con.execute("SELECT raw FROM rejects WHERE source LIKE 'zendesk exclusions:%'").fetchall()[0][0])[
        "event"]["value"] == ["foo", "new", "tag"]
