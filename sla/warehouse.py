"""Opening the warehouse (one DuckDB file) with clear errors instead of lock waits."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import duckdb


class WarehouseBusy(RuntimeError):
    """Another process holds the DuckDB write lock."""


#: DuckDB would take 80 % of RAM; a fixed cap keeps the 10M-incident run under 6 GB (it spills
#: to `<db>.tmp` instead, see benchmarks/README.md)
DEFAULT_MEMORY_LIMIT = "4GB"


def connect(path: str | Path, *, read_only: bool = False,
            memory_limit: str = DEFAULT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """Open the warehouse. DuckDB allows one writing process per file: fail at once, clearly."""
    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(f"warehouse not found: {path} (run `sla run` first)")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(
                f"database {path} is busy: another `sla` process or Dagster run is writing it; "
                "try again when it has finished"
            ) from None
        raise
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


@contextmanager
def exclusive(path: str | Path, what: str = "sla run"):
    """Hold the warehouse for a whole multi-step command (`sla run`, `sla deliver`, ...).

    DuckDB's own lock lasts only while a connection is open, and a run opens one per step; this
    advisory lock next to the database file makes a second command fail at once with a clear
    message instead of interleaving with the first one between steps.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise WarehouseBusy(f"database {path} is busy: {holder} is using it; try again when it has finished") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{what} (pid {os.getpid()})")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
