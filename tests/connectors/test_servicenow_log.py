"""ServiceNow incident log -> canonical export (connectors/servicenow_log.py).

Runs against the real log when it is present (skipped otherwise), plus a tiny
synthetic log that pins each quirk rule.  See docs/real-data.md.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from connectors.servicenow_log import SOURCE_COLUMNS, servicenow_to_canonical
from tests.helpers import shared_data

REAL = shared_data("real", "servicenow-incident-log", "incident_event_log.csv.gz")
needs_real = pytest.mark.skipif(not REAL.is_file(), reason="real ServiceNow log not available")

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
STATUSES = {"new", "open", "pending", "on_hold", "solved", "closed"}
RESOLVED = {"solved", "closed"}
TIERS = {"professional", "enterprise", "gold"}
TABLES = ("tickets.csv", "ticket_events.csv", "contracts.csv")


def read(out: Path, name: str) -> list[dict[str, str]]:
    with open(out / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def ts(value: str) -> datetime:
    assert ISO.match(value), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def check_identities(c: dict[str, int]) -> None:
    assert c["source_rows"] == c["rows_without_number"] + c["rows_not_selected"] + c["selected_rows"]
    assert c["selected_rows"] == c["rows_dropped_bad_update"] + c["rows_dropped_with_incident"] + c["rows_mapped"]
    assert c["rows_mapped"] == c["rows_with_events"] + c["rows_without_events"]
    assert c["source_incidents"] == c["incidents_not_selected"] + c["selected_incidents"]
    assert c["selected_incidents"] == (c["tickets_written"] + c["incidents_dropped_no_valid_update"]
                                       + c["incidents_dropped_no_opened_at"] + c["incidents_dropped_no_priority"]
                                       + c["incidents_dropped_no_location"])
    assert c["events_written"] == c["reply_events"] + c["status_events"] + c["severity_events"]
    assert c["contracts_written"] == c["contracts_professional"] + c["contracts_enterprise"] + c["contracts_gold"]
    assert all(isinstance(v, int) and v >= 0 for v in c.values())


def check_output(out: Path, c: dict[str, int]) -> None:
    """Invariants every output must satisfy."""
    tickets = read(out, "tickets.csv")
    events = read(out, "ticket_events.csv")
    contracts = read(out, "contracts.csv")
    assert list(tickets[0]) == ["ticket_id", "customer_id", "subject", "severity", "created_at", "channel"]
    assert list(events[0]) == ["ticket_id", "occurred_at", "kind", "actor", "value"]
    assert list(contracts[0]) == ["customer_id", "customer_name", "tier", "valid_from", "valid_to",
                                  "account_manager"]
    assert len(tickets) == c["tickets_written"]
    assert len(events) == c["events_written"]
    assert len(contracts) == c["contracts_written"]

    created = {}
    for t in tickets:
        assert t["ticket_id"] not in created
        created[t["ticket_id"]] = ts(t["created_at"])
        assert t["severity"] in {"1", "2", "3", "4"}
        assert t["subject"] and t["customer_id"].startswith("LOC-")
        assert t["channel"] in {"email", "chat", "phone", "video", "web"}

    by_ticket: dict[str, list[dict[str, str]]] = defaultdict(list)
    for e in events:
        assert e["ticket_id"] in created, e
        when = ts(e["occurred_at"])
        assert when >= created[e["ticket_id"]], e
        if e["kind"] == "status":
            assert e["value"] in STATUSES, e
        elif e["kind"] == "severity":
            assert e["value"] in {"1", "2", "3", "4"}, e
        else:
            assert e["kind"] == "reply" and e["actor"] == "agent" and e["value"] == "", e
        by_ticket[e["ticket_id"]].append(e)

    sev = {t["ticket_id"]: t["severity"] for t in tickets}
    for tid, evs in by_ticket.items():
        times = [ts(e["occurred_at"]) for e in evs]
        assert times == sorted(times), tid  # file order = time order = sys_mod_count order
        statuses = [e["value"] for e in evs if e["kind"] == "status"]
        assert all(a != b for a, b in zip(statuses, statuses[1:])), tid  # only changes
        current = sev[tid]
        for e in evs:
            if e["kind"] == "severity":
                assert e["value"] != current, tid
                current = e["value"]
        replies = [i for i, e in enumerate(evs) if e["kind"] == "reply"]
        first_out_of_new = next((i for i, e in enumerate(evs) if e["kind"] == "status" and e["value"] != "new"),
                                None)
        if first_out_of_new is None:
            assert replies == [], tid
        else:  # one derived reply, just before the first status change out of New
            assert replies == [first_out_of_new - 1], tid
            assert evs[first_out_of_new - 1]["occurred_at"] == evs[first_out_of_new]["occurred_at"]

    customers = {t["customer_id"] for t in tickets}
    contract_of = {k["customer_id"]: k for k in contracts}
    assert len(contract_of) == len(contracts)
    assert customers == set(contract_of)
    first_day = min(created.values()).date() if created else None
    for k in contracts:
        assert k["tier"] in TIERS
        assert k["valid_to"] == ""
        assert k["customer_name"] == "Location " + k["customer_id"].removeprefix("LOC-")
        assert "@" in k["account_manager"]
        assert date.fromisoformat(k["valid_from"]) < first_day


# ---------------------------------------------------------------- real file

@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("sn_full")
    return out, servicenow_to_canonical(REAL, out)


@needs_real
def test_full_file_counts_conserve_and_are_pinned(full):
    out, c = full
    check_identities(c)
    assert c["source_rows"] == 141_712 and c["source_incidents"] == 24_918
    assert c["incidents_not_selected"] == 0
    # the six incidents whose location is '?' in every update
    assert c["incidents_dropped_no_location"] == 6 and c["rows_dropped_with_incident"] == 24
    assert c["tickets_written"] == 24_912
    assert c["rows_clamped_to_opened_at"] == 5
    assert c["rows_unknown_state"] == 5          # ident_state '-100'
    assert c["rows_duplicate_mod_count"] == 10   # five pairs share a sys_mod_count
    assert c["rows_updated_at_in_dst_gap"] == 4
    assert c["contracts_written"] == 224


@needs_real
def test_full_file_output_invariants(full):
    out, c = full
    check_output(out, c)


@needs_real
def test_full_file_has_reopenings_and_priority_changes(full):
    out, c = full
    assert c["reopen_events"] > 0 and c["severity_events"] > 0
    by_ticket = defaultdict(list)
    for e in read(out, "ticket_events.csv"):
        if e["kind"] == "status":
            by_ticket[e["ticket_id"]].append(e["value"])
    reopened = {t for t, s in by_ticket.items() for a, b in zip(s, s[1:]) if a == "solved" and b == "open"}
    assert len(reopened) > 100
    assert c["tickets_reopened"] >= len(reopened)
    sev_changes = [e for e in read(out, "ticket_events.csv") if e["kind"] == "severity"]
    assert len(sev_changes) == c["severity_events"] > 100


@needs_real
def test_full_file_tier_split_is_roughly_50_35_15(full):
    _, c = full
    n = c["contracts_written"]
    assert 0.40 < c["contracts_professional"] / n < 0.60
    assert 0.25 < c["contracts_enterprise"] / n < 0.45
    assert 0.08 < c["contracts_gold"] / n < 0.22


@needs_real
def test_limit_is_a_sorted_prefix_and_deterministic(tmp_path, full):
    full_out, _ = full
    a, b = tmp_path / "a", tmp_path / "b"
    ca = servicenow_to_canonical(REAL, a, limit_incidents=500)
    cb = servicenow_to_canonical(str(REAL), str(b), limit_incidents=500)
    assert ca == cb
    for name in TABLES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    check_identities(ca)
    check_output(a, ca)
    assert ca["selected_incidents"] == 500 and ca["incidents_not_selected"] == 24_918 - 500
    ids = [t["ticket_id"] for t in read(a, "tickets.csv")]
    all_ids = [t["ticket_id"] for t in read(full_out, "tickets.csv")]
    assert ids == sorted(ids) and all_ids[: len(ids)] == ids
    # a subset maps each incident exactly as the full run does
    full_events = [e for e in read(full_out, "ticket_events.csv") if e["ticket_id"] <= ids[-1]]
    assert read(a, "ticket_events.csv") == full_events


@needs_real
def test_full_run_is_deterministic(tmp_path, full):
    full_out, c = full
    again = tmp_path / "again"
    assert servicenow_to_canonical(REAL, again) == c
    for name in TABLES:
        assert (again / name).read_bytes() == (full_out / name).read_bytes(), name


@needs_real
def test_source_timezone_is_applied(tmp_path):
    utc, berlin = tmp_path / "utc", tmp_path / "berlin"
    servicenow_to_canonical(REAL, utc, source_timezone="UTC", limit_incidents=50)
    servicenow_to_canonical(REAL, berlin, limit_incidents=50)
    tu, tb = read(utc, "tickets.csv"), read(berlin, "tickets.csv")
    assert tu[0]["created_at"] == "2016-02-29T01:16:00+00:00"
    assert tb[0]["created_at"] == "2016-02-29T01:16:00+01:00"
    assert all(t["created_at"].endswith("+00:00") for t in tu)
    with pytest.raises(ValueError, match="source_timezone"):
        servicenow_to_canonical(REAL, tmp_path / "x", source_timezone="Mars/Olympus_Mons")


# ---------------------------------------------------------- synthetic quirks

def write_log(path: Path, rows: list[dict[str, str]]) -> Path:
    header = ["category" if c == "subcategory" else c for c in SOURCE_COLUMNS]
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(c, "?") for c in SOURCE_COLUMNS])
    return path


def row(number, mod, state, updated, opened="1/3/2016 10:00", priority="3", location="7", **kw):
    base = dict(number=number, sys_mod_count=str(mod), ident_state=state, sys_updated_at=updated,
                opened_at=opened, priority=priority, location=location, contact_type="Self service",
                category="5", subcategory="6", u_symptom="?", sys_updated_by="42")
    base.update(kw)
    return base


@pytest.fixture()
def synthetic(tmp_path):
    rows = [
        # A: update before opened_at (clamped), duplicate mod count, -100 state,
        #    priority change, vendor->problem (both on_hold: no event), reopen.
        row("0000001", 0, "New", "1/3/2016 09:30"),                 # before opened 10:00 -> clamp
        row("0000001", 1, "New", "1/3/2016 10:05"),                 # no change: no event
        row("0000001", 2, "Active", "1/3/2016 11:00"),              # reply + open
        row("0000001", 2, "Active", "1/3/2016 10:50", priority="2"),  # dup mod, earlier time -> first
        row("0000001", 3, "-100", "1/3/2016 12:00"),                # unknown state: nothing
        row("0000001", 4, "Awaiting Vendor", "1/3/2016 13:00"),
        row("0000001", 5, "Awaiting Problem", "1/3/2016 14:00"),    # on_hold -> on_hold: nothing
        row("0000001", 6, "Resolved", "1/3/2016 15:00"),
        row("0000001", 7, "Active", "2/3/2016 09:00"),              # reopen
        row("0000001", 8, "Resolved", "2/3/2016 10:00"),
        row("0000001", 9, "Closed", "7/3/2016 10:00"),
        # B: location '?' at creation, set later; opened in the DST gap; never leaves New.
        row("0000002", 0, "New", "27/3/2016 02:30", opened="27/3/2016 02:15", location="?",
            contact_type="IVR"),
        row("0000002", 1, "New", "27/3/2016 04:00", location="9", contact_type="IVR"),
        # C: no location at all -> dropped (counted)
        row("0000003", 0, "New", "1/3/2016 10:00", location="?"),
        row("0000003", 1, "Active", "1/3/2016 11:00", location="?"),
        # D: unparseable sys_updated_at -> that row dropped (counted); first state Resolved
        row("0000004", 0, "Resolved", "1/3/2016 10:10"),
        row("0000004", 1, "Closed", "?"),
    ]
    src = write_log(tmp_path / "log.csv.gz", rows)
    out = tmp_path / "out"
    return out, servicenow_to_canonical(src, out)


def test_synthetic_counts(synthetic):
    out, c = synthetic
    check_identities(c)
    check_output(out, c)
    assert c["source_rows"] == 17 and c["source_incidents"] == 4
    assert c["tickets_written"] == 3 and c["incidents_dropped_no_location"] == 1
    assert c["rows_dropped_with_incident"] == 2 and c["rows_dropped_bad_update"] == 1
    assert c["rows_clamped_to_opened_at"] == 1 and c["rows_duplicate_mod_count"] == 2
    assert c["rows_unknown_state"] == 1 and c["rows_updated_at_in_dst_gap"] == 1
    assert c["tickets_opened_at_in_dst_gap"] == 1
    assert c["reopen_events"] == 1 and c["tickets_reopened"] == 1 and c["tickets_without_reply"] == 1


def test_synthetic_events(synthetic):
    out, _ = synthetic
    tickets = {t["ticket_id"]: t for t in read(out, "tickets.csv")}
    assert set(tickets) == {"INC0000001", "INC0000002", "INC0000004"}
    assert tickets["INC0000001"] == {
        "ticket_id": "INC0000001", "customer_id": "LOC-7", "subject": "Category 5 / Subcategory 6",
        "severity": "3", "created_at": "2016-03-01T10:00:00+01:00", "channel": "web"}
    # 02:15 does not exist in Berlin on 2016-03-27: moved forward by the gap
    assert tickets["INC0000002"]["created_at"] == "2016-03-27T03:15:00+02:00"
    assert tickets["INC0000002"]["customer_id"] == "LOC-9" and tickets["INC0000002"]["channel"] == "phone"
    ev = [(e["ticket_id"], e["occurred_at"], e["kind"], e["actor"], e["value"])
          for e in read(out, "ticket_events.csv")]
    assert ev == [
        ("INC0000001", "2016-03-01T10:00:00+01:00", "status", "USR-42", "new"),      # clamped
        ("INC0000001", "2016-03-01T10:50:00+01:00", "reply", "agent", ""),
        ("INC0000001", "2016-03-01T10:50:00+01:00", "status", "USR-42", "open"),
        ("INC0000001", "2016-03-01T10:50:00+01:00", "severity", "USR-42", "2"),
        ("INC0000001", "2016-03-01T11:00:00+01:00", "severity", "USR-42", "3"),
        ("INC0000001", "2016-03-01T13:00:00+01:00", "status", "USR-42", "on_hold"),
        ("INC0000001", "2016-03-01T15:00:00+01:00", "status", "USR-42", "solved"),
        ("INC0000001", "2016-03-02T09:00:00+01:00", "status", "USR-42", "open"),
        ("INC0000001", "2016-03-02T10:00:00+01:00", "status", "USR-42", "solved"),
        ("INC0000001", "2016-03-07T10:00:00+01:00", "status", "USR-42", "closed"),
        ("INC0000002", "2016-03-27T03:30:00+02:00", "status", "USR-42", "new"),
        ("INC0000004", "2016-03-01T10:10:00+01:00", "reply", "agent", ""),
        ("INC0000004", "2016-03-01T10:10:00+01:00", "status", "USR-42", "solved"),
    ]
    assert ts(ev[0][1]) - ts(tickets["INC0000001"]["created_at"]) == timedelta(0)
    assert ts(ev[-1][1]).astimezone(timezone.utc).hour == 9


def test_bad_header_is_rejected(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("number,state\n1,New\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unexpected header"):
        servicenow_to_canonical(bad, tmp_path / "out")


def test_bad_limit_is_rejected(tmp_path):
    src = write_log(tmp_path / "log.csv.gz", [row("0000001", 0, "New", "1/3/2016 10:00")])
    with pytest.raises(ValueError, match="limit_incidents"):
        servicenow_to_canonical(src, tmp_path / "out", limit_incidents=-1)
    c = servicenow_to_canonical(src, tmp_path / "out", limit_incidents=0)
    check_identities(c)
    assert c["tickets_written"] == 0 and c["incidents_not_selected"] == 1


def test_ambiguous_autumn_time_takes_standard_time(tmp_path):
    src = write_log(tmp_path / "log.csv.gz", [
        row("0000009", 0, "New", "30/10/2016 02:30", opened="30/10/2016 02:20"),
        row("0000009", 1, "Active", "30/10/2016 03:10", opened="30/10/2016 02:20"),
    ])
    out = tmp_path / "out"
    c = servicenow_to_canonical(src, out)
    assert c["tickets_opened_at_dst_ambiguous"] == 1 and c["rows_updated_at_dst_ambiguous"] == 1
    assert read(out, "tickets.csv")[0]["created_at"] == "2016-10-30T02:20:00+01:00"
    assert [e["occurred_at"] for e in read(out, "ticket_events.csv")] == [
        "2016-10-30T02:30:00+01:00", "2016-10-30T03:10:00+01:00", "2016-10-30T03:10:00+01:00"]
