"""Incremental rendering end to end (issue 18), with the real renderer and `sla run`'s code path
(`pipelines.orchestrate.run_all`): an unchanged rerun renders nothing; one changed ticket
re-renders only its customer's PDF, the dashboard and, for a Gold customer, the billing report;
`--force` renders everything again."""

from __future__ import annotations

import datetime as dt
import re
import shutil

import duckdb
import pytest

from connectors.demo_export import write_demo_export
from pipelines.orchestrate import run_all

pytestmark = pytest.mark.slow

AS_OF = dt.datetime(2026, 4, 2, 12, tzinfo=dt.timezone.utc)
MONTH = "2026-03"


def snapshot(out):
    """Every output file with its bytes and modification time (a rewrite changes the time)."""
    return {p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file()}


def changed(before, after) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def outputs(paths: set[str]) -> set[str]:
    """The outputs among changed files (manifests change with their output)."""
    return {p for p in paths if not p.startswith(".fingerprints/")}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("incremental")
    write_demo_export(base / "export", customers=12, months=3, seed=5, as_of=AS_OF)
    lines: list[str] = []
    outcome = run(base, lines)
    assert outcome.completed and outcome.reused == 0 and outcome.rendered > 10
    return base


def run(base, lines, **kwargs):
    return run_all(export_dir=str(base / "export"), db_path=str(base / "wh.duckdb"), out_dir=str(base / "out"),
                   as_of=AS_OF, month=MONTH, progress=lines.append, **kwargs)


def move_ticket_to_february(base, tier: str) -> str:
    """Move the creation of one March ticket of a customer of `tier` 20 days back (into
    February): the customer's March figures, its allowance and the dashboard change."""
    con = duckdb.connect(str(base / "wh.duckdb"), read_only=True)
    ticket, customer, created = con.execute(
        "SELECT ticket_id, customer_id, created_at FROM incident_sla WHERE month = ? AND tier = ? "
        "AND day(created_at AT TIME ZONE 'Europe/Berlin') BETWEEN 2 AND 20 ORDER BY ticket_id LIMIT 1",
        [MONTH, tier]).fetchone()
    con.close()
    path = base / "export" / "tickets.csv"
    text = path.read_text(encoding="utf-8")
    start = text.index(f"\n{ticket},") + 1  # the record may span lines (a quoted subject)
    found = re.compile(r",(2026-0[23]-\d\dT[^,\r\n]+),").search(text, start)
    stamp = found.group(1)
    assert dt.datetime.fromisoformat(stamp) == created
    earlier = (dt.datetime.fromisoformat(stamp) - dt.timedelta(days=20)).isoformat()
    path.write_text(text[:found.start(1)] + earlier + text[found.end(1):], encoding="utf-8")
    return customer


def test_unchanged_rerun_renders_nothing(first_run):
    out = first_run / "out"
    before = snapshot(out)
    lines: list[str] = []
    outcome = run(first_run, lines)
    assert outcome.rendered == 0 and outcome.reused > 10
    assert changed(before, snapshot(out)) == set()  # not one file rewritten
    pdf_line = next(x for x in lines if "render the customer PDFs" in x and "done" in x)
    assert "(rendered 0, reused " in pdf_line
    assert "rendered 0, reused" in outcome.summary_text()


@pytest.mark.parametrize("tier", ["gold", "enterprise"])
def test_one_changed_ticket_renders_its_customer_the_dashboard_and_for_gold_the_billing(first_run, tier):
    out = first_run / "out"
    run(first_run, [])  # settle: the previous test case may have changed the export
    before = snapshot(out)
    customer = move_ticket_to_february(first_run, tier)
    outcome = run(first_run, [])
    rewritten = outputs(changed(before, snapshot(out)))
    pdfs = {p for p in rewritten if p.startswith(f"{MONTH}/customers/")}
    assert [p.split("/")[-1].split("-")[0] for p in pdfs] == [customer]
    assert "dashboard/index.html" in rewritten
    billing = {p for p in rewritten if p.startswith("billing/")}
    if tier == "gold":
        assert "billing/gold-billing-2026.pdf" in billing
        assert outcome.rendered == 3  # the customer's PDF, the billing report, the dashboard
    else:
        assert billing == set()
        assert outcome.rendered == 2
    assert outcome.reused == len(list((out / MONTH / "customers").glob("*.pdf"))) - 1 + \
        len(list((out / "billing").glob("*.pdf"))) - (tier == "gold")


def test_force_renders_everything_to_the_same_bytes(first_run, tmp_path):
    out = first_run / "out"
    run(first_run, [])
    before = snapshot(out)
    outcome = run(first_run, [], force=True)
    assert outcome.reused == 0 and outcome.rendered > 10
    after = snapshot(out)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}  # same bytes
    pdf = next(k for k in after if k.startswith(f"{MONTH}/customers/") and k.endswith(".pdf"))
    assert after[pdf][1] != before[pdf][1]  # but written again
    # a copy of the output folder elsewhere is reused as it is (manifests name files, not paths)
    shutil.copytree(out, tmp_path / "copy", copy_function=shutil.copy2)
    lines: list[str] = []
    moved = run_all(export_dir=str(first_run / "export"), db_path=str(first_run / "wh.duckdb"),
                    out_dir=str(tmp_path / "copy"), as_of=AS_OF, month=MONTH, progress=lines.append)
    assert moved.rendered == 0
