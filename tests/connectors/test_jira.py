"""Jira Service Management connector against fixtures shaped from Atlassian's documented REST
responses (tests/fixtures/jira/), served over HTTP on 127.0.0.1: search pages by nextPageToken,
a changelog continued through its own endpoint, public and internal comments, organizations."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pytest

from connectors.jira import JiraSource, jira_instant
from sla.policy import load_policy
from sla.steps import compute_metrics, import_source
from tests.http_fixture_server import FixtureServer

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "jira"
POLICY = load_policy()
UTC = dt.timezone.utc
EMAIL, TOKEN = "sync@example.test", "SENTINEL-jira-token-8086"
AUTH = "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()


def _load(name):
    return json.loads((FIX / name).read_text())


def jira_route():
    pages = {None: _load("search_page1.json"), "CAEaAggD": _load("search_page2.json")}
    every = [i for p in pages.values() for i in p["issues"]]

    def route(path, query):
        if path == "/rest/api/3/search/jql":
            m = re.search(r'updated >= "(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2})"', query.get("jql", ""))
            if m:  # an incremental query: the issues updated since then, in one page
                since = dt.datetime(*map(int, m.groups()), tzinfo=UTC)
                found = [i for i in every if jira_instant(i["fields"]["updated"]) >= since]
                return 200, {"issues": found, "isLast": True}
            return 200, pages.get(query.get("nextPageToken"))
        m = re.fullmatch(r"/rest/api/3/issue/([A-Z]+-\d+)/changelog", path)
        if m:
            return 200, _load(f"changelog_{m.group(1)}_{query.get('startAt', '0')}.json")
        m = re.fullmatch(r"/rest/api/2/issue/([A-Z]+-\d+)/comment", path)
        if m:
            return 200, _load(f"comments_{m.group(1)}.json")
        return None

    return route


@pytest.fixture(scope="module")
def jira(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jira")
    contracts = folder / "contracts.csv"
    contracts.write_text("customer_id,customer_name,tier,valid_from,valid_to,account_manager\n"
                         "Acme Corp,Acme Corp,gold,2025-01-01,,am@example.test\n"
                         "Globex Inc,Globex Inc,enterprise,2025-01-01,,am@example.test\n")
    with FixtureServer(jira_route(), expect_auth=AUTH) as server:
        con = duckdb.connect(str(folder / "w.duckdb"))
        con.execute("SET TimeZone = 'UTC'")

        def source():
            return JiraSource(server.url, email=EMAIL, token=TOKEN, contracts_csv=str(contracts), jql="project = SUP")

        first = source().sync(con)
        snapshot = con.execute("SELECT * FROM src_records ORDER BY ALL").fetchall()
        second = source().sync(con)
        counts = import_source(con, source(), POLICY)
        compute_metrics(con, POLICY, dt.datetime(2026, 2, 6, tzinfo=UTC))
        yield dict(con=con, first=first, second=second, snapshot=snapshot, counts=counts, server=server)


def test_jira_paging_changelog_and_incremental(jira):
    first, second, con = jira["first"], jira["second"], jira["con"]
    assert first.pages == 2 and first.parents == {"SUP-1", "SUP-2", "SUP-3"}
    assert first.cursor == "2026-02-04T11:00:00Z"
    paths = [p for p, _ in jira["server"].requests]
    assert paths.count("/rest/api/3/issue/SUP-3/changelog") == 4  # 3 histories, 2 per page; two runs
    # the rerun asks for issues updated since the cursor minus 10 minutes: only SUP-3
    jqls = [q for p, q in jira["server"].requests if p == "/rest/api/3/search/jql"]
    assert "2026%2F02%2F04+10%3A50" in jqls[-1]
    assert second.parents == {"SUP-3"}
    assert con.execute("SELECT * FROM src_records ORDER BY ALL").fetchall() == jira["snapshot"]
    kinds = dict(con.execute("SELECT kind, count(*) FROM src_records GROUP BY kind").fetchall())
    assert kinds == {"issue": 3, "history": 7, "comment": 4}


def test_jira_mapping_and_rejects(jira):
    con = jira["con"]
    for c in jira["counts"]:
        assert c.rows_in == c.accepted + c.rejected, c
    tickets = {r[0]: r[1:] for r in con.execute("SELECT ticket_id, customer_id, severity FROM tickets").fetchall()}
    assert tickets == {"SUP-1": ("Acme Corp", 2), "SUP-3": ("Globex Inc", 4)}
    ev = con.execute("SELECT ticket_id, occurred_at, kind, actor, value FROM ticket_events "
                     "ORDER BY ticket_id, occurred_at, line").fetchall()
    assert [(t, o.strftime("%m-%d %H:%M"), k, a, v) for t, o, k, a, v in ev] == [
        ("SUP-1", "02-02 09:30", "reply", "agent", None),
        ("SUP-1", "02-02 09:31", "status", "agent", "pending"),    # Waiting for customer
        ("SUP-1", "02-03 08:15", "reply", "customer", None),
        ("SUP-1", "02-03 08:15", "status", "system", "open"),     # automation rule
        ("SUP-1", "02-03 10:00", "severity", "agent", "1"),       # the internal comment at 08:30 is no event
        ("SUP-1", "02-03 14:00", "status", "agent", "solved"),
        ("SUP-3", "02-04 09:00", "status", "agent", "open"),
        ("SUP-3", "02-04 11:00", "status", "agent", "closed"),
    ]
    rejects = dict(con.execute("SELECT source, reason FROM rejects").fetchall())
    assert rejects == {
        "jira tickets:issue/SUP-2": "customer_id is empty",
        "jira events:issue/SUP-2/comment/20010": "ticket_id 'SUP-2' is not an accepted ticket (unknown, or rejected in jira tickets)",
        "jira events:issue/SUP-3/changelog/10201/item/0":
            "status value 'Escalated Internally' is not one of new, open, pending, on_hold, solved, closed",
    }


def test_jira_incident_sla_figures(jira):
    con = jira["con"]
    cur = con.execute("SELECT * FROM incident_sla ORDER BY ticket_id")
    names = [d[0] for d in cur.description]
    rows = {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
    s1 = rows["SUP-1"]
    # Berlin: created Mon 09:00, public reply 10:30; waiting for the customer 10:31 - Tue 09:15,
    # escalated to Highest Tue 11:00, resolved Tue 15:00
    assert (s1["tier"], s1["first_response_severity"], s1["resolution_severity"]) == ("gold", 2, 1)
    assert s1["first_response_business_seconds"] == 90 * 60 and s1["first_response_met"] is True
    assert s1["resolution_business_seconds"] == (91 + 345) * 60
    assert s1["paused_business_seconds"] == (389 + 15) * 60
    assert s1["resolution_target_seconds"] == 16 * 3600 and s1["resolution_met"] is True
    s3 = rows["SUP-3"]
    # canceled before any reply: that moment is its first response and its resolution
    assert s3["first_response_at"] == s3["resolved_at"] == dt.datetime(2026, 2, 4, 11, 0, tzinfo=UTC)
    assert s3["first_response_business_seconds"] == s3["resolution_business_seconds"] == 150 * 60
    assert s3["resolution_met"] is None  # enterprise severity 4: best effort


def test_jira_secret_not_stored(jira):
    con = jira["con"]
    for table in ("src_records", "sync_cursors", "rejects", "tickets", "ticket_events"):
        text = con.execute(f"SELECT string_agg(CAST(t AS VARCHAR), '') FROM {table} t").fetchall()[0][0] or ""
        assert TOKEN not in text


def _contracts_file(tmp_path):
    path = tmp_path / "contracts.csv"
    path.write_text("customer_id,customer_name,tier,valid_from,valid_to,account_manager\n"
                    "Acme Corp,Acme Corp,gold,2025-01-01,,am@example.test\n")
    return path


def test_jira_sla_sync_command(tmp_path, monkeypatch, capsys):
    import argparse

    from pipelines.cli.sync import add_sync_parser

    parser = argparse.ArgumentParser(prog="sla")
    add_sync_parser(parser.add_subparsers(dest="command"))
    with FixtureServer(jira_route(), expect_auth=AUTH) as server:
        for k, v in {"SLA_SOURCE": "csv", "SLA_JIRA_URL": server.url, "SLA_JIRA_EMAIL": EMAIL, "SLA_JIRA_TOKEN": TOKEN,
                     "SLA_CONTRACTS_CSV": str(_contracts_file(tmp_path))}.items():
            monkeypatch.setenv(k, v)
        db = tmp_path / "w.duckdb"
        args = parser.parse_args(["sync", "--source", "jira", "--db", str(db), "--import"])
        assert args.func(args) == 0
        out = capsys.readouterr()
        assert "[sync] jira: page 2: 1 issue(s)" in out.err
        assert "jira: 2 page(s)" in out.out and "2026-02" in out.out
        assert TOKEN not in out.out + out.err
        monkeypatch.setenv("SLA_JIRA_TOKEN", "WRONG-sentinel-31")
        assert args.func(args) == 2
        err = capsys.readouterr().err
        assert "jira: the server refused access (HTTP 401)" in err and "WRONG-sentinel-31" not in err
    con = duckdb.connect(str(db))
    assert con.execute("SELECT count(*) FROM tickets").fetchall()[0][0] == 2  # SUP-2 has no organization


def test_jira_dagster_sync_asset_then_import(tmp_path, monkeypatch):
    import dagster as dg

    from assets.ingest import raw_import
    from assets.sync import build_sync_asset
    from pipelines.resources import JiraResource, SlaSettings, WarehouseResource, ticket_source_resource
    from pipelines.settings import load_settings

    with FixtureServer(jira_route(), expect_auth=AUTH) as server:
        env = {"SLA_SOURCE": "jira", "SLA_JIRA_URL": server.url, "SLA_JIRA_EMAIL": EMAIL, "SLA_JIRA_TOKEN": TOKEN,
               "SLA_CONTRACTS_CSV": str(_contracts_file(tmp_path))}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        resource = ticket_source_resource(load_settings())
        assert isinstance(resource, JiraResource) and TOKEN not in repr(resource)
        resources = {"ticket_source": resource, "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
                     "settings": SlaSettings(out_dir=str(tmp_path / "out"))}
        sync_asset = build_sync_asset("jira")
        result = dg.materialize([sync_asset], resources=resources)
        assert result.success
        meta = result.asset_materializations_for_node("sync_jira")[0].metadata
        assert meta["tickets updated"].value == 3 and json.loads(meta["changed_months"].value) == ["2026-02"]
        assert dg.materialize([raw_import], resources=resources).success
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert con.execute("SELECT ticket_id FROM tickets ORDER BY 1").fetchall() == [("SUP-1",), ("SUP-3",)]


# ---- approved SLA exclusions from a custom field (issue 17) -----------------------------------
EXCLUSION_FIELD, REASON_FIELD = "customfield_10050", "customfield_10051"


def jira_exclusion_route():
    """The fixtures with an "SLA exclusion" select field: on SUP-1 set by a team lead through the
    changelog (with a rich-text reason field), on SUP-3 already at creation (no changelog entry)."""
    base = jira_route()

    def route(path, query):
        status, body = base(path, query)
        body = json.loads(json.dumps(body))
        for issue in body.get("issues", []) if isinstance(body, dict) else []:
            if issue["key"] == "SUP-1":
                issue["fields"][EXCLUSION_FIELD] = {"self": "https://x/option/10300", "value": "Customer delay",
                                                    "id": "10300"}
                issue["fields"][REASON_FIELD] = {"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "Customer's site was down"}]}]}
                log = issue["changelog"]
                log["histories"].append({
                    "id": "10199", "created": "2026-02-03T16:00:00.000+0100",
                    "author": {"accountId": "5b10ac8d82e05b22cc7d4ef9", "displayName": "Bea Lead",
                               "accountType": "atlassian"},
                    "items": [{"field": "SLA exclusion", "fieldtype": "custom", "fieldId": EXCLUSION_FIELD,
                               "from": None, "fromString": None, "to": "10300", "toString": "Customer delay"}]})
                log["total"] = log["maxResults"] = len(log["histories"])
            if issue["key"] == "SUP-3":
                issue["fields"][EXCLUSION_FIELD] = {"value": "Resolution", "id": "10301"}
        return status, body

    return route


@pytest.mark.parametrize("configured", [False, True])
def test_jira_exclusion_field(tmp_path, configured):
    contracts = _contracts_file(tmp_path)
    with open(contracts, "a") as f:
        f.write("Globex Inc,Globex Inc,enterprise,2025-01-01,,am@example.test\n")
    options = dict(exclusion_field=EXCLUSION_FIELD, exclusion_map={"customer delay": "resolution"}) if configured else {}
    with FixtureServer(jira_exclusion_route(), expect_auth=AUTH) as server:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")

        def source(**kw):
            return JiraSource(server.url, email=EMAIL, token=TOKEN, contracts_csv=str(contracts), **options, **kw)

        source().sync(con)
        fields = [q for p, q in server.requests if p == "/rest/api/3/search/jql"][0]
        assert (EXCLUSION_FIELD in fields) is configured
        counts = import_source(con, source(), POLICY)
    for c in counts:
        assert c.rows_in == c.accepted + c.rejected, c
    compute_metrics(con, POLICY, dt.datetime(2026, 2, 6, tzinfo=UTC))
    sla = con.execute("SELECT first_response_met, resolution_met, first_response_excluded, resolution_excluded "
                      "FROM incident_sla WHERE ticket_id = 'SUP-1'").fetchall()
    if not configured:  # no field configured: nothing staged, nothing changes
        assert [c.source for c in counts] == ["jira tickets", "jira events", "contracts.csv"]
        assert sla == [(True, True, False, False)]
        assert con.execute("SELECT count(*) FROM exclusions").fetchall() == [(0,)]
        return
    assert con.execute("SELECT * FROM exclusions").fetchall() == [
        ("SUP-1", "resolution", "Customer delay", "Bea Lead", dt.datetime(2026, 2, 3, 15, 0, tzinfo=UTC), 1)]
    assert sla == [(True, None, False, True)]  # still measured, out of the SLA
    # SUP-3's value was set at creation: no changelog entry, so no approver -> rejected, naming the field
    rejects = dict(con.execute("SELECT source, reason FROM rejects WHERE source LIKE 'jira exclusions:%'").fetchall())
    assert rejects == {"jira exclusions:issue/SUP-3/field/customfield_10050":
                       "approved_by is empty; approved_at is empty"}
    # with a reason field: its text (a rich-text document) is the reason
    import_source(con, source(exclusion_reason_field=REASON_FIELD), POLICY)
    assert con.execute("SELECT reason FROM exclusions").fetchall() == [("Customer's site was down",)]


def test_exclusion_settings_reach_the_connectors(tmp_path, monkeypatch):
    from pipelines.resources import ticket_source_resource
    from pipelines.settings import ConfigError, load_settings

    env = {"SLA_JIRA_URL": "https://jira.example.test", "SLA_JIRA_EMAIL": EMAIL, "SLA_JIRA_TOKEN": TOKEN,
           "SLA_ZENDESK_SUBDOMAIN": "acme", "SLA_ZENDESK_EMAIL": EMAIL, "SLA_ZENDESK_TOKEN": TOKEN,
           "SLA_CONTRACTS_CSV": str(_contracts_file(tmp_path)),
           "SLA_JIRA_EXCLUSION_FIELD": EXCLUSION_FIELD, "SLA_JIRA_EXCLUSION_MAP": '{"Customer delay": "resolution"}',
           "SLA_JIRA_EXCLUSION_REASON_FIELD": REASON_FIELD,
           "SLA_ZENDESK_EXCLUSION_TAGS": '{"sla_exclude": "both"}', "SLA_ZENDESK_EXCLUSION_REASON": "disputed ({tag})"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    jira = ticket_source_resource(load_settings(source="jira"), as_env_var=False).source()
    assert (jira.exclusion_field, jira.exclusion_reason_field) == (EXCLUSION_FIELD, REASON_FIELD)
    assert jira.exclusion_map["customer delay"] == "resolution" and jira.exclusion_map["both"] == "both"
    zd = ticket_source_resource(load_settings(source="zendesk"), as_env_var=False).source()
    assert (zd.exclusion_tags, zd.exclusion_reason) == ({"sla_exclude": "both"}, "disputed ({tag})")
    # unset: no exclusions
    for k in ("SLA_JIRA_EXCLUSION_FIELD", "SLA_ZENDESK_EXCLUSION_TAGS"):
        monkeypatch.delenv(k)
    assert ticket_source_resource(load_settings(source="jira"), as_env_var=False).source().exclusion_field is None
    assert ticket_source_resource(load_settings(source="zendesk"), as_env_var=False).source().exclusion_tags == {}
    # a metric that does not exist is a configuration error naming the variable
    monkeypatch.setenv("SLA_ZENDESK_EXCLUSION_TAGS", '{"sla_exclude": "resolutoin"}')
    with pytest.raises(ConfigError, match="SLA_ZENDESK_EXCLUSION_TAGS"):
        load_settings(source="zendesk")
