"""Opening the warehouse (one DuckDB file) with clear errors instead of lock waits."""

from __future__ import annotations

from pathlib import Path

import duckdb


class WarehouseBusy(RuntimeError):
    """Another process holds the DuckDB write lock."""


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
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
    return con
