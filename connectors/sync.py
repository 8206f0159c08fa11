"""Incremental sync machinery shared by the API connectors.

Raw records as received are kept in the warehouse, one row per object:

    src_records(source, kind, record_id, parent_id, updated_at, payload JSON)

keyed by (source, kind, record_id) and upserted, so a rerun or an overlapping fetch never
duplicates. A parent fetched again with its whole history (`replace_children`) has its child
records replaced, so history rows that vanished upstream do not linger.

    sync_cursors(source, cursor, updated_at)

holds each source's high-water mark (an ISO UTC instant of the source's own update time). It is
written in the same transaction as the batch it covers and never moves backwards; a run starts
at `cursor - overlap` so late edits (clock skew, updates committed while the previous run was
paging) are seen again. Because every batch is committed whole with its cursor, a sync killed
between pages and run again gives exactly the warehouse of one clean run.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pyarrow as pa

from connectors.csv_export import EXPORT_FILES, FileSpec, drop_staged, rejected_rows_sql, stage_file
from connectors.http import ConnectorError, _safe_url
from sla.db import scalar
from sla.ingest import EXCLUSION_METRICS
from sla.sources import ExportError, TicketSource

Progress = Callable[[str], None]

DDL = (
    """CREATE TABLE IF NOT EXISTS src_records (
        source VARCHAR NOT NULL, kind VARCHAR NOT NULL, record_id VARCHAR NOT NULL,
        parent_id VARCHAR, updated_at VARCHAR, payload JSON)""",
    """CREATE TABLE IF NOT EXISTS sync_cursors (
        source VARCHAR NOT NULL, cursor VARCHAR, updated_at TIMESTAMPTZ)""",
)

UTC = dt.timezone.utc


def iso_utc(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str | None) -> dt.datetime | None:
    """An ISO 8601 instant (Z or offset); None for empty or unparsable text."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    # Years 1 and 9999 are refused (fuzzing: a server's `0001-01-01T00:00:00+14:00` or
    # `9999-12-31T23:59:59-14:00` overflowed when converted to UTC or moved back by the overlap).
    if not value.tzinfo or not 1 < value.year < 9999:
        return None
    return value


def latest(stamps: Iterable) -> str | None:
    """The latest of some instants as received (ISO text; anything else is ignored), as ISO UTC.

    A cursor is compared as text: a raw max() of what the server sent let garbage ("zzz") or a
    non-string (TypeError) win; found by fuzzing.
    """
    values = [v for v in (parse_instant(s) for s in stamps if isinstance(s, str)) if v is not None]
    return iso_utc(max(values)) if values else None


def epoch_instant(value) -> str | None:
    """Unix seconds (Zendesk `end_time`, `generated_timestamp`) as ISO UTC; None when unusable."""
    try:
        return iso_utc(dt.datetime.fromtimestamp(int(value), UTC)) if value else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


# ---- what a server sent: checked once, so a malformed page fails with one clear line -------------
# (fuzzing found KeyError/TypeError/AttributeError tracebacks on pages that are not objects,
# lists that are not lists and records without an id). A record that cannot be keyed is neither
# invented a key nor skipped: the sync stops with a ConnectorError naming what was wrong.

def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def page_object(source: str, data, what: str) -> dict:
    """A response body that must be a JSON object."""
    if not isinstance(data, dict):
        raise ConnectorError(f"{source}: the server sent a {what} that is not a JSON object: {_shown(data)}")
    return data


def page_list(source: str, data, key: str, what: str) -> list:
    """The list `key` of a page (missing or null: empty)."""
    value = page_object(source, data, what).get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConnectorError(f"{source}: `{key}` of the {what} is not a list: {_shown(value)}")
    return value


def record_key(source: str, obj, what: str, key: str = "id", integer: bool = False) -> str:
    """The id of a record as text: a JSON integer or a non-blank string (`integer`: digits that
    fit a BIGINT, for ids the staging casts)."""
    value = page_object(source, obj, what).get(key)
    ok = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and bool(value.strip()))
    if ok and integer:
        ok = re.fullmatch(r"[0-9]{1,18}", str(value)) is not None  # not \d: it takes other scripts' digits
    if not ok:
        raise ConnectorError(f"{source}: the server sent a {what} without a usable {key}: {_shown(value)}")
    return str(value)


def next_link(source: str, value, what: str) -> str | None:
    """A next-page link or token: text, or None when there is none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConnectorError(f"{source}: the next-page link of the {what} is not text: {_shown(value)}")
    return value


def as_dict(value) -> dict:
    """An optional nested object (`meta`, `links`, `fields`, `Creator`...); anything else counts as absent."""
    return value if isinstance(value, dict) else {}


def as_text(value) -> str | None:
    """An optional text field; anything else (a number, a list...) counts as absent."""
    return value if isinstance(value, str) and value else None


class PageTrail:
    """The pages one paging loop has read: a link back to one of them would loop for ever
    (fuzzing: a next-page link or token pointing to a page already read hung the sync)."""

    def __init__(self, source: str, what: str):
        self.source, self.what, self.seen = source, what, set()

    def visit(self, page: str) -> None:
        if page in self.seen:
            raise ConnectorError(f"{self.source}: the server's next page of {self.what} is one already read "
                                 f"({_safe_url(page)}); stopping instead of looping")
        self.seen.add(page)


def _colon_offset(text: str) -> str:
    import re

    return re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text.strip())


@dataclass(frozen=True)
class Record:
    kind: str
    record_id: str
    payload: dict
    parent_id: str | None = None
    updated_at: str | None = None


@dataclass
class SyncResult:
    source: str
    pages: int = 0
    records: int = 0
    parents: set[str] = field(default_factory=set)  # tickets (re)fetched in this run
    created: set[str] = field(default_factory=set)  # their creation instants (as the source wrote them)
    cursor: str | None = None

    def changed_months(self, timezone: str = "Europe/Berlin") -> list[str]:
        """Local months (YYYY-MM) of creation of the tickets this run fetched: the months to refresh."""
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(timezone)
        months = set()
        for text in self.created:
            value = parse_instant(_colon_offset(text))
            if value is not None and value.year > 1970:
                months.add(value.astimezone(tz).strftime("%Y-%m"))
        return sorted(months)

    def summary(self) -> str:
        return (f"{self.source}: {self.pages} page(s), {self.records} record(s) stored, "
                f"{len(self.parents)} ticket(s) updated; cursor {self.cursor or '(none)'}")


def ensure_schema(con) -> None:
    for ddl in DDL:
        con.execute(ddl)


class SyncStore:
    """The raw-record store and cursor of one source in the warehouse."""

    def __init__(self, con, source: str, stream: str | None = None):
        self.con = con
        self.source = source
        #: the cursor's key: one per source, or per source and stream ("zendesk/users")
        self.key = source if not stream else f"{source}/{stream}"
        ensure_schema(con)

    def cursor(self) -> str | None:
        return scalar(self.con, "SELECT cursor FROM sync_cursors WHERE source = ?", [self.key])

    def since(self, overlap: dt.timedelta) -> dt.datetime | None:
        """Where a run starts: the stored cursor minus the overlap (None: from the beginning)."""
        value = parse_instant(self.cursor())
        return None if value is None else value - overlap

    def commit(self, records: Iterable[Record], *, cursor: str | None = None,
               replace_children: Iterable[tuple[str, str]] = ()) -> int:
        """Upsert a batch and advance the cursor, in one transaction. Returns the records written.

        `replace_children`: (child kind, parent id) pairs whose stored children are deleted first
        (the batch carries the parent's complete set of such children).
        """
        rows = {}
        for r in records:  # the last copy of a key in a batch wins
            rows[(r.kind, str(r.record_id))] = r
        kinds, ids, parents, updated, payloads = [], [], [], [], []
        for (kind, rid), r in sorted(rows.items()):
            kinds.append(kind)
            ids.append(rid)
            parents.append(None if r.parent_id is None else str(r.parent_id))
            # the server's update time is informational; a non-text one (fuzzing: a number, a list)
            # made the string column fail
            updated.append(r.updated_at if isinstance(r.updated_at, str) else None)
            payloads.append(json.dumps(r.payload, ensure_ascii=False, sort_keys=True))
        batch = pa.table({"kind": pa.array(kinds, pa.string()), "record_id": pa.array(ids, pa.string()),
                          "parent_id": pa.array(parents, pa.string()), "updated_at": pa.array(updated, pa.string()),
                          "payload": pa.array(payloads, pa.string())})
        replaced = sorted({(k, str(p)) for k, p in replace_children})
        children = pa.table({"kind": pa.array([k for k, _ in replaced], pa.string()),
                             "parent_id": pa.array([p for _, p in replaced], pa.string())})
        con = self.con
        con.register("_sync_batch", batch)
        con.register("_sync_children", children)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                """DELETE FROM src_records s WHERE s.source = ? AND EXISTS (
                       SELECT 1 FROM _sync_children c WHERE c.kind = s.kind AND c.parent_id = s.parent_id)""",
                [self.source])
            con.execute(
                """DELETE FROM src_records s WHERE s.source = ? AND EXISTS (
                       SELECT 1 FROM _sync_batch b WHERE b.kind = s.kind AND b.record_id = s.record_id)""",
                [self.source])
            con.execute(
                """INSERT INTO src_records SELECT ?, kind, record_id, parent_id, updated_at, CAST(payload AS JSON)
                   FROM _sync_batch""", [self.source])
            if cursor is not None:
                old = self.cursor()
                new = cursor if old is None else max(old, cursor)
                con.execute("DELETE FROM sync_cursors WHERE source = ?", [self.key])
                con.execute("INSERT INTO sync_cursors VALUES (?, ?, now())", [self.key, new])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_sync_batch")
            con.unregister("_sync_children")
        return len(kinds)

    def known_ids(self, kind: str) -> set[str]:
        return {r[0] for r in self.con.execute(
            "SELECT record_id FROM src_records WHERE source = ? AND kind = ?", [self.source, kind]).fetchall()}


# ---- staging helpers shared by the API connectors -------------------------------------------

STAGED_TABLES = ("tickets", "ticket_events", "contracts", "invoices", "exclusions")


def reset_staging(con) -> None:
    """Drop staging tables a previous import on this connection may have left."""
    for t in STAGED_TABLES:
        drop_staged(con, f"stg_{t}")
        con.execute(f"DROP TABLE IF EXISTS stg_{t}_malformed")


def stage_contracts(con, contracts_csv: str | Path | None) -> tuple[int, str]:
    """Stage the contracts CSV (API ticket systems know no SLA tiers). Returns (records, label)."""
    if not contracts_csv:
        raise ExportError("no contracts file configured (SLA_CONTRACTS_CSV): API ticket systems know no SLA tiers")
    path = Path(contracts_csv)
    if not path.is_file():
        raise ExportError(f"contracts file not found: {path}")
    base = next(s for s in EXPORT_FILES if s.table == "contracts")
    spec = FileSpec(path.name, "contracts", base.required, base.optional)
    n = stage_file(con, path.parent, spec)
    con.execute("CREATE OR REPLACE TEMP TABLE _lines_stg_contracts AS SELECT * FROM _lines")
    con.execute("CREATE OR REPLACE TEMP TABLE _units_stg_contracts AS SELECT line_no FROM _units")
    for t in ("_records", "_lines_raw", "_lines", "_units", "_malformed_records"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return n, path.name


def exclusion_metric_map(setting: str, mapping: dict[str, str] | None, *, lower: bool = False) -> dict[str, str]:
    """A connector's `{name in the ticket system: metric}` map, metrics checked up front (a typo in
    the settings is a configuration error, not one rejected row per ticket)."""
    out = {}
    for key, metric in (mapping or {}).items():
        key, metric = str(key).strip(), str(metric).strip().lower()
        if not key:
            raise ValueError(f"{setting}: an empty name maps to {metric!r}")
        if metric not in EXCLUSION_METRICS:
            raise ValueError(f"{setting}: {key!r} maps to {metric!r}, expected one of {', '.join(EXCLUSION_METRICS)}")
        out[key.lower() if lower else key] = metric
    return out


def count(con, table: str) -> int:
    return scalar(con, f"SELECT count(*) FROM {table}")


class ApiTicketSource(TicketSource):
    """A ticket system behind an HTTP API: tickets come with `raw`, contracts from a CSV file."""

    def rejected_rows_sql(self, con, stg: str, rejected: str) -> str:
        return rejected_rows_sql(con, stg, rejected)  # the contracts CSV, quoted from its file

    def finish_staging(self, con, scratch_tables: Iterable[str], *, exclusions: bool = False) -> dict[str, int]:
        """The end of every API connector's `stage`: drop its scratch tables, stage the contracts
        CSV and return the staged counts (with `exclusions` when the connector staged them)."""
        for table in scratch_tables:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        contracts, label = stage_contracts(con, self.contracts_csv)
        self.labels = {**self.labels, "contracts": label}
        staged = {"tickets": count(con, "stg_tickets"), "ticket_events": count(con, "stg_ticket_events"),
                  "contracts": contracts}
        if exclusions:
            staged["exclusions"] = count(con, "stg_exclusions")
        return staged
