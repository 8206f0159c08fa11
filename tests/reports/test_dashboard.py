"""Management dashboard (issues 5 and 16): the queries, the page, the Dagster asset, `serve`, and the page
in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser download), at
a desktop width (1400 px) and a phone width (420 px).

Screenshots: set SLA_DASHBOARD_SCREENSHOTS=<dir> to keep dashboard-1400.png and dashboard-420.png.

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
from reports import format as fmt
from sla import warehouse
from sla.billing import compute_gold_reconciliation
from sla.policy import load_policy
from sla.report_data.dashboard import load_dashboard_data
from sla.steps import compute_metrics, compute_month, import_source, transaction

AS_OF = dt.datetime(2026, 4, 2, 12, tzinfo=dt.timezone.utc)
GOAL = Decimal("0.95")
WIDTHS = (1400, 420)
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
    # billing: the open-items scope, to invoice and to credit apart (the finance report's page 1)
    (to_invoice, to_credit, n), = _q(db, "SELECT coalesce(sum(to_invoice_eur), 0), coalesce(sum(to_credit_eur), 0), "
                                         "count(*) FROM gold_open_items")
    t = data.open_items_totals
    assert (t.to_invoice_eur, t.to_credit_eur, len(data.open_items)) == (to_invoice, to_credit, n)
    assert isinstance(t.to_invoice_eur, Decimal) and isinstance(t.to_credit_eur, Decimal)


def test_backlog_ages_and_oldest_open_per_tier(built, data):
    db = built["db"]
    for tier in ("all", "professional", "enterprise", "gold"):
        where = "" if tier == "all" else f" AND tier = '{tier}'"
        rows = _q(db, f"SELECT ticket_id, created_at FROM incident_sla WHERE resolved_at IS NULL{where} "
                      "ORDER BY created_at, ticket_id LIMIT 1")
        (old6,), = _q(db, f"""SELECT count(*) FROM incident_sla WHERE resolved_at IS NULL{where}
                             AND timezone('Europe/Berlin', created_at) + INTERVAL 6 MONTH
                                 <= timezone('Europe/Berlin', as_of)""")
        s = data.open_summary[tier]
        assert s.older_than_6_months == old6
        if rows:
            assert (s.oldest_ticket_id, s.oldest_created_at) == rows[0]
        else:
            assert s.oldest_ticket_id is None
    # buckets partition the open incidents; calendar buckets only for incidents a month old or more
    frame = data.open_incidents
    assert frame["age_bucket"].between(0, 5).all()
    assert ((frame["age_bucket"] >= 3) == frame["older_than_a_month"]).all()
    assert (frame.loc[frame["age_bucket"] == 0, "age_business_seconds"] < data.business_day_seconds).all()


def test_new_views_follow_the_small_number_rules(built, data):
    sev = data.compliance_severity
    assert sev[(sev.rated < 5)].rate.isna().all()
    rated = sev[sev.rated >= 5]
    assert ((rated.rate - rated.met / rated.rated).abs() < 1e-12).all()
    times = data.times
    assert times[times.measured < 5].p90_seconds.isna().all()
    # P90 and median as the customer PDFs compute them
    (median, p90, n), = _q(built["db"], """
        SELECT round(median(first_response_business_seconds)), round(quantile_cont(first_response_business_seconds, 0.9)),
               count(first_response_business_seconds)
        FROM incident_sla WHERE month = '2026-03'""")
    row = times[(times.month == "2026-03") & (times.tier == "all") & (times.metric == "first_response")].iloc[0]
    assert (row.median_seconds, row.measured) == (median, n) and (n < 5 or row.p90_seconds == p90)
    # every breached metric of the window is one row of the breach table
    (breaches,), = _q(built["db"], "SELECT count(*) FILTER (WHERE first_response_met = false) + "
                                   "count(*) FILTER (WHERE resolution_met = false) FROM incident_sla "
                                   "WHERE month BETWEEN '2026-01' AND '2026-03'")
    assert len(data.breaches) == breaches


def test_renewal_watch_lists_gold_terms_ending_within_90_days(built, data):
    day = AS_OF.date()
    watch = data.renewal_watch
    assert ((watch.days_left > 0) & (watch.days_left <= 90)).all()
    for r in watch.itertuples():
        (gold_fr_breached, gold_res_breached), = _q(built["db"], """
            SELECT count(*) FILTER (WHERE NOT first_response_met), count(*) FILTER (WHERE NOT resolution_met)
            FROM incident_sla WHERE customer_id = ? AND tier = 'gold' AND month BETWEEN '2025-04' AND '2026-03'""",
                                                    [r.customer_id])
        assert r.breaches == gold_fr_breached + gold_res_breached
        assert (r.valid_to.date() if hasattr(r.valid_to, "date") else r.valid_to) > day


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
                                    "thead", "tbody", "tr", "th", "td", "b", "footer", "script", "input", "code"}
    # no URL outside plotly.js's own bundle, except the hostile customer name shown as text
    urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'<>&]*", _without_plotly(html), re.I)
    assert {u for u in urls if not u.startswith("https://evil.example/")} == set()
    assert "@import" not in html and "url(" not in _without_plotly(html)
    assert [p.name for p in page_path.parent.iterdir()] == ["index.html"]
    # a print stylesheet (the management handout) and the card layout for phones
    assert "@media print" in html and "@media (max-width: 600px)" in html and "table.cards td::before" in html
    # the hostile name never appears raw; it appears escaped in the tables
    assert HOSTILE not in html and "window.__pwned=1</script>" not in html and "<img" not in html
    # HTML tables: escaped by Jinja's autoescape
    assert (f'class="cust" data-customer="{built["hostile_id"]}">&lt;/script&gt;&lt;script&gt;window.__pwned=1'
            '&lt;/script&gt;&lt;img src=&#34;https://evil') in html
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
    assert a == b and len(a) == 9
    for spec in dash.build_figures(data):
        for trace in spec.figure.data:
            meta = trace.meta
            assert meta is None or set(meta["show_for"]) <= {"all", "professional", "enterprise", "gold"}
    # the JSON embedded in the page cannot close its script element
    embedded = str(dash.script_json({"x": HOSTILE}))
    assert "<" not in embedded and ">" not in embedded and json.loads(embedded)["x"] == HOSTILE


def test_open_table_lists_every_open_incident_in_words(data):
    rows = dash.open_rows(data)
    assert sorted(r["ticket_id"] for r in rows) == sorted(data.open_incidents.ticket_id)
    assert [r["risk"] for r in rows][:1] in ([], ["due_soon"], ["breached"], ["on_track"], ["no_target"])
    for r in rows:  # ages: "13 h 19 min" up to a month, "since Dec 2024" beyond; never "bd" or decimal hours
        assert re.fullmatch(r"(\d[\d,]* h( \d+ min)?|\d+ min|since [A-Z][a-z]{2} \d{4})", r["age"]), r["age"]
        if r["risk"] == "breached":
            assert re.fullmatch(r"overdue (by .+|since [A-Z][a-z]{2} \d{4})", r["due"]), r["due"]


def test_one_formatter_and_one_goal(data):
    assert not hasattr(dash, "fmt_eur") and not hasattr(dash, "fmt_hours")
    assert dash.DEFAULT_GOAL == float(GOAL) == float(data.goal)
    assert dash.rate_or_counts(3, 1) == "3 of 4 met" and dash.rate_or_counts(0, 0) == filters.DASH
    assert dash.rate_or_counts(9, 1) == filters.rate(Decimal("0.9"), "en")
    assert dash.fmt_pp(dash.gap_pp(0.876, 0.95)) == "-7.4 pp" and dash.fmt_goal(0.95) == "95\u00a0%"
    rows = dash.target_rows(data)
    assert {"tier": "Gold", "severity": 3, "first_response": "8 business hours",
            "resolution": "7 business days (56 h)"} in rows


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


@pytest.fixture(scope="module", params=WIDTHS, ids=lambda w: f"{w}px")
def browser_page(request, page_path):
    pw_api = _playwright()
    width = request.param
    with pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": 900})
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
        yield {"page": page, "requests": requests, "refused": refused, "console": console, "width": width}
        context.close()
        browser.close()


def test_browser_no_console_errors_no_external_requests_all_charts_drawn(browser_page, page_path, tmp_path):
    page = browser_page["page"]
    figure_ids = [f["id"] for f in json.loads(page.locator("#dashboard-config").text_content())["figures"]]
    assert len(figure_ids) == 9
    assert page.locator(".plot-container").count() == len(figure_ids)
    assert page.locator("svg.main-svg").count() >= len(figure_ids)
    width = browser_page["width"]
    for fid in figure_ids:  # every chart has a drawn plot area with at least one trace, inside its card
        assert page.locator(f"#{fid} .plot-container svg.main-svg").count() >= 1, fid
        assert page.locator(f"#{fid} g.trace").count() >= 1, fid
        box = page.locator(f"#{fid} svg.main-svg").first.bounding_box()
        assert box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (fid, box)
    assert page.locator(".modebar").count() == 0  # no toolbar over the legends
    assert page.evaluate("window.__pwned") is None
    assert browser_page["console"] == []
    assert browser_page["refused"] == []
    assert set(browser_page["requests"]) == {page_path.as_uri()}
    # no horizontal overflow of the page itself
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # the open-incident table's Due column is on screen (cards below 600 px)
    due = page.locator("#table-open tbody tr:not([hidden]) td[data-col='due']").first
    if due.count():
        assert due.is_visible()
        box, table = due.bounding_box(), page.locator("#table-open").locator("xpath=..").bounding_box()
        assert box["x"] >= table["x"] - 0.5 and box["x"] + box["width"] <= table["x"] + table["width"] + 0.5
        assert box["x"] + box["width"] <= width
    shots = os.environ.get("SLA_DASHBOARD_SCREENSHOTS")
    shot = Path(shots) / f"dashboard-{width}.png" if shots else tmp_path / "dashboard.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=bool(shots))
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
    return {"incidents": n, "fr_rate": (frm, frb), "res_rate": (rm, rb), "breaches": frb + rb,
            "customers_over_quota": over}


def _check_rate_tile(tile, met: int, breached: int):
    """Value, goal and gap of a compliance tile against the warehouse counts."""
    text = tile.locator(".k-value").inner_text()
    rated = met + breached
    if rated < 5:  # sla-semantics section 7: counts, no rate, no gap
        assert text == (filters.DASH if rated == 0 else f"{met} of {rated} met")
        assert tile.get_attribute("data-gap") is None
        return
    rate = Decimal(met) / Decimal(rated)
    assert text == filters.rate(rate, "en")
    assert float(tile.get_attribute("data-value")) == pytest.approx(met / rated, abs=1e-12)
    gap = ((rate - GOAL) * 100).quantize(Decimal("0.1"))
    assert Decimal(tile.get_attribute("data-gap")) == gap
    sign = "+" if gap > 0 else ""
    assert tile.locator(".k-goal").inner_text() == f"goal 95\u00a0% · {sign}{gap} pp"
    assert ("below" in tile.get_attribute("class").split()) == (rate < GOAL)


def _check_tiles(page, db, tier_key: str):
    expected = _warehouse_kpis(db, None if tier_key == "all" else tier_key, "2026-03")
    for key, value in expected.items():
        if key.endswith("rate"):
            _check_rate_tile(page.locator(f".kpi-set[data-kpi-tier='{tier_key}'] [data-kpi='{key}']"), *value)
        else:
            text, raw = _visible_tile(page, tier_key, key)
            assert text == f"{value:,}" and int(raw) == value, key


def test_browser_kpi_tiles_equal_the_warehouse(browser_page, built):
    page = browser_page["page"]
    _check_tiles(page, built["db"], "all")
    (open_n,), = _q(built["db"], "SELECT count(*) FROM incident_sla WHERE resolved_at IS NULL")
    assert _visible_tile(page, "all", "open")[0] == f"{open_n:,}"
    (gold_fr_met, gold_fr_breached), = _q(
        built["db"], "SELECT count(*) FILTER (WHERE first_response_met), count(*) FILTER (WHERE NOT first_response_met) "
                     "FROM incident_sla WHERE month = '2026-03' AND tier = 'gold'")
    _check_rate_tile(page.locator("[data-kpi='gold_fr_rate']"), gold_fr_met, gold_fr_breached)


def test_browser_oldest_open_and_billing_totals_equal_the_warehouse(browser_page, built):
    page = browser_page["page"]
    db = built["db"]
    for tier in ("all", "gold"):
        if tier != "all":
            page.click(f"button.tier-btn[data-tier='{tier}']")
        rows = _q(db, "SELECT ticket_id, created_at FROM incident_sla WHERE resolved_at IS NULL"
                      + ("" if tier == "all" else f" AND tier = '{tier}'") + " ORDER BY created_at, ticket_id LIMIT 1")
        text, raw = _visible_tile(page, tier, "oldest_open")
        if rows:
            ticket, created = rows[0]
            local = created.astimezone(dt.timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
            assert (raw, text) == (ticket, fmt.since(local))
        else:
            assert text == filters.DASH
    page.click("button.tier-btn[data-tier='all']")
    (to_invoice, to_credit), = _q(db, "SELECT coalesce(sum(to_invoice_eur), 0), coalesce(sum(to_credit_eur), 0) "
                                      "FROM gold_open_items")
    for key, amount in (("to_invoice", to_invoice), ("to_credit", to_credit)):
        tile = page.locator(f"[data-kpi='{key}']")
        assert Decimal(tile.get_attribute("data-value")) == amount
        assert tile.locator(".k-value").inner_text() == fmt.money(amount)
        assert page.locator(f"[data-total='{key}']").inner_text() == fmt.money(amount)


def _visible_customers(page, table_id: str) -> list[str]:
    return page.eval_on_selector_all(f"#{table_id} tbody tr[data-customer]:not([hidden])",
                                     "rows => rows.map(r => r.getAttribute('data-customer'))")


def test_browser_click_on_a_customer_filters_the_tables(browser_page, built):
    page = browser_page["page"]
    db = built["db"]
    assert page.locator("#customer-chip").is_hidden()
    everyone = set(_visible_customers(page, "table-open"))
    # a customer of the "Most breaches" table who also has open incidents, if there is one
    ranked = page.eval_on_selector_all("#table-top-breaches tbody tr[data-show-for='all'] button.cust",
                                       "bs => bs.map(b => b.getAttribute('data-customer'))")
    cid = next((c for c in ranked if c in everyone), ranked[0])
    page.locator(f"#table-top-breaches tbody tr[data-show-for='all'] button.cust[data-customer='{cid}']").click()
    page.wait_for_function("!document.getElementById('customer-chip').hidden")
    assert cid in page.locator("#customer-chip").inner_text()
    (n_open,), = _q(db, "SELECT count(*) FROM incident_sla WHERE resolved_at IS NULL AND customer_id = ?", [cid])
    (n_breach,), = _q(db, "SELECT count(*) FILTER (WHERE first_response_met = false) + count(*) FILTER "
                          "(WHERE resolution_met = false) FROM incident_sla WHERE customer_id = ? "
                          "AND month BETWEEN '2026-01' AND '2026-03'", [cid])
    assert _visible_customers(page, "table-open") == [cid] * n_open
    assert _visible_customers(page, "table-breaches") == [cid] * n_breach and n_breach > 0
    page.click("#customer-clear")
    assert set(_visible_customers(page, "table-open")) == everyone
    # a bar of "Most breaches" drills down the same way
    bar = page.locator("#fig-top-breaches g.trace.bars path").first
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("!document.getElementById('customer-chip').hidden")
    shown = set(_visible_customers(page, "table-breaches"))
    assert len(shown) == 1 and shown <= set(ranked)
    page.click("#customer-clear")
    # the search box finds a ticket id
    ticket = page.locator("#table-open tbody tr[data-customer] td").first.inner_text().split()[0]
    page.fill("#search", ticket.lower())
    assert page.eval_on_selector_all("#table-open tbody tr[data-customer]:not([hidden])",
                                     "rows => rows.map(r => r.cells[0].innerText.split(/\\s/)[0])") == [ticket]
    page.fill("#search", "")
    assert set(_visible_customers(page, "table-open")) == everyone
    assert browser_page["console"] == []


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
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert browser_page["console"] == [] and browser_page["refused"] == []
