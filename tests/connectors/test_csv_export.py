"""Edges of reading the canonical export that once ended badly (issue: reliability leftovers)."""

from __future__ import annotations

import duckdb
import pytest

from connectors.csv_export import CsvExportSource
from sla.policy import load_policy
from sla.sources import ExportError
from sla.steps import import_source
from tests.helpers import HEADERS, write_export

POLICY = load_policy()
CONTRACT = ("C1", "Acme", "gold", "2025-01-01", "", "am@vendor.example")
T_HEAD = ",".join(HEADERS["tickets.csv"])


def _import(folder, *, fast_path: bool = True):
    con = duckdb.connect()
    import_source(con, CsvExportSource(folder, fast_path=fast_path), POLICY)
    return con


def test_lone_cr_line_ends_give_one_line_error(tmp_path):
    write_export(tmp_path, [], [], [CONTRACT])
    # old Mac line ends: before, csv.reader raised an uncaught `_csv.Error`
    (tmp_path / "tickets.csv").write_bytes((T_HEAD + "\rT1,C1,x,1,2026-03-02T10:00:00Z,web\r").encode())
    with pytest.raises(ExportError, match="lone CR") as exc:
        _import(tmp_path)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("fast_path", [True, False])
def test_rejected_multi_line_last_record_is_quoted_whole(tmp_path, fast_path):
    write_export(tmp_path, [], [], [CONTRACT])
    # the last record spans lines 3-5 and is rejected (severity 9): the raw text must hold all
    # three lines, not only the first (the exact line-numbering path used to stop at line 3)
    last = 'T2,C1,"first\nsecond\nthird",9,2026-03-02T11:00:00Z,web'
    (tmp_path / "tickets.csv").write_text(T_HEAD + "\nT1,C1,ok,1,2026-03-02T10:00:00Z,web\n" + last + "\n")
    con = _import(tmp_path, fast_path=fast_path)
    line, raw = con.execute("SELECT line, raw FROM rejects WHERE source = 'tickets.csv'").fetchall()[0]
    assert line == 3 and raw == last
