"""Management dashboard (issue 5): the queries, the page, the Dagster asset, `serve`, and the page in a
real headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser download).

One small demo (30 customers, 6 months, fixed cut-off) runs through the real pipeline once per module;
one customer gets a hostile name to prove it is escaped everywhere it appears.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections import Counter
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.dashboard import dashboard as dashboard_asset
from connectors.csv_export import CsvExportSource
from connectors.demo_export import write_demo_export
from pipelines.cli.serve import make_server
from pipelines.resources import build_resources
from reports import dashboard as dash
from reports import filters
from sla import warehouse
from sla.billing import compute_gold_reconciliation
from sla.policy import load_policy
from sla.report_data.dashboard import load_dashboard_data
from sla.steps import compute_metrics, compute_month, import_source, transaction

AS_OF = dt.datetime(2026, 4, 2, 12, tzinfo=dt.timezone.utc)
HOSTILE = '</script><script>window.__pwned=1</script><img src="https://evil.example/x.png" onerror="window.__pwned=2">'
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Demo export -> warehouse (import, metrics, billing, one month); one hostile customer name."""
    root = tmp_path_factory.mktemp("dashboard")
    export = root / "export"
    write_demo_export(export, customers=30, months=6, seed=11, as_of=AS_OF, bad_rows=False)
    contracts = export / "contracts.csv"
    with contracts.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with (export / "tickets.csv").open(newline="", encoding="utf-8") as fh:
        counts = Counter(r["customer_id"] for r in csv.DictReader(fh))
    hostile_id = counts.most_common(1)[0][0]  # busiest customer: in the tables and the chart labels
    for row in rows[1:]:
        if row[0] == hostile_id:
            row[1] = HOSTILE
    with contracts.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    db, out = root / "wh.duckdb", root / "out"
    # the warehouse steps of `sla run` (the same domain functions the assets call), without the PDFs
    policy = load_policy()
    with warehouse.connect(db) as con:
        import_source(con, CsvExportSource(export), policy)
        compute_metrics(con, policy, AS_OF)
        with transaction(con):
            compute_gold_reconciliation(con, policy, AS_OF)
        compute_month(con, "2026-03")
    return {"root": root, "export": export, "db": db, "out": out, "hostile_id": hostile_id}


@pytest.fixture(scope="module")
def data(built):
    with duckdb.connect(str(built["db"]), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return load_dashboard_data(con, load_policy())


@pytest.fixture(scope="module")
def page_path(built):
    """The dashboard written by the Dagster asset itself (direct materialisation of `dashboard`)."""
    resources = build_resources(export_dir=str(built["export"]), db_path=str(built["db"]),
                                out_dir=str(built["out"]), as_of=AS_OF.isoformat())
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([dashboard_asset], resources=resources, instance=instance,
                                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})
    assert result.success
    meta = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    path = built["out"] / "dashboard" / "index.html"
    assert meta["path"].value == str(path) and meta["reporting_month"].value == "2026-03"
    return path


def test_asset_works_before_any_monthly_slice(built, tmp_path):
    """The dashboard depends on incident_sla and gold_reconciliation only: no monthly views yet is fine."""
    db = tmp_path / "fresh.duckdb"
    db.write_bytes(built["db"].read_bytes())
    with duckdb.connect(str(db)) as con:
        con.execute("DROP VIEW monthly_sla_view")
        con.execute("DROP VIEW monthly_quota_view")
    with duckdb.connect(str(db), read_only=True) as con, pytest.raises(ValueError, match="monthly_sla_view"):
        load_dashboard_data(con, load_policy())
    resources = build_resources(export_dir=str(built["export"]), db_path=str(db), out_dir=str(tmp_path / "out"),
                                as_of=AS_OF.isoformat())
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([dashboard_asset], resources=resources, instance=instance,
                                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})
    assert result.success and (tmp_path / "out" / "dashboard" / "index.html").is_file()


def _q(db, sql, params=()):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


# --------------------------------------------------------------------------- queries
def test_queries_agree_with_the_warehouse(built, data):
    db = built["db"]
    assert data.reporting_month == "2026-03" and data.previous_month == "2026-02"
    assert data.months[-1] == "2026-03" and data.breach_window == ["2026-01", "2026-02", "2026-03"]
    # the materialised monthly table (what the PDFs read) and the dashboard agree for the month
    (met, breached), = _q(db, "SELECT sum(met), sum(breached) FROM monthly_sla "
                              "WHERE month = '2026-03' AND metric = 'first_response'")
    row = data.compliance[(data.compliance.month == "2026-03") & (data.compliance.tier == "all")
                          & (data.compliance.metric == "first_response")].iloc[0]
    assert (row.met, row.breached) == (met, breached) and row.rate == pytest.approx(met / (met + breached))
    # volume: every incident of every month exactly once under 'all', and once per tier or 'no contract'
    (total,), = _q(db, "SELECT count(*) FROM incident_sla WHERE month BETWEEN ? AND ?",
                   [data.months[0], data.months[-1]])
    assert data.volume[data.volume.tier == "all"].incidents.sum() == total
    assert data.volume[data.volume.tier != "all"].incidents.sum() == total == data.volume_tier.incidents.sum()
    # open incidents: those without a resolution instant; risk states partition them
    (open_n,), = _q(db, "SELECT count(*) FROM incident_sla WHERE resolved_at IS NULL")
    assert data.open_summary["all"].open == open_n == len(data.open_incidents)
    assert data.open_by_age[data.open_by_age.tier == "all"].incidents.sum() == open_n
    (breached_open,), = _q(db, "SELECT count(*) FROM incident_sla WHERE resolved_at IS NULL AND "
                               "(resolution_met = false OR (first_response_at IS NULL AND first_response_met = false))")
    assert data.open_summary["all"].breached == breached_open
    # money stays exact
    assert all(isinstance(v, Decimal) for v in data.gold_reconciliation.difference_eur)
    (diff,), = _q(db, "SELECT coalesce(sum(difference_eur), 0) FROM gold_reconciliation")
    assert data.gold_summary.difference_eur == diff


def test_due_soon_means_at_most_one_business_day_left(data):
    bds = data.business_day_seconds
    for r in data.open_incidents.itertuples():
        remaining = [v for v, s in ((r.fr_remaining, r.fr_state), (r.res_remaining, r.res_state))
                     if isinstance(s, str) and s != "breached"]
        if r.risk == "due_soon":
            assert min(int(v) for v in remaining) <= bds and r.due_at == r.due_at  # due instant known
        if r.risk == "on_track":
            assert all(int(v) > bds for v in remaining)


def test_top_breaches_rank_customers_of_the_last_three_months(built, data):
    rows = _q(built["db"], """
        SELECT customer_id, count(*) FILTER (WHERE NOT first_response_met) + count(*) FILTER (WHERE NOT resolution_met)
        FROM incident_sla WHERE month BETWEEN '2026-01' AND '2026-03' AND tier IS NOT NULL
        GROUP BY 1 HAVING 2 > 0 ORDER BY 2 DESC, 1""")
    top = data.top_breaches[data.top_breaches.tier == "all"].sort_values("rank")
    expected = {cid: n for cid, n in rows if n > 0}
    assert list(top.breaches)[0] == max(expected.values())
    assert all(expected[c] == b for c, b in zip(top.customer_id, top.breaches))
    assert list(top.breaches) == sorted(top.breaches, reverse=True)


# --------------------------------------------------------------------------- page (no browser)
def test_page_is_self_contained_and_escapes_hostile_names(page_path, built):
    html = page_path.read_text(encoding="utf-8")
    # plotly.js embedded exactly once, no external resource attribute, no leftover temp files
    assert html.count("<script>") == 3 and html.count("plotly.js v") <= 2
    tags = _tags(html)
    assert not [t for t in tags if any(a in ("src", "href", "action", "poster", "srcset", "data") for a, _ in t[1])]
    assert {t[0] for t in tags} <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3",
                                    "div", "strong", "nav", "span", "button", "main", "section", "p", "table",
                                    "thead", "tbody", "tr", "th", "td", "b", "footer", "script"}
    # no URL outside plotly.js's own bundle, except the hostile customer name shown as text
    urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'<>&]*", _without_plotly(html), re.I)
    assert {u for u in urls if not u.startswith("https://evil.example/")} == set()
    assert "@import" not in html and "url(" not in _without_plotly(html)
    assert [p.name for p in page_path.parent.iterdir()] == ["index.html"]
    # the hostile name never appears raw; it appears escaped in the tables
    assert HOSTILE not in html and "window.__pwned=1</script>" not in html and "<img" not in html
    # HTML tables: escaped by Jinja's autoescape
    assert "<td>&lt;/script&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=&#34;https://evil" in html
    # plotly labels: HTML-escaped (plotly renders tags in labels), then JSON-escaped inside the script element
    assert "\\u0026lt;/script\\u0026gt;\\u0026lt;script\\u0026gt;window.__pwned=1" in html


def _tags(html: str) -> list[tuple[str, list]]:
    """Every start tag of the page, with its attributes, as a browser's tokenizer sees them."""
    class Collector(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tags = []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, attrs))

    parser = Collector()
    parser.feed(html)
    return parser.tags


def _without_plotly(html: str) -> str:
    start = html.index("<script>window.PlotlyConfig")
    end = html.index("</script>", html.index("<script>", start + 10))
    return html[:start] + html[end:]


def test_figures_are_pure_functions_of_the_data(data):
    a = [(f.id, f.figure.to_json()) for f in dash.build_figures(data)]
    b = [(f.id, f.figure.to_json()) for f in dash.build_figures(data)]
    assert a == b and len(a) == 8
    for spec in dash.build_figures(data):
        for trace in spec.figure.data:
            meta = trace.meta
            assert meta is None or set(meta["show_for"]) <= {"all", "professional", "enterprise", "gold"}
    # the JSON embedded in the page cannot close its script element
    embedded = str(dash.script_json({"x": HOSTILE}))
    assert "<" not in embedded and ">" not in embedded and json.loads(embedded)["x"] == HOSTILE


def test_at_risk_table_is_capped_per_tier_filter(data):
    frame, show_for, totals = dash.at_risk_selection(data, limit=2)
    per_key = Counter(k for keys in show_for for k in keys.split())
    assert all(per_key[k] == min(2, totals[k]) for k in totals)
    assert totals["all"] == data.open_summary["all"].breached + data.open_summary["all"].due_soon


def test_write_is_atomic_and_replaces(tmp_path, data):
    target = dash.write_dashboard(data, tmp_path)
    first = target.read_bytes()
    dash.write_dashboard(data, tmp_path)
    assert target == tmp_path / "dashboard" / "index.html" and target.read_bytes() == first
    assert sorted(p.name for p in target.parent.iterdir()) == ["index.html"]


# --------------------------------------------------------------------------- serve
def test_serve_binds_loopback_and_serves_only_the_folder(page_path, built):
    server = make_server(built["out"], port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://{host}:{port}/dashboard/", timeout=5) as resp:
            assert resp.status == 200 and resp.read() == page_path.read_bytes()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://{host}:{port}/../wh.duckdb", timeout=5)
        assert err.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(FileNotFoundError):
        make_server(built["root"] / "missing", port=0)


# --------------------------------------------------------------------------- real browser
def _playwright():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")


@pytest.fixture(scope="module")
def browser_page(page_path):
    pw_api = _playwright()
    with pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        requests, refused, console = [], [], []

        def guard(route):  # everything that is not the page itself is refused and recorded
            if route.request.url == page_path.as_uri():
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: console.append((m.type, m.text)) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
        page.goto(page_path.as_uri(), wait_until="load")
        page.wait_for_selector("body[data-ready='true']", timeout=20_000)
        yield {"page": page, "requests": requests, "refused": refused, "console": console}
        context.close()
        browser.close()


def test_browser_no_console_errors_no_external_requests_all_charts_drawn(browser_page, page_path, tmp_path):
    page = browser_page["page"]
    figure_ids = [f["id"] for f in json.loads(page.locator("#dashboard-config").text_content())["figures"]]
    assert len(figure_ids) == 8
    assert page.locator(".plot-container").count() == len(figure_ids)
    assert page.locator("svg.main-svg").count() >= len(figure_ids)
    for fid in figure_ids:  # every chart has a drawn plot area with at least one trace
        assert page.locator(f"#{fid} .plot-container svg.main-svg").count() >= 1, fid
        assert page.locator(f"#{fid} g.trace").count() >= 1, fid
    assert page.evaluate("window.__pwned") is None
    assert browser_page["console"] == []
    assert browser_page["refused"] == []
    assert set(browser_page["requests"]) == {page_path.as_uri()}
    shot = Path(os.environ.get("SLA_DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _visible_tile(page, tier: str, key: str):
    tile = page.locator(f".kpi-set[data-kpi-tier='{tier}'] [data-kpi='{key}']")
    assert tile.is_visible()
    return tile.locator(".k-value").inner_text(), tile.get_attribute("data-value")


def _warehouse_kpis(db, tier: str | None, month: str) -> dict:
    where = "month = ?" + ("" if tier is None else " AND tier = ?")
    params = [month] + ([] if tier is None else [tier])
    (n, frm, frb, rm, rb), = _q(db, f"""
        SELECT count(*), count(*) FILTER (WHERE first_response_met), count(*) FILTER (WHERE NOT first_response_met),
               count(*) FILTER (WHERE resolution_met), count(*) FILTER (WHERE NOT resolution_met)
        FROM incident_sla WHERE {where}""", params)
    (over,), = _q(db, f"SELECT count(DISTINCT customer_id) FROM monthly_quota_view WHERE {where} "
                      "AND over_quota > 0 AND tier IS NOT NULL", params)
    return {"incidents": n, "fr_rate": frm / (frm + frb) if frm + frb else None,
            "res_rate": rm / (rm + rb) if rm + rb else None, "breaches": frb + rb, "customers_over_quota": over}


def _check_tiles(page, db, tier_key: str):
    expected = _warehouse_kpis(db, None if tier_key == "all" else tier_key, "2026-03")
    for key, value in expected.items():
        text, raw = _visible_tile(page, tier_key, key)
        if key.endswith("rate"):
            assert text == filters.rate(None if value is None else Decimal(repr(value)), "en"), key
            if value is not None:
                assert float(raw) == pytest.approx(value, abs=1e-12)
                assert float(text.replace("\u00a0%", "")) == pytest.approx(100 * value, abs=0.05)
        else:
            assert text == f"{value:,}" and int(raw) == value, key


def test_browser_kpi_tiles_equal_the_warehouse(browser_page, built):
    page = browser_page["page"]
    _check_tiles(page, built["db"], "all")
    (open_n,), = _q(built["db"], "SELECT count(*) FROM incident_sla WHERE resolved_at IS NULL")
    assert _visible_tile(page, "all", "open")[0] == f"{open_n:,}"
    (gold_fr_met, gold_fr_breached), = _q(
        built["db"], "SELECT count(*) FILTER (WHERE first_response_met), count(*) FILTER (WHERE NOT first_response_met) "
                     "FROM incident_sla WHERE month = '2026-03' AND tier = 'gold'")
    gold_tile = page.locator("[data-kpi='gold_fr_rate']")
    if gold_fr_met + gold_fr_breached:
        assert float(gold_tile.get_attribute("data-value")) == pytest.approx(
            gold_fr_met / (gold_fr_met + gold_fr_breached), abs=1e-12)


def test_browser_filters_change_what_is_shown(browser_page, built):
    page = browser_page["page"]

    def drawn_traces(fid):
        return page.locator(f"#{fid} g.trace").count()

    def x_range(fid):
        return page.evaluate(f"document.getElementById('{fid}').layout.xaxis.range")

    before = {fid: drawn_traces(fid) for fid in ("fig-compliance", "fig-volume-tier", "fig-quota")}
    range_before = x_range("fig-volume-tier")
    page.click("button.tier-btn[data-tier='gold']")
    page.wait_for_function("document.querySelector(\".kpi-set[data-kpi-tier='gold']\").hidden === false")
    assert page.locator(".kpi-set[data-kpi-tier='all']").is_hidden()
    assert page.locator("button.tier-btn[data-tier='gold']").get_attribute("aria-pressed") == "true"
    _check_tiles(page, built["db"], "gold")
    after = {fid: drawn_traces(fid) for fid in before}
    assert all(after[f] < before[f] for f in before), (before, after)
    # tables keep only gold rows
    tiers_shown = page.eval_on_selector_all(
        "#table-quota tbody tr[data-show-for]:not([hidden])", "rows => rows.map(r => r.getAttribute('data-show-for'))")
    assert all(t.split() == ["all", "gold"] for t in tiers_shown)
    # the period filter changes the months on the time axes (3 months fit in the 6-month demo)
    page.click("button.period-btn[data-period='3']")
    page.wait_for_function("document.querySelector(\"button.period-btn[data-period='3']\")"
                           ".getAttribute('aria-pressed') === 'true'")
    assert x_range("fig-volume-tier") != range_before
    assert x_range("fig-volume-tier")[0].startswith("2026-01-01")
    assert "Gold" in page.locator("#showing").inner_text()
    # back to all tiers: the first view returns
    page.click("button.tier-btn[data-tier='all']")
    page.wait_for_function("document.querySelector(\".kpi-set[data-kpi-tier='all']\").hidden === false")
    assert {fid: drawn_traces(fid) for fid in before} == before
    assert browser_page["console"] == [] and browser_page["refused"] == []
