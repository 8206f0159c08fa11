"""`incident_sla` at scale: import (stage + validate) and metrics for 1M and 10M incidents.

For each size the script

1. writes a seeded demo export into benchmarks/data/export_<size>/ (`connectors.demo_export.write_demo_export`,
   as_of 2026-01-01T00:00Z, seed 7, 300 customers; reused when present and complete),
2. imports it into a file-backed DuckDB database benchmarks/data/sla_<size>.duckdb in a fresh
   process (`sla.steps.import_source` with the CSV connector: stage + validate + rejects),
3. computes the metrics in another fresh process (`sla.steps.compute_metrics`, i.e.
   `compute_incident_sla` inside its transaction, committed to the file),

measuring wall time and the child's peak RSS (getrusage ru_maxrss) for each step. The database
is opened with `sla.warehouse.connect` (what `sla run` uses); `--memory-limit` / `--threads`
add `SET memory_limit` / `SET threads` (default: DuckDB's defaults, 80 % of RAM and all cores).

Run:  python benchmarks/incident_sla_scale.py     (import x1; metrics 1M x3, 10M x1)
      python benchmarks/incident_sla_scale.py --sizes 10m --reuse-import --runs-large 3   (metrics only)
      python benchmarks/incident_sla_scale.py --sizes 1m --runs 1    (quick)
      python benchmarks/incident_sla_scale.py --memory-limit 4GB     (cap DuckDB's buffer pool)
Results: benchmarks/results/incident_sla_scale.json (+ a Markdown table on stdout).
"""

from __future__ import annotations

import argparse
import datetime as dt
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

AS_OF = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
SEED, CUSTOMERS, MONTHS = 7, 300, 24
SIZES = {"1m": 1_000_000, "10m": 10_000_000}
TARGETS_S = {"1m": 15.0, "10m": 150.0}
TARGET_RSS_MB = 6 * 1024


# ----------------------------------------------------------------------------------- data
def ensure_export(label: str) -> dict:
    """Write the demo export for `label` unless a complete one with the same parameters exists."""
    from connectors.demo_export import write_demo_export

    folder = DATA_DIR / f"export_{label}"
    stamp = folder / "_benchmark.json"
    params = {"incidents": SIZES[label], "seed": SEED, "customers": CUSTOMERS, "months": MONTHS,
              "as_of": AS_OF.isoformat()}
    if stamp.is_file():
        info = json.loads(stamp.read_text())
        if info.get("params") == params:
            print(f"  reusing {folder} ({info['rows']})", flush=True)
            return info
    if folder.exists():
        shutil.rmtree(folder)
    need = 0.5 * SIZES[label] * 1e3  # ~450 bytes per incident
    free = shutil.disk_usage(DATA_DIR.parent).free
    if free < need * 1.5:
        raise SystemExit(f"not enough disk for {label}: {free / 1e9:.1f} GB free, ~{need / 1e9:.1f} GB needed")
    print(f"  writing {folder} ...", flush=True)
    t0 = time.perf_counter()
    rows = write_demo_export(folder, incidents=SIZES[label], seed=SEED, customers=CUSTOMERS, months=MONTHS,
                             as_of=AS_OF)
    info = {"params": params, "rows": rows, "seconds": round(time.perf_counter() - t0, 1),
            "bytes": sum(p.stat().st_size for p in folder.glob("*.csv"))}
    stamp.write_text(json.dumps(info, indent=2))
    print(f"  wrote {rows} in {info['seconds']} s", flush=True)
    return info


# ----------------------------------------------------------------------------------- children
def _connect(db: str, memory_limit: str | None, threads: int | None):
    from sla.warehouse import connect

    con = connect(db)
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def child(args) -> None:
    """One step in this (fresh) process; prints one JSON line."""
    from connectors.csv_export import CsvExportSource
    from sla.policy import load_policy
    from sla.steps import compute_metrics, import_source

    policy = load_policy()
    t_start = time.perf_counter()
    con = _connect(args.db, args.memory_limit, args.threads)
    settings = dict(con.execute(
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('memory_limit', 'threads', 'temp_directory')"
    ).fetchall())
    out: dict = {"step": args.child, "settings": settings}
    if args.child == "import":
        t0, c0, o0 = time.perf_counter(), time.process_time(), os.times()
        counts = import_source(con, CsvExportSource(args.export), policy)
        out["seconds"] = time.perf_counter() - t0
        out["cpu_seconds"] = time.process_time() - c0  # user + sys, all threads
        o1 = os.times()
        out["cpu_user_s"], out["cpu_sys_s"] = o1.user - o0.user, o1.system - o0.system
        out["counts"] = [c.__dict__ for c in counts]
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        n = compute_metrics(con, policy, AS_OF, full=True).incidents  # the full recompute, every run
        out["seconds"] = time.perf_counter() - t0
        out["cpu_seconds"] = time.process_time() - c0
        out["incidents"] = n
        row = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE first_response_met),
                      count(*) FILTER (WHERE resolution_met), sum(resolution_business_seconds),
                      sum(first_response_business_seconds), count(*) FILTER (WHERE over_quota)
               FROM incident_sla"""
        ).fetchall()[0]
        out["checksum"] = [int(x or 0) for x in row]
        out["segments"] = con.execute("SELECT count(*) FROM incident_clock_segments").fetchall()[0][0]
    con.close()
    out["process_seconds"] = time.perf_counter() - t_start
    out["peak_rss_mb"] = peak_rss_mb()
    tmp = Path(args.db + ".tmp")
    out["temp_dir_bytes_at_end"] = sum(p.stat().st_size for p in tmp.glob("*")) if tmp.is_dir() else 0
    out["db_bytes"] = os.path.getsize(args.db)
    print("RESULT " + json.dumps(out), flush=True)


def run_child(step: str, label: str, db: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", step, "--db", str(db),
           "--export", str(DATA_DIR / f"export_{label}")]
    if args.memory_limit:
        cmd += ["--memory-limit", args.memory_limit]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    load_before = os.getloadavg()[0]
    tmp = Path(str(db) + ".tmp")
    t0 = time.perf_counter()
    # sample DuckDB's spill directory while the child runs (it is removed or emptied at the end)
    temp_peak = 0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:  # files: no pipe to fill up
        child_proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        while child_proc.poll() is None:
            try:
                temp_peak = max(temp_peak, sum(p.stat().st_size for p in tmp.glob("*")) if tmp.is_dir() else 0)
            except OSError:  # a spill file vanished while summing
                pass
            time.sleep(1.0)
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(cmd, child_proc.returncode, out.read(), err.read())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{step} {label} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT "):])
    res["wall_s_with_startup"] = wall
    res["temp_dir_peak_bytes"] = temp_peak  # sampled every second
    res["loadavg_1min_before"] = load_before
    res["loadavg_1min_after"] = os.getloadavg()[0]
    print(f"    {step:8s} {label}: {fmt_s(res['seconds'])} (cpu {fmt_s(res['cpu_seconds'])}, process {fmt_s(wall)}), "
          f"peak RSS {res['peak_rss_mb']:,.0f} MB, load {load_before:.1f}->{res['loadavg_1min_after']:.1f}",
          flush=True)
    return res


# ----------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["1m", "10m"], choices=sorted(SIZES))
    ap.add_argument("--runs", type=int, default=3, help="metrics runs for 1m (default 3; 0 = import only)")
    ap.add_argument("--runs-large", type=int, default=1, help="metrics runs for 10m (default 1)")
    ap.add_argument("--import-runs", type=int, default=1, help="import runs per size (default 1)")
    ap.add_argument("--memory-limit", default=None, help="e.g. 4GB (DuckDB SET memory_limit)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB SET threads")
    ap.add_argument("--reuse-import", action="store_true",
                    help="skip the import when benchmarks/data/sla_<size>.duckdb was imported from the same export "
                         "(its import measurement is carried over, marked reused)")
    ap.add_argument("--tag", default="", help="suffix for the results file name")
    ap.add_argument("--child", choices=["import", "compute"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--export", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    out = {"benchmark": "incident_sla_scale", "machine": machine(),
           "args": {k: v for k, v in vars(args).items() if k not in ("child", "db", "export")},
           "as_of": AS_OF.isoformat(), "sizes": {}}
    for label in args.sizes:
        print(f"\n== {label}", flush=True)
        info = ensure_export(label)
        runs = args.runs_large if SIZES[label] >= 10_000_000 else args.runs
        db = DATA_DIR / f"sla_{label}.duckdb"
        imports, computes = [], []
        stamp = db.with_suffix(".import.json")
        previous = json.loads(stamp.read_text()) if stamp.is_file() and db.is_file() else None
        if args.reuse_import and previous and previous.get("export") == info["params"]:
            print(f"    import   {label}: reusing {db.name} (imported {previous['at']})", flush=True)
            imports = [dict(r, reused=True) for r in previous["runs"]]
        else:
            stamp.unlink(missing_ok=True)
            for _ in range(args.import_runs):
                for p in (db, db.with_suffix(".duckdb.wal")):
                    p.unlink(missing_ok=True)
                imports.append(run_child("import", label, db, args))
            stamp.write_text(json.dumps({"export": info["params"], "runs": imports,
                                         "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}))
        for _ in range(runs):
            computes.append(run_child("compute", label, db, args))
        sums = {json.dumps(c["checksum"]) for c in computes}
        entry = {
            "export": info, "runs": runs, "import_runs": args.import_runs,
            "import": {"median_s": median([r["seconds"] for r in imports]),
                       "peak_rss_mb_max": max(r["peak_rss_mb"] for r in imports), "runs": imports},
            "compute": {"median_s": median([r["seconds"] for r in computes]),
                        "peak_rss_mb_max": max((r["peak_rss_mb"] for r in computes), default=0), "runs": computes,
                        "identical_results": len(sums) <= 1},
            "target_compute_s": TARGETS_S[label], "target_peak_rss_mb": TARGET_RSS_MB,
        }
        entry["import"]["cpu_median_s"] = median([r["cpu_seconds"] for r in imports])
        entry["compute"]["meets_time_target"] = (entry["compute"]["median_s"] is not None
                                                 and entry["compute"]["median_s"] < TARGETS_S[label])
        entry["meets_memory_target"] = max(entry["import"]["peak_rss_mb_max"],
                                           entry["compute"]["peak_rss_mb_max"]) < TARGET_RSS_MB
        out["sizes"][label] = entry
        save_results("incident_sla_scale" + args.tag, out)  # partial results survive a later failure

    print_table(out)
    print(f"\nresults: {save_results('incident_sla_scale' + args.tag, out)}")


def print_table(out: dict) -> None:
    print("\n| size | tickets | events | step | runs | wall (median) | min..max | CPU (median) | peak RSS (max) | "
          "load 1 min | target |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for label, e in out["sizes"].items():
        rows = e["export"]["rows"]
        for step in ("import", "compute"):
            s = e[step]
            if not s["runs"]:  # --runs 0: import only
                continue
            times = [r["seconds"] for r in s["runs"]]
            target = (f"< {e['target_compute_s']:.0f} s: {'met' if s['meets_time_target'] else 'MISSED'}"
                      if step == "compute" else "-")
            n_runs = len(s["runs"])
            print(f"| {label} | {rows['tickets.csv']:,} | {rows['ticket_events.csv']:,} | {step} | {n_runs} | "
                  f"{fmt_s(s['median_s'])} | {fmt_s(min(times))}..{fmt_s(max(times))} | "
                  f"{fmt_s(median([r.get('cpu_seconds') for r in s['runs']]))} | {s['peak_rss_mb_max'] / 1024:.2f} GiB | "
                  f"{min(r['loadavg_1min_before'] for r in s['runs']):.1f}-"
                  f"{max(r['loadavg_1min_after'] for r in s['runs']):.1f} | {target} |")


if __name__ == "__main__":
    sys.exit(main())
