"""Small DuckDB helpers shared by the domain layer."""

from __future__ import annotations

import hashlib
from importlib import resources


def scalar(con, sql: str, params: list | None = None):
    """First column of the first row (DuckDB 2 wants results fetched to completion)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def read_sql(name: str) -> str:
    return resources.files("sla").joinpath("sql", name).read_text(encoding="utf-8")


def sql_literal(value) -> str:
    """A SQL string literal (quotes doubled) for values that cannot be bound as parameters."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values) -> str:
    """`('a', 'b')` for an IN list."""
    return "(" + ", ".join(sql_literal(v) for v in values) + ")"


def insert_rows(con, table: str, rows) -> None:
    """Insert `rows` (tuples of one width) in one statement: `executemany` runs one statement per
    row, a few milliseconds each, which an incremental metrics run felt (issue 18)."""
    rows = list(rows)
    if not rows:
        return
    placeholders = "(" + ", ".join("?" * len(rows[0])) + ")"
    con.execute(f"INSERT INTO {table} VALUES " + ", ".join([placeholders] * len(rows)),
                [value for row in rows for value in row])


def bind_variables(con, **values) -> None:
    """Parameters of the SQL files, as DuckDB variables (`getvariable('tz')`): bound, never
    formatted into the text, and folded into the plan as constants."""
    for name, value in values.items():
        if not name.isidentifier():
            raise ValueError(f"not a variable name: {name!r}")
        con.execute(f"SET VARIABLE {name} = ?", [value])


def tables_exist(con, *names: str) -> bool:
    """Every one of `names` is a table of the current schema (one catalog query for all)."""
    existing = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = current_schema() AND NOT temporary").fetchall()}
    return set(names) <= existing


def ensure_views(con, views: dict[str, str], *, rebind: bool = True) -> None:
    """Create the views (name -> SELECT text) of the current schema, or replace them.

    A view is replaced when its text changed since it was created (a hash kept as the view's comment)
    or with `rebind`: a DuckDB view keeps the column types of the tables it read when it was made,
    so after those tables were rebuilt (a full metrics run) it must be made again. Otherwise it is
    left alone: three statements fewer per incremental run."""
    current = dict(con.execute("SELECT view_name, comment FROM duckdb_views() "
                               "WHERE schema_name = current_schema() AND NOT temporary").fetchall())
    for name, select in views.items():
        key = hashlib.sha256(select.encode()).hexdigest()[:32]
        if rebind or current.get(name) != key:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {select}")
            con.execute(f"COMMENT ON VIEW {name} IS '{key}'")


#: one row per set of derived tables: what they were built from, a fingerprint of what was written,
#: and a payload their builder needs back (sla.calendar's bucketing)
DERIVED_SOURCES = "derived_table_sources"


def _tables_fingerprint(con, tables: tuple[str, ...]) -> str:
    """Row count and order-free hash of every row of `tables`, in one statement."""
    parts = ", ".join(f"(SELECT count(*)::VARCHAR || ':' || coalesce(sum(hash(t))::VARCHAR, '') FROM {name} t)"
                      for name in tables)
    return "|".join(con.execute(f"SELECT {parts}").fetchall()[0])


def derived_tables_current(con, name: str, source_key: str, tables: tuple[str, ...]) -> str | None:
    """The stored payload when `tables` were last written from `source_key` (by
    `record_derived_tables`) and are unchanged since, else None: the caller rebuilds them."""
    if not tables_exist(con, DERIVED_SOURCES, *tables):
        return None
    rows = con.execute(f"SELECT content_fp, payload FROM {DERIVED_SOURCES} WHERE name = ? AND source_key = ?",
                       [name, source_key]).fetchall()
    if len(rows) != 1 or rows[0][0] != _tables_fingerprint(con, tables):
        return None
    return rows[0][1]


def record_derived_tables(con, name: str, source_key: str, tables: tuple[str, ...], payload: str = "") -> None:
    """Remember that `tables` were just written from `source_key` (see derived_tables_current)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {DERIVED_SOURCES} (name VARCHAR, source_key VARCHAR, "
                "content_fp VARCHAR, payload VARCHAR)")
    con.execute(f"DELETE FROM {DERIVED_SOURCES} WHERE name = ?", [name])
    con.execute(f"INSERT INTO {DERIVED_SOURCES} VALUES (?, ?, ?, ?)",
                [name, source_key, _tables_fingerprint(con, tables), payload])
