"""Benchmark (issue 18): an unchanged rerun of `sla run` against the first run on the same export.

    python benchmarks/rerun.py [--customers 300] [--months 24] [--incidents N] [--seed 7]
                               [--force-run] [--keep DIR] [--tag _x]

Writes a seeded demo export with the demo's policy (what `sla demo` writes; not timed), then runs
the real command, `python -m pipelines.cli run --export-dir ... --as-of ...`, in a fresh process:
once on an empty warehouse and output folder, then again with nothing changed (and, with
`--force-run`, a third time with `--force`). Recorded per run: wall time, CPU seconds of the
command and every process it waited for (PDF workers; `RUSAGE_CHILDREN`), each step's wall time
and "rendered N, reused M" from the progress lines, the PDFs on disk and the 1-minute load
average before and after (the machine is shared). Target: the second run takes under 10 % of the
first and renders 0 PDFs. Results: benchmarks/results/rerun<tag>.json (section 6 of
benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, save_results  # noqa: E402

AS_OF = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.timezone.utc)  # reporting month 2026-10
STEP = re.compile(r"^\[(\d+)/(\d+)\] (.*?): done in ([\d.]+)s(?: \(rendered (\d+), reused (\d+)\))?$")
TOTALS = re.compile(r"rendered (\d+), reused (\d+) \(unchanged since the last run")


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def sla_run(work: Path, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "--export-dir", str(work / "export"),
           "--db", str(work / "warehouse.duckdb"), "--out", str(work / "out"), "--as-of", AS_OF.isoformat(),
           "--policy", str(work / "export" / "sla-policy.yaml"), *extra]
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}  # as a plain `sla run`: ephemeral instance
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    load_before = os.getloadavg()[0]
    cpu0, t0 = children_cpu_s(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu_s() - cpu0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"sla run failed with exit code {proc.returncode}")
    steps = []
    for line in proc.stderr.splitlines():
        m = STEP.match(line.strip())
        if m:
            steps.append({"step": m.group(3), "wall_s": float(m.group(4)),
                          **({"rendered": int(m.group(5)), "reused": int(m.group(6))} if m.group(5) else {})})
    totals = TOTALS.search(proc.stdout)
    pdf_step = next((s for s in steps if s["step"].startswith("render the customer PDFs")), {})
    return {
        "command": " ".join(extra) or "(plain)",
        "wall_s": round(wall, 2),
        "cpu_s_incl_workers": round(cpu, 1),
        "load_avg_1min_before": round(load_before, 2),
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
        "steps": steps,
        "customer_pdfs_rendered": pdf_step.get("rendered"),
        "customer_pdfs_reused": pdf_step.get("reused"),
        "outputs_rendered": int(totals.group(1)) if totals else None,
        "outputs_reused": int(totals.group(2)) if totals else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=300)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--incidents", type=int, default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--force-run", action="store_true", help="a third run with --force")
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)

    from connectors.demo_export import write_demo_export

    work = (args.keep or Path(tempfile.mkdtemp(prefix="bench-rerun-"))).resolve()
    if args.keep and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        counts = write_demo_export(work / "export", customers=args.customers, months=args.months,
                                   incidents=args.incidents, seed=args.seed, as_of=AS_OF)
        print(f"demo export: {counts}", file=sys.stderr)
        runs = []
        for label, extra in [("first", ()), ("unchanged rerun", ()),
                             *([("rerun with --force", ("--force",))] if args.force_run else [])]:
            print(f"{label} ...", file=sys.stderr, flush=True)
            runs.append({"run": label, **sla_run(work, *extra)})
            print(f"{label}: {runs[-1]['wall_s']:.1f} s, customer PDFs rendered {runs[-1]['customer_pdfs_rendered']}, "
                  f"reused {runs[-1]['customer_pdfs_reused']}", file=sys.stderr, flush=True)
        month_pdfs = len(list((work / "out").glob("*/customers/*.pdf")))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    first, second = runs[0], runs[1]
    ratio = second["wall_s"] / first["wall_s"]
    result = {
        "benchmark": "rerun",
        "machine": machine(),
        "input": {"customers": args.customers, "months": args.months, "incidents": args.incidents,
                  "seed": args.seed, "rows": counts, "as_of": AS_OF.isoformat()},
        "customer_pdfs_on_disk": month_pdfs,
        "runs": runs,
        "second_over_first": round(ratio, 4),
        "target": "second run < 10 % of the first, 0 PDFs rendered",
        "target_met": ratio < 0.10 and second["customer_pdfs_rendered"] == 0,
    }
    path = save_results(f"rerun{args.tag}", result)

    print("\n| run | wall | CPU (incl. workers) | customer PDFs rendered / reused | outputs rendered / reused | load before-after |")
    print("|---|---:|---:|---:|---:|---|")
    for r in runs:
        print(f"| {r['run']} | {r['wall_s']:.1f} s | {r['cpu_s_incl_workers']:.0f} s | "
              f"{r['customer_pdfs_rendered']} / {r['customer_pdfs_reused']} | {r['outputs_rendered']} / "
              f"{r['outputs_reused']} | {r['load_avg_1min_before']}-{r['load_avg_1min_after']} |")
    print(f"\nunchanged rerun / first = {100 * ratio:.1f} % (target < 10 %, 0 PDFs): "
          f"{'met' if result['target_met'] else 'missed'}")
    print("\nsteps of the unchanged rerun:")
    for s in second["steps"]:
        print(f"  {s['step']}: {s['wall_s']:.1f} s" + (f" (rendered {s['rendered']}, reused {s['reused']})"
                                                     if "rendered" in s else ""))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
