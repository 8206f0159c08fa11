"""Canonical import: every bad row lands in `rejects` with a reason naming field and value;
rows in = accepted + rejected, per file; BOM, CRLF and quoted newlines are normal input."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from connectors.csv_export import CsvExportSource
from sla.policy import load_policy
from sla.sources import ExportError
from sla.steps import import_source
from tests.helpers import HEADERS, write_export

POLICY = load_policy()
CONTRACT = ("C1", "Acme", "gold", "2025-01-01", "", "am@vendor.example")


def load(folder):
    con = duckdb.connect()
    counts = {c.source: c for c in import_source(con, CsvExportSource(folder), POLICY)}
    rejects = con.execute("SELECT source, line, reason, raw FROM rejects ORDER BY source, line").fetchall()
    return con, counts, rejects


def write_raw(folder, name, text: bytes | str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(text.encode("utf-8") if isinstance(text, str) else text)


def minimal(folder, tickets_text: str | bytes | None = None, events_text: str | bytes | None = None,
            contracts_text: str | None = None):
    write_export(folder, [], [], [CONTRACT])
    if tickets_text is not None:
        write_raw(folder, "tickets.csv", tickets_text)
    if events_text is not None:
        write_raw(folder, "ticket_events.csv", events_text)
    if contracts_text is not None:
        write_raw(folder, "contracts.csv", contracts_text)
    return folder


T_HEAD = ",".join(HEADERS["tickets.csv"])
E_HEAD = ",".join(HEADERS["ticket_events.csv"])
C_HEAD = ",".join(HEADERS["contracts.csv"])


def test_bom_crlf_and_quoted_newlines_are_accepted_with_exact_line_numbers(tmp_path):
    tickets = ("\ufeff" + T_HEAD + "\r\n"
               'T1,C1,"two\r\nlines, and ""quotes""",1,2026-03-02T10:00:00+01:00,email\r\n'
               "T2,C1,plain,2,2026-03-02T11:00:00Z,web\r\n"
               "T3,C1,bad,9,2026-03-02T11:00:00Z,web\r\n")
    con, counts, rejects = load(minimal(tmp_path, tickets))
    assert counts["tickets.csv"].rows_in == 3 and counts["tickets.csv"].accepted == 2
    subject = con.execute("SELECT subject FROM tickets WHERE ticket_id = 'T1'").fetchall()[0][0]
    assert subject.replace("\r\n", "\n") == 'two\nlines, and "quotes"'
    # T1 spans lines 2-3, so T3 is on line 5
    assert rejects == [("tickets.csv", 5, "severity '9' is not one of 1, 2, 3, 4", "T3,C1,bad,9,2026-03-02T11:00:00Z,web")]


# one bad row per case: (file, row, expected reason fragment)
TICKET_CASES = [
    ("T9,C1,s,1,2026-03-02T10:00:00,web", "created_at '2026-03-02T10:00:00' has no UTC offset"),
    ("T9,C1,s,1,2026-03-02 10:00,web", "created_at '2026-03-02 10:00' has no UTC offset"),
    ("T9,C1,s,1,2026-02-30T10:00:00Z,web", "created_at '2026-02-30T10:00:00Z' is not an ISO 8601 timestamp"),
    ("T9,C1,s,1,2026-03-02T25:00:00Z,web", "is not an ISO 8601 timestamp"),
    ("T9,C1,s,1,yesterday,web", "created_at 'yesterday' is not an ISO 8601 timestamp"),
    ("T9,C1,s,1,,web", "created_at is empty"),
    ("T9,C1,s,5,2026-03-02T10:00:00Z,web", "severity '5' is not one of 1, 2, 3, 4"),
    ("T9,C1,s,high,2026-03-02T10:00:00Z,web", "severity 'high' is not one of 1, 2, 3, 4"),
    ("T9,C1,s,,2026-03-02T10:00:00Z,web", "severity is empty (expected one of 1, 2, 3, 4)"),
    (",C1,s,1,2026-03-02T10:00:00Z,web", "ticket_id is empty"),
    ("T9,,s,1,2026-03-02T10:00:00Z,web", "customer_id is empty"),
    ("T9,C1,s,1,2026-03-02T10:00:00Z,web,extra", "malformed CSV record"),
    ("T9,C1,s,1", "malformed CSV record"),
]


@pytest.mark.parametrize("row, reason", TICKET_CASES)
def test_bad_ticket_rows(tmp_path, row, reason):
    con, counts, rejects = load(minimal(tmp_path, f"{T_HEAD}\nT1,C1,ok,1,2026-03-02T10:00:00Z,web\n{row}\n"))
    assert len(rejects) == 1 and rejects[0][1] == 3 and reason in rejects[0][2], rejects
    assert rejects[0][3] == row  # the record as received
    c = counts["tickets.csv"]
    assert (c.rows_in, c.accepted, c.rejected) == (2, 1, 1)


EVENT_CASES = [
    ("T1,2026-03-02T11:00:00,reply,agent,", "occurred_at '2026-03-02T11:00:00' has no UTC offset"),
    ("T1,2026-03-02T11:00:00Z,note,agent,", "kind 'note' is not one of reply, status, severity"),
    ("T1,2026-03-02T11:00:00Z,reply,robot,", "reply actor 'robot' is not one of agent, customer, system"),
    ("T1,2026-03-02T11:00:00Z,status,a1,escalated", "status value 'escalated' is not one of new, open"),
    ("T1,2026-03-02T11:00:00Z,severity,a1,0", "severity value '0' is not one of 1, 2, 3, 4"),
    ("T7,2026-03-02T11:00:00Z,reply,agent,", "ticket_id 'T7' is not an accepted ticket"),
    ("T1,2026-03-02T09:59:59Z,reply,agent,", "occurred_at '2026-03-02T09:59:59Z' is before the ticket's created_at"),
]


@pytest.mark.parametrize("row, reason", EVENT_CASES)
def test_bad_event_rows(tmp_path, row, reason):
    folder = minimal(tmp_path, f"{T_HEAD}\nT1,C1,ok,1,2026-03-02T10:00:00Z,web\n",
                     f"{E_HEAD}\nT1,2026-03-02T10:30:00Z,reply,agent,\n{row}\n")
    con, counts, rejects = load(folder)
    assert [(r[0], r[1]) for r in rejects] == [("ticket_events.csv", 3)] and reason in rejects[0][2], rejects
    c = counts["ticket_events.csv"]
    assert (c.rows_in, c.accepted, c.rejected) == (2, 1, 1)


def test_identical_duplicates_count_once_conflicting_ones_are_all_rejected(tmp_path):
    tickets = (f"{T_HEAD}\n"
               "T1,C1,same,1,2026-03-02T10:00:00Z,web\n"
               "T1,C1,same,1,2026-03-02T10:00:00Z,web\n"
               "T2,C1,first,1,2026-03-02T10:00:00Z,web\n"
               "T2,C1,second,1,2026-03-02T10:00:00Z,web\n")
    events = f"{E_HEAD}\nT2,2026-03-02T11:00:00Z,reply,agent,\nT1,2026-03-02T11:00:00Z,reply,agent,\nT1,2026-03-02T11:00:00Z,reply,agent,\n"
    con, counts, rejects = load(minimal(tmp_path, tickets, events))
    assert con.execute("SELECT ticket_id FROM tickets").fetchall() == [("T1",)]
    assert con.execute("SELECT count(*) FROM ticket_events").fetchall()[0][0] == 1
    assert [(r[0], r[1]) for r in rejects] == [("ticket_events.csv", 2), ("tickets.csv", 4), ("tickets.csv", 5)]
    assert "ticket_id 'T2' appears with different values on lines 4, 5" in rejects[1][2]
    t = counts["tickets.csv"]
    assert (t.rows_in, t.accepted, t.rejected, t.duplicates_collapsed) == (4, 2, 2, 1)


def test_bad_contracts(tmp_path):
    contracts = (f"{C_HEAD}\n"
                 "C1,Acme,gold,2025-01-01,,am@x\n"
                 "C2,Beta,platinum,2025-01-01,,am@x\n"
                 "C3,Gamma,gold,2026-01-01,2025-12-31,am@x\n"
                 "C4,Delta,gold,2025-01-01,2025-12-31,am@x\n"
                 "C4,Delta,enterprise,2025-12-01,,am@x\n"
                 "C5,Eps,gold,01.01.2025,,am@x\n"
                 "C6,Zeta,gold,2025-01-01,2025-06-30,am@x\n"
                 "C6,Zeta,enterprise,2025-07-01,,am@x\n")
    con, counts, rejects = load(minimal(tmp_path, contracts_text=contracts))
    reasons = {r[1]: r[2] for r in rejects}
    assert reasons == {
        3: "tier 'platinum' is not one of professional, enterprise, gold",
        4: "valid_to '2025-12-31' is before valid_from '2026-01-01'",
        5: "contract of customer_id 'C4' overlaps the contract(s) on line 6",
        6: "contract of customer_id 'C4' overlaps the contract(s) on line 5",
        7: "valid_from '01.01.2025' is not a date (YYYY-MM-DD)",
    }
    assert sorted(r[0] for r in con.execute("SELECT customer_id FROM contracts").fetchall()) == ["C1", "C6", "C6"]


def test_invalid_utf8_row_is_rejected_not_fatal(tmp_path):
    tickets = (T_HEAD + "\nT1,C1,ok,1,2026-03-02T10:00:00Z,web\n").encode() + b"T2,C1,caf\xe9,1,2026-03-02T10:00:00Z,web\n"
    con, counts, rejects = load(minimal(tmp_path, tickets))
    assert [(r[0], r[1]) for r in rejects] == [("tickets.csv", 3)]
    assert "utf-8" in rejects[0][2].lower() or "unicode" in rejects[0][2].lower()


def test_extra_columns_are_ignored_and_formula_text_kept_verbatim(tmp_path):
    tickets = f"{T_HEAD},priority_label\nT1,C1,=HYPERLINK(\"http://x\"),1,2026-03-02T10:00:00Z,web,P1\n"
    con, counts, rejects = load(minimal(tmp_path, tickets))
    assert rejects == []
    assert con.execute("SELECT subject FROM tickets").fetchall() == [('=HYPERLINK("http://x")',)]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda f: (f / "tickets.csv").unlink(), "tickets.csv not found"),
        (lambda f: (f / "tickets.csv").write_text(""), "tickets.csv is empty"),
        (lambda f: (f / "tickets.csv").write_text("ticket_id,customer_id,subject\n"), "missing column(s) severity, created_at, channel"),
        (lambda f: (f / "contracts.csv").write_text("customer_id,customer_id\n"), "contracts.csv: missing column(s)"),
    ],
)
def test_unreadable_exports_give_one_clear_error(tmp_path, setup, message):
    folder = minimal(tmp_path)
    setup(folder)
    with pytest.raises(ExportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(ExportError, match="export folder not found"):
        load(tmp_path / "nope")


def test_invoices_are_optional_and_validated(tmp_path):
    folder = write_export(tmp_path, [], [], [CONTRACT], invoices=[
        ("I1", "C1", "2026-01-05", "2026-01-01", "2026-12-31", "17988.00"),
        ("I2", "C1", "2026-01-05", "2026-12-31", "2026-01-01", "17988.00"),
        ("I3", "C1", "2026-01-05", "2026-01-01", "2026-12-31", "17.988,00"),
    ])
    con, counts, rejects = load(folder)
    assert [r[2] for r in rejects] == ["period_end '2026-01-01' is before period_start '2026-12-31'",
                                       "amount_eur '17.988,00' is not a decimal amount like 17988.00"]
    assert con.execute("SELECT invoice_id, amount_eur FROM invoices").fetchall()[0][0] == "I1"
    (folder / "invoices.csv").unlink()
    con, counts, rejects = load(folder)
    assert "invoices.csv" not in counts


def test_reimport_replaces_rather_than_duplicates(tmp_path):
    folder = write_export(tmp_path, [("T1", "C1", "s", 1, "2026-03-02T10:00:00Z", "web")], [], [CONTRACT])
    con = duckdb.connect()
    for _ in range(2):
        import_source(con, CsvExportSource(folder), POLICY)
    assert con.execute("SELECT count(*) FROM tickets").fetchall()[0][0] == 1


def test_sub_second_timestamps_are_truncated(tmp_path):
    folder = write_export(tmp_path, [("T1", "C1", "s", 1, "2026-03-02T10:00:00.75+00:00", "web")], [], [CONTRACT])
    con, counts, rejects = load(folder)
    assert con.execute("SELECT created_at FROM tickets").fetchall()[0][0] == dt.datetime(2026, 3, 2, 10, tzinfo=dt.timezone.utc)
