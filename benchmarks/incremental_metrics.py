"""Incremental metrics (issue 18): 1,000 changed tickets on a 1M-incident warehouse, incremental
metrics vs a full recompute, wall and CPU seconds, and the tables compared row for row.

1. The seeded 1M demo export (benchmarks/data/export_1m/, the one incident_sla_scale.py writes and
   reuses) is imported and fully computed once: benchmarks/data/incr_base_1m.duckdb (reused).
2. Per change set, a changed copy of the export (benchmarks/data/export_1m_<set>/, reused) differs
   from it in exactly 1,000 tickets; it is imported into a copy of the base warehouse (the import
   records the changes; its time and the fingerprinting's share are reported).
3. Per scenario, metrics run on fresh copies of that warehouse, each in a fresh process:
   incremental and full (`compute_metrics(..., full=True)`) interleaved, `--runs` each (median
   reported); wall and CPU seconds (user + sys, all threads) around `sla.steps.compute_metrics`
   and a CHECKPOINT (DuckDB writes a large change at commit, a small one later: both are counted),
   after imports and connecting; the 1-minute load average before and after.
4. The six tables an incremental run writes (incident_sla, incident_clock_segments,
   incident_exclusions, data_warnings, monthly_sla, monthly_quota) of the last incremental and the
   last full run are compared with EXCEPT ALL in both directions: the script fails unless they
   are identical.

Change sets (each 1,000 tickets: 600 with new events, 300 new, 50 severity corrections, 50 deleted):
- `recent`: what a sync brings: new events on open incidents of the last 60 days (an agent reply,
  half of them then solved), new incidents of the last 3 days, corrections and deletions among the
  last 60 days' incidents.
- `random`: the same mix spread over the whole two-year history (old incidents reopened, new
  incidents backdated into any month): no locality at all, the worst case for the scope.

Scenarios: `recent` and `random` at the same cut-off, and `recent_later_cutoff`: the recent change
set with the cut-off one hour later (what `sla run` without --as-of does: the ~28,000 incidents
still running at the old cut-off are recomputed too).

Run:  python benchmarks/incremental_metrics.py            (3 runs each)
      python benchmarks/incremental_metrics.py --runs 1   (quick)
Results: benchmarks/results/incremental_metrics.json (+ a Markdown table on stdout).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the repo on sys.path)
from _common import DATA_DIR, fmt_s, machine, median, peak_rss_mb, save_results

AS_OF = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # the export's cut-off (incident_sla_scale.AS_OF)
LATER = AS_OF + dt.timedelta(hours=1)
MIX = {"events": 600, "new": 300, "severity": 50, "deleted": 50}
CHANGE_SETS = ("recent", "random")
SCENARIOS = {"recent": ("recent", AS_OF), "random": ("random", AS_OF), "recent_later_cutoff": ("recent", LATER)}
TABLES = ("incident_sla", "incident_clock_segments", "incident_exclusions", "data_warnings", "monthly_sla",
          "monthly_quota")
TARGET_SPEEDUP = 20.0


# ----------------------------------------------------------------------------------- children
def child(args) -> None:
    """One step in this (fresh) process; prints one JSON line."""
    import pandas  # noqa: F401  (imported by the calendar's Arrow hand-over on first use: not timed)
    import pyarrow  # noqa: F401

    from connectors.csv_export import CsvExportSource
    from sla import incremental
    from sla.policy import load_policy
    from sla.steps import compute_metrics, import_source, transaction
    from sla.warehouse import connect

    policy = load_policy()
    con = connect(args.db)
    out: dict = {"step": args.child}
    t0, o0 = time.perf_counter(), os.times()
    if args.child == "import":
        counts = import_source(con, CsvExportSource(args.export), policy)
        out["counts"] = [c.__dict__ for c in counts]
        out["pending"] = dict(con.execute("SELECT kind, count(*) FROM metrics_pending GROUP BY 1").fetchall())
    else:
        run = compute_metrics(con, policy, dt.datetime.fromisoformat(args.as_of), full=args.child == "full")
        con.execute("CHECKPOINT")  # what persisting the result costs, whether DuckDB does it at commit or later
        out.update(mode=run.mode, recomputed=run.recomputed, reranked=run.reranked, incidents=run.incidents,
                   reason=run.reason)
    o1 = os.times()
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = (o1.user - o0.user) + (o1.system - o0.system)
    if args.child == "import":  # the import's fingerprinting alone: once more, on the same tables
        t1, f0 = time.perf_counter(), os.times()
        with transaction(con):
            incremental.record_input_changes(con)  # adds nothing: the tables equal their fingerprints
        f1 = os.times()
        out["fingerprint_seconds"] = time.perf_counter() - t1
        out["fingerprint_cpu_seconds"] = (f1.user - f0.user) + (f1.system - f0.system)
    con.close()
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out), flush=True)


def run_child(step: str, db: Path, *, export: Path | None = None, as_of: dt.datetime = AS_OF) -> dict:
    cmd = [sys.executable, __file__, "--child", step, "--db", str(db), "--as-of", as_of.isoformat()]
    if export is not None:
        cmd += ["--export", str(export)]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        code = subprocess.call(cmd, stdout=out, stderr=err, text=True)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code != 0:
        raise SystemExit(f"{step} failed (exit {code}):\n{stdout}\n{stderr}")
    res = json.loads([x for x in stdout.splitlines() if x.startswith("RESULT ")][-1][len("RESULT "):])
    res["process_seconds"] = time.perf_counter() - t0
    res["loadavg_1min_before"] = load_before
    res["loadavg_1min_after"] = os.getloadavg()[0]
    extra = (f" ({res['mode']}, recomputed {res['recomputed']:,}, re-ranked {res.get('reranked', 0):,})"
             if "mode" in res else "")
    print(f"    {step:11s} {fmt_s(res['seconds'])} wall, {fmt_s(res['cpu_seconds'])} CPU{extra}, "
          f"load {load_before:.1f}->{res['loadavg_1min_after']:.1f}", flush=True)
    return res


# ----------------------------------------------------------------------------------- data
def copy_db(src: Path, dst: Path) -> None:
    for p in (dst, dst.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    # write the copy out now: left to the kernel, the ~350 MB of dirty pages were flushed while the
    # next run committed, and its fsync waited for them (0.05 s -> 0.5 s of COMMIT, seen at random)
    os.sync()


def base_warehouse(export_info: dict) -> Path:
    """The 1M export imported and fully computed (reused when built from the same export)."""
    db = DATA_DIR / "incr_base_1m.duckdb"
    stamp = db.with_suffix(".json")
    # a warehouse computed by other rules would make every run full ("the metric rules changed")
    want = {"export": export_info["params"], "rules": rules_fingerprint()}
    if db.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == want:
        print(f"  reusing {db.name}", flush=True)
        return db
    print(f"  building {db.name} (import + full metrics) ...", flush=True)
    for p in (db, db.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    run_child("import", db, export=DATA_DIR / "export_1m")
    run_child("full", db)
    stamp.write_text(json.dumps(want))
    return db


def rules_fingerprint() -> str:
    from sla.incremental import rules_fingerprint

    return rules_fingerprint()


def changed_export(name: str, base_db: Path, export_info: dict) -> tuple[Path, dict]:
    """benchmarks/data/export_1m_<name>/: the 1M export with exactly 1,000 tickets changed (MIX)."""
    import duckdb

    src, dst = DATA_DIR / "export_1m", DATA_DIR / f"export_1m_{name}"
    stamp = dst / "_changes.json"
    params = {"export": export_info["params"], "set": name, "mix": MIX, "version": 1}
    if stamp.is_file() and json.loads(stamp.read_text()).get("params") == params:
        print(f"  reusing {dst.name}", flush=True)
        return dst, json.loads(stamp.read_text())
    print(f"  writing {dst.name} ...", flush=True)
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    con = duckdb.connect(str(base_db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    window = "s.created_at > TIMESTAMPTZ '{}' - INTERVAL 60 DAY".format(AS_OF.isoformat()) if name == "recent" else "true"
    # single-line ticket records only (their line can be replaced or dropped as it stands)
    con.execute("""CREATE TEMP TABLE single AS SELECT ticket_id, line FROM (
                       SELECT ticket_id, line, lead(line) OVER (ORDER BY line) AS next FROM tickets) WHERE next = line + 1""")
    con.execute(f"""
        CREATE TEMP TABLE cand AS
        SELECT s.ticket_id, s.customer_id, s.created_at, s.resolved_at, s.created_severity, g.line,
               (SELECT max(occurred_at) FROM ticket_events e WHERE e.ticket_id = s.ticket_id) AS last_event,
               hash(s.ticket_id || '{name}') AS h
        FROM incident_sla s JOIN single g USING (ticket_id)
        WHERE {window} AND s.created_at < TIMESTAMPTZ '{AS_OF.isoformat()}' - INTERVAL 3 HOUR
    """)
    open_filter = "resolved_at IS NULL" if name == "recent" else "true"
    events = con.execute(f"SELECT ticket_id, created_at, last_event FROM cand WHERE {open_filter} "
                         f"ORDER BY h LIMIT {MIX['events']}").fetchall()
    taken = [t for t, *_ in events]
    rest = con.execute(f"SELECT ticket_id, line, created_severity FROM cand WHERE ticket_id NOT IN "
                       f"(SELECT unnest(?)) ORDER BY h DESC LIMIT {MIX['severity'] + MIX['deleted']}",
                       [taken]).fetchall()
    severity = {t: (line, sev) for t, line, sev in rest[:MIX["severity"]]}
    deleted = {t: line for t, line, _ in rest[MIX["severity"]:]}
    customers = [c for (c,) in con.execute("SELECT DISTINCT customer_id FROM tickets ORDER BY 1").fetchall()]
    first = con.execute("SELECT min(created_at) FROM tickets").fetchall()[0][0]
    con.close()
    if len(events) != MIX["events"] or len(rest) != MIX["severity"] + MIX["deleted"]:
        raise SystemExit(f"{name}: not enough candidate tickets")

    def iso(t: dt.datetime) -> str:
        return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    new_events = []
    for i, (t, created, last) in enumerate(events):
        if name == "recent":  # an agent reply on an open incident, half of them then solved
            at = max(created + dt.timedelta(minutes=1), AS_OF - dt.timedelta(hours=2))
            new_events.append((t, iso(at), "reply", "agent", ""))
            if i % 2:
                new_events.append((t, iso(at + dt.timedelta(minutes=30)), "status", "agent", "solved"))
        else:  # reopened by the customer an hour after its last event, half of them solved again a day later
            at = min((last or created) + dt.timedelta(hours=1), AS_OF - dt.timedelta(hours=2))
            new_events += [(t, iso(at), "reply", "customer", ""), (t, iso(at), "status", "customer", "open")]
            if i % 2:
                new_events.append((t, iso(min(at + dt.timedelta(days=1), AS_OF - dt.timedelta(hours=1))), "status",
                                   "agent", "solved"))
    new_tickets = []
    span = (AS_OF - dt.timedelta(days=3), AS_OF - dt.timedelta(hours=3)) if name == "recent" else (first, AS_OF)
    for i in range(MIX["new"]):
        created = span[0] + (span[1] - span[0]) * ((i * 7919) % MIX["new"] + 0.5) / MIX["new"]
        created = created.replace(microsecond=0)
        tid = f"TN{name[:2].upper()}{i:05d}"
        new_tickets.append((tid, customers[(i * 37) % len(customers)], f"benchmark change {i}", str(1 + i % 4),
                            iso(created), "web"))
        new_events += [(tid, iso(created + dt.timedelta(minutes=20)), "reply", "agent", ""),
                       (tid, iso(created + dt.timedelta(hours=2)), "status", "agent", "solved" if i % 3 else "pending")]

    # tickets.csv: drop the deleted records' lines, rewrite the corrected ones, append the new ones
    drop = set(deleted.values())
    fix = {line: t for t, (line, _) in severity.items()}
    with open(src / "tickets.csv", encoding="utf-8", newline="") as fin, \
            open(dst / "tickets.csv", "w", encoding="utf-8", newline="") as fout:
        for n, raw in enumerate(fin, start=1):
            if n in drop:
                continue
            if n in fix:
                row = next(csv.reader([raw]))
                row[3] = str(1 + int(row[3]) % 4)
                buf = io.StringIO()
                csv.writer(buf, lineterminator=raw[len(raw.rstrip("\r\n")):] or "\n").writerow(row)
                raw = buf.getvalue()
            fout.write(raw)
        csv.writer(fout, lineterminator="\n").writerows(new_tickets)
    # ticket_events.csv: without the deleted tickets' events, plus the new events
    prefixes = tuple(f"{t}," for t in deleted)
    with open(src / "ticket_events.csv", encoding="utf-8", newline="") as fin, \
            open(dst / "ticket_events.csv", "w", encoding="utf-8", newline="") as fout:
        for raw in fin:
            if not raw.startswith(prefixes):
                fout.write(raw)
        csv.writer(fout, lineterminator="\n").writerows(new_events)
    for f in src.iterdir():
        if f.name not in ("tickets.csv", "ticket_events.csv", "_benchmark.json") and f.is_file():
            shutil.copyfile(f, dst / f.name)
    info = {"params": params, "tickets_with_new_events": len(events), "new_events": len(new_events),
            "new_tickets": len(new_tickets), "severity_corrected": len(severity), "deleted": len(deleted),
            "changed_tickets": len(events) + len(new_tickets) + len(severity) + len(deleted)}
    stamp.write_text(json.dumps(info, indent=2))
    return dst, info


# ----------------------------------------------------------------------------------- comparison
def compare(a: Path, b: Path) -> dict:
    """Per table: rows, and rows only in a / only in b (EXCEPT ALL)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    out = {}
    for t in TABLES:
        cols_a = [r[0] for r in con.execute(f"DESCRIBE a.{t}").fetchall()]
        cols_b = [r[0] for r in con.execute(f"DESCRIBE b.{t}").fetchall()]
        cols = ", ".join(f'"{c}"' for c in cols_a)
        out[t] = {
            "rows": con.execute(f"SELECT count(*) FROM a.{t}").fetchall()[0][0],
            "same_columns": cols_a == cols_b,
            "only_incremental": con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM a.{t} EXCEPT ALL "
                                            f"SELECT {cols} FROM b.{t})").fetchall()[0][0],
            "only_full": con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM b.{t} EXCEPT ALL "
                                     f"SELECT {cols} FROM a.{t})").fetchall()[0][0],
        }
    con.close()
    return out


# ----------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs of each (incremental, full) per scenario")
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    ap.add_argument("--tag", default="", help="suffix for the results file name")
    ap.add_argument("--child", choices=["import", "incremental", "full"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--export", help=argparse.SUPPRESS)
    ap.add_argument("--as-of", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    from incident_sla_scale import ensure_export

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    out = {"benchmark": "incremental_metrics", "machine": machine(), "args": {"runs": args.runs},
           "as_of": AS_OF.isoformat(), "mix": MIX, "change_sets": {}, "scenarios": {}}
    print("== data", flush=True)
    info = ensure_export("1m")
    base = base_warehouse(info)
    prepared = {}
    for name in sorted({SCENARIOS[s][0] for s in args.scenarios}):
        export, changes = changed_export(name, base, info)
        db = DATA_DIR / f"incr_{name}_1m.duckdb"
        print(f"  importing {export.name} into a copy of the base warehouse ...", flush=True)
        copy_db(base, db)
        imp = run_child("import", db, export=export)
        out["change_sets"][name] = {"changes": changes, "import": imp}
        prepared[name] = db
        save_results("incremental_metrics" + args.tag, out)
    work = DATA_DIR / "incr_work_1m.duckdb"
    keep = {"incremental": DATA_DIR / "incr_result_incremental.duckdb", "full": DATA_DIR / "incr_result_full.duckdb"}
    for scenario in args.scenarios:
        name, as_of = SCENARIOS[scenario]
        print(f"\n== {scenario} (change set {name}, cut-off {as_of.isoformat()})", flush=True)
        runs = {"incremental": [], "full": []}
        for i in range(args.runs):
            for mode in (("incremental", "full") if i % 2 == 0 else ("full", "incremental")):
                copy_db(prepared[name], work)
                runs[mode].append(run_child(mode, work, as_of=as_of))
                copy_db(work, keep[mode])
        same = compare(keep["incremental"], keep["full"])
        identical = all(v["same_columns"] and v["only_incremental"] == v["only_full"] == 0 for v in same.values())
        inc, full = runs["incremental"], runs["full"]
        entry = {
            "change_set": name, "as_of": as_of.isoformat(), "runs": runs, "tables": same, "identical": identical,
            "incremental_median_s": median([r["seconds"] for r in inc]),
            "incremental_cpu_median_s": median([r["cpu_seconds"] for r in inc]),
            "full_median_s": median([r["seconds"] for r in full]),
            "full_cpu_median_s": median([r["cpu_seconds"] for r in full]),
            "recomputed": inc[-1]["recomputed"], "reranked": inc[-1].get("reranked", 0),
            "incidents": inc[-1]["incidents"],
            "all_incremental": all(r["mode"] == "incremental" for r in inc),
        }
        entry["speedup_wall"] = entry["full_median_s"] / entry["incremental_median_s"]
        entry["speedup_cpu"] = entry["full_cpu_median_s"] / entry["incremental_cpu_median_s"]
        out["scenarios"][scenario] = entry
        save_results("incremental_metrics" + args.tag, out)
        print(f"  tables identical: {identical} " + ", ".join(f"{t} {v['rows']:,}" for t, v in same.items()), flush=True)
        if not identical:
            raise SystemExit(f"{scenario}: incremental and full tables differ: {json.dumps(same)}")
    for p in (work, *keep.values()):
        p.unlink(missing_ok=True)
    print_table(out)
    print(f"\nresults: {save_results('incremental_metrics' + args.tag, out)}")


def print_table(out: dict) -> None:
    print("\n| scenario | incidents recomputed + re-ranked | incremental wall | full wall | wall speed-up | incremental CPU | "
          "full CPU | CPU speed-up | tables identical | load 1 min |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for name, e in out["scenarios"].items():
        loads = [r["loadavg_1min_before"] for m in e["runs"].values() for r in m]
        print(f"| {name} | {e['recomputed']:,} + {e.get('reranked', 0):,} of {e['incidents']:,} | "
              f"{fmt_s(e['incremental_median_s'])} | "
              f"{fmt_s(e['full_median_s'])} | **{e['speedup_wall']:.1f}x** | {fmt_s(e['incremental_cpu_median_s'])} | "
              f"{fmt_s(e['full_cpu_median_s'])} | **{e['speedup_cpu']:.1f}x** | {'yes' if e['identical'] else 'NO'} | "
              f"{min(loads):.1f}-{max(loads):.1f} |")
    for name, c in out["change_sets"].items():
        imp = c["import"]
        print(f"\nchange set {name}: {c['changes']['changed_tickets']:,} changed tickets; import {fmt_s(imp['seconds'])} "
              f"({fmt_s(imp['cpu_seconds'])} CPU), of which fingerprinting {fmt_s(imp['fingerprint_seconds'])} "
              f"({fmt_s(imp['fingerprint_cpu_seconds'])} CPU); pending {imp['pending']}")


if __name__ == "__main__":
    sys.exit(main())
