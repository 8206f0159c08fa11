"""Per-statement profile of the import and of `incident_sla` (issue 18): wall and CPU seconds per SQL
statement, so that the largest costs are measured, not guessed.

Every `con.execute` of the step goes through a proxy that times it (wall, process CPU = user + sys
of all threads, and the DuckDB temp directory size after it); `incident_sla.sql` is split into its
statements. Run on a benchmark export (`incident_sla_scale.py` writes them):

    python benchmarks/profile_steps.py --size 1m --step import     # fresh copy of the db, import only
    python benchmarks/profile_steps.py --size 1m --step compute    # on benchmarks/data/profile_1m.duckdb
    python benchmarks/profile_steps.py --size 1m --step compute --full --db benchmarks/data/sla_1m.duckdb
    python benchmarks/profile_steps.py --size 1m --step both --top 25 --json results/x.json

The output lists the statements by CPU seconds with the first words of their SQL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (puts the repo on sys.path)
from _common import DATA_DIR, peak_rss_mb
from incident_sla_scale import AS_OF


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _label(sql: str) -> str:
    text = re.sub(r"--[^\n]*", "", sql)
    text = " ".join(text.split())
    return text[:110]


class Profiler:
    """A DuckDB connection whose `execute` calls are timed one by one."""

    def __init__(self, con, temp_dir: Path | None = None, verbose: bool = False):
        self._con = con
        self.verbose = verbose  # name each statement on stderr as it starts (which one failed, ran out of memory)
        self.rows: list[dict] = []
        self.temp_dir = temp_dir

    def _spill(self) -> int:
        if not self.temp_dir or not self.temp_dir.is_dir():
            return 0
        try:
            return sum(p.stat().st_size for p in self.temp_dir.glob("*"))
        except OSError:
            return 0

    def execute(self, sql, params=None):
        if isinstance(sql, _Split):  # a SQL file: one timing per statement
            res = None
            for stmt in sql.statements:
                res = self.execute(stmt, params)
            return res
        # DuckDB finds Python objects named in the SQL (replacement scans) in the caller's frame,
        # which is this method now: register the caller's ones under their names
        for name, value in sys._getframe(1).f_locals.items():
            if type(value).__module__.startswith(("pyarrow", "pandas", "polars")) and re.search(rf"\b{name}\b", sql):
                self._con.register(name, value)
        if self.verbose:
            print(f"  .. {_label(sql)[:100]}", file=sys.stderr, flush=True)
        t0, c0 = time.perf_counter(), _cpu()
        res = self._con.execute(sql, params or [])  # a result's rows are fetched by the caller, untimed
        self.rows.append({"sql": _label(sql), "wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0,
                          "spill_bytes": self._spill(), "peak_rss_mb": peak_rss_mb()})
        return res

    def sql(self, query):
        """A relation whose `to_arrow_reader` is timed until the last batch was read (the query runs
        while the caller reads it: `sla.ingest._check_streamed`)."""
        prof, rel = self, self._con.sql(query)

        class _Timed:
            def to_arrow_reader(self, *args):
                t0, c0 = time.perf_counter(), _cpu()
                yield from rel.to_arrow_reader(*args)
                prof.rows.append({"sql": "(streamed) " + _label(query), "wall_s": time.perf_counter() - t0,
                                  "cpu_s": _cpu() - c0, "spill_bytes": prof._spill(), "peak_rss_mb": peak_rss_mb()})

        return _Timed()

    def __getattr__(self, name):
        return getattr(self._con, name)


def split_sql(text: str) -> list[str]:
    """Statements of a SQL file (`;` at the end of a line, outside comments)."""
    out, cur = [], []
    for line in text.splitlines():
        cur.append(line)
        code = line.split("--", 1)[0].rstrip()
        if code.endswith(";"):
            stmt = "\n".join(cur).strip()
            if re.sub(r"--[^\n]*", "", stmt).strip(" ;\n"):
                out.append(stmt)
            cur = []
    rest = "\n".join(cur).strip()
    if re.sub(r"--[^\n]*", "", rest).strip(" ;\n"):
        out.append(rest)
    return out


def profile(step: str, size: str, db: Path, memory_limit: str, threads: int | None,
            full: bool = False) -> list[dict]:
    import sla.metrics as metrics
    from connectors.csv_export import CsvExportSource
    from sla.db import read_sql as _read_sql
    from sla.policy import load_policy
    from sla.steps import compute_metrics, import_source
    from sla.warehouse import connect

    policy = load_policy()
    con = connect(db)
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {threads}")
    prof = Profiler(con, Path(str(db) + ".tmp"), verbose=True)
    t0, c0 = time.perf_counter(), _cpu()
    if step == "import":
        import_source(prof, CsvExportSource(DATA_DIR / f"export_{size}"), policy)
    else:
        original = metrics.read_sql

        def read_split(name):  # run incident_sla.sql statement by statement
            text = _read_sql(name)
            return _Split(split_sql(text)) if name == "incident_sla.sql" else text

        metrics.read_sql = read_split
        try:
            compute_metrics(prof, policy, AS_OF, full=full)
        finally:
            metrics.read_sql = original
    total = {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0}
    con.close()
    return [{"sql": f"TOTAL {step}", **total, "spill_bytes": 0}] + prof.rows


class _Split(str):
    """A SQL file's text that `Profiler.execute` runs statement by statement."""

    def __new__(cls, statements):
        obj = super().__new__(cls, "\n".join(statements))
        obj.statements = statements
        return obj


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1m")
    ap.add_argument("--step", choices=["import", "compute", "both"], default="both")
    ap.add_argument("--db", default=None, help="default: benchmarks/data/profile_<size>.duckdb (import recreates it)")
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--full", action="store_true",
                    help="compute: the full recompute (else incremental when the db has a previous run)")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    db = Path(args.db) if args.db else DATA_DIR / f"profile_{args.size}.duckdb"
    out = {"load_before": os.getloadavg(), "steps": {}}
    steps = ["import", "compute"] if args.step == "both" else [args.step]
    for step in steps:
        if step == "import":
            for p in (db, Path(str(db) + ".wal")):
                p.unlink(missing_ok=True)
        rows = profile(step, args.size, db, args.memory_limit, args.threads, full=args.full)
        out["steps"][step] = rows
        total = rows[0]
        print(f"\n## {step} {args.size}: wall {total['wall_s']:.2f} s, CPU {total['cpu_s']:.2f} s, "
              f"load {os.getloadavg()[0]:.1f}")
        print("| CPU s | wall s | spill GiB (after) | statement |\n|---:|---:|---:|---|")
        for r in sorted(rows[1:], key=lambda r: -r["cpu_s"])[: args.top]:
            print(f"| {r['cpu_s']:.2f} | {r['wall_s']:.2f} | {r['spill_bytes'] / 2**30:.1f} | {r['sql']} |")
        print(f"peak RSS {max(r.get('peak_rss_mb', 0) for r in rows) / 1024:.2f} GiB", flush=True)
    out["load_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
