"""Small DuckDB helpers shared by the domain layer."""

from __future__ import annotations

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
