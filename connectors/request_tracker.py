"""Request Tracker 5 connector (REST 2.0).

Sync: tickets matching a TicketSQL query, updated since the cursor (minus the overlap), in
`LastUpdated` order, page by page (`/REST/2.0/tickets`, keyset paging on LastUpdated so tickets
updated while we page are neither skipped nor looped on); for each ticket its complete history
(`/ticket/N/history`, paged) and the users it mentions (`/user/NAME`, read as an admin so the
`Organization` is visible). Each page of tickets is committed with its histories and the cursor
in one transaction (`connectors.sync`).

Mapping (stage, set-based in DuckDB):
- ticket: customer = the first requestor's Organization (empty -> rejected "customer_id is
  empty"); created = `Created` (`1970-01-01T00:00:00Z` is RT's null -> rejected as empty);
  channel `email`; severity = the value in force at creation: the first severity change's old
  value, or its new value when the field was empty at creation (first triage counts from
  creation), or the current value when it never changed.
- history: `Correspond` = reply (RT_System -> system, privileged user -> agent, anyone else ->
  customer); `Comment` = internal note, no event; `Status` -> status via `status_map` (default
  new/open, stalled -> pending, resolved -> solved, rejected and deleted -> closed; anything else
  is staged as is and rejected by validation); changes of the Severity custom field (or of
  `Priority`, `severity_source="priority"`) -> severity events via the configurable mapping.
- events of one second keep RT's transaction order (`line` = transaction order).
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import quote

from connectors.http import HttpClient, make_client
from connectors.sync import (
    ApiTicketSource,
    Record,
    SyncResult,
    SyncStore,
    as_dict,
    as_text,
    iso_utc,
    latest,
    page_list,
    page_object,
    parse_instant,
    record_key,
    reset_staging,
)
from sla.db import sql_literal as _lit

DEFAULT_STATUS_MAP = {"new": "new", "open": "open", "stalled": "pending", "resolved": "solved",
                      "rejected": "closed", "deleted": "closed"}
DEFAULT_SEVERITY_MAP = {"1": "1", "2": "2", "3": "3", "4": "4"}
#: priority mode: the first threshold the priority reaches gives the severity
DEFAULT_PRIORITY_THRESHOLDS = ((90, "1"), (70, "2"), (30, "3"), (0, "4"))
TICKET_FIELDS = "Subject,Status,Created,LastUpdated,Requestor,CustomFields,Priority,Queue,Resolved,Creator"
HISTORY_FIELDS = "Type,Field,OldValue,NewValue,Created,Creator"
RT_NULL = "1970-01-01T00:00:00Z"




#: RT's Users.Name column is VARCHAR(200)
RT_MAX_USER_NAME = 200
#: users RT itself acts as; never a customer
RT_SYSTEM_USERS = frozenset({"RT_System", "Nobody"})


class RequestTrackerSource(ApiTicketSource):
    name = "request_tracker"

    def __init__(self, url: str, *, user: str | None = None, password: str | None = None,
                 token: str | None = None, contracts_csv: str | None = None, query: str = "",
                 severity_source: str = "custom_field", severity_field: str = "Severity",
                 severity_map: dict[str, str] | None = None,
                 priority_thresholds=DEFAULT_PRIORITY_THRESHOLDS, status_map: dict[str, str] | None = None,
                 overlap_minutes: float = 10, page_size: int = 50, rt_timezone: str = "UTC",
                 name: str | None = None, client: HttpClient | None = None, **client_options):
        if severity_source not in ("custom_field", "priority"):
            raise ValueError(f"severity_source {severity_source!r}: expected custom_field or priority")
        self.name = name or self.name
        self.url = url.rstrip("/")
        self.contracts_csv = contracts_csv
        self.query = query.strip()
        self.severity_source = severity_source
        self.severity_field = severity_field
        self.severity_map = {str(k): str(v) for k, v in (severity_map or DEFAULT_SEVERITY_MAP).items()}
        self.priority_thresholds = tuple((int(p), str(s)) for p, s in priority_thresholds)
        self.status_map = {**DEFAULT_STATUS_MAP, **(status_map or {})}
        self.overlap = dt.timedelta(minutes=overlap_minutes)
        self.page_size = page_size
        self.rt_timezone = rt_timezone
        self.labels = {"tickets": f"{self.name} tickets", "ticket_events": f"{self.name} events"}
        self._client = client
        self._auth = dict(user=user, password=password, token=token)
        self._client_options = client_options

    # ---- HTTP ---------------------------------------------------------------------------
    def client(self) -> HttpClient:
        if self._client is None:
            a = self._auth
            token = a["token"] or None
            self._client = make_client(
                self.name, self.url + "/REST/2.0/", user=None if token else a["user"],
                password=None if token else a["password"], bearer=token, token_scheme="token",
                credential_hint="SLA_RT_USER / SLA_RT_PASSWORD or SLA_RT_TOKEN", **self._client_options)
        return self._client

    def _ticketsql_time(self, instant: dt.datetime) -> str:
        from zoneinfo import ZoneInfo

        return instant.astimezone(ZoneInfo(self.rt_timezone)).strftime("%Y-%m-%d %H:%M:%S")

    def _history(self, ticket_id: str) -> list[dict]:
        items, page, per_page = [], 1, 100
        while True:
            data = self.client().get_json(f"ticket/{quote(ticket_id, safe='')}/history", params={
                "fields": HISTORY_FIELDS, "per_page": per_page, "page": page})
            got = page_list(self.name, data, "items", "history page")
            items += got
            if len(got) < per_page:
                return items
            page += 1

    def _user(self, name: str, cache: dict) -> dict | None:
        if len(name) > RT_MAX_USER_NAME:  # no such RT user; asking for it only earns an HTTP 414
            return None
        if name not in cache:
            user = self.client().get_json(f"user/{quote(name, safe='@')}")
            cache[name] = None if user is None else page_object(self.name, user, f"user {name!r}")
        return cache[name]

    # ---- sync -----------------------------------------------------------------------------
    def sync(self, con, progress=None) -> SyncResult:
        progress = progress or (lambda _m: None)
        store = SyncStore(con, self.name)
        result = SyncResult(self.name)
        since = store.since(self.overlap)
        progress(f"{self.name}: syncing tickets updated since "
                 f"{iso_utc(since) if since else 'the beginning'} (overlap {self.overlap})")
        base = self.query or "id > 0"
        high = since
        # (id, LastUpdated) pairs already stored in this run. Keyed by the pair, not by the id: a page
        # listing one id twice with two LastUpdated values made a dict flip between them and the sync
        # fetch the same page for ever (found by fuzzing).
        seen: set[tuple[str, str]] = set()
        users: dict[str, dict] = {}
        page = 1
        warned_org = False
        while True:
            query = f"({base}) AND LastUpdated >= {_lit(self._ticketsql_time(high))}" if high else base
            data = self.client().get_json("tickets", params=[
                ("query", query), ("orderby", "LastUpdated"), ("order", "ASC"), ("orderby", "id"),
                ("order", "ASC"), ("page", page), ("per_page", self.page_size), ("fields", TICKET_FIELDS)])
            items = page_list(self.name, data, "items", "tickets page")
            keyed = [(record_key(self.name, t, "ticket"), t) for t in items]
            todo = [(tid, t) for tid, t in keyed if (tid, repr(t.get("LastUpdated"))) not in seen]
            if not todo:
                if len(items) < self.page_size:
                    break
                page += 1  # a full page of tickets already stored at the same second: look further
                continue
            records, children = [], []
            for tid, t in todo:
                records.append(Record("ticket", tid, t, None, t.get("LastUpdated")))
                history = self._history(tid)
                # transaction ids are cast to BIGINT by stage(): a non-integer one crashed it (fuzzing)
                records += [Record("transaction", record_key(self.name, x, "transaction", integer=True), x, tid,
                                   x.get("Created")) for x in history]
                children.append(("transaction", tid))
                # user names only from where RT puts them (a Requestor list of objects, a Creator
                # object): other shapes crashed with AttributeError/TypeError (fuzzing)
                requestors = t.get("Requestor") if isinstance(t.get("Requestor"), list) else []
                # an id that is no string (a list, a number) names no user: it would not hash either
                customers = {i for i in (as_dict(r).get("id") for r in requestors) if isinstance(i, str) and i}
                names = [*customers, *(as_dict(x.get("Creator")).get("id") for x in history)]
                for n in sorted({n for n in names if isinstance(n, str) and n}):
                    u = self._user(n, users)
                    if u is not None:
                        records.append(Record("user", n, u, None, u.get("LastUpdated")))
                        # only requestors carry the customer; RT's own RT_System (SLA date changes)
                        # and agents are no customers, so their hidden Organization is no problem
                        if (not warned_org and n in customers and n not in RT_SYSTEM_USERS
                                and not u.get("Privileged") and "Organization" not in u):
                            progress(f"{self.name}: WARNING user {n}'s Organization is not visible: the sync "
                                     "user needs the AdminUsers right (customers come from it)")
                            warned_org = True
            cursor = latest(t.get("LastUpdated") for _, t in todo)  # garbage LastUpdated is no cursor
            result.records += store.commit(records, cursor=cursor, replace_children=children)
            result.pages += 1
            result.parents |= {tid for tid, _ in todo}
            result.created |= {c for c in (as_text(t.get("Created")) for _, t in todo) if c}
            seen |= {(tid, repr(t.get("LastUpdated"))) for tid, t in todo}
            high = parse_instant(cursor) or high
            page = 1
            progress(f"{self.name}: page {result.pages}: {len(todo)} ticket(s), "
                     f"{len(records)} record(s), up to {cursor}")
        result.cursor = store.cursor()
        progress(result.summary())
        return result

    # ---- stage ----------------------------------------------------------------------------
    def _severity_sql(self, raw: str) -> str:
        if self.severity_source == "priority":
            cases = " ".join(f"WHEN try_cast({raw} AS INTEGER) >= {p} THEN '{s}'" for p, s in self.priority_thresholds)
            return f"CASE {cases} ELSE {raw} END"
        cases = " ".join(f"WHEN {raw} = {_lit(k)} THEN {_lit(v)}" for k, v in self.severity_map.items())
        return f"CASE {cases} ELSE {raw} END"

    def _status_sql(self, raw: str) -> str:
        cases = " ".join(f"WHEN {raw} = {_lit(k)} THEN {_lit(v)}" for k, v in self.status_map.items())
        return f"CASE {cases} ELSE {raw} END"

    def stage(self, con) -> dict[str, int]:
        SyncStore(con, self.name)  # tables exist even before the first sync
        reset_staging(con)
        src = _lit(self.name)
        ts = lambda col: f"CASE WHEN {col} = '{RT_NULL}' THEN '' ELSE coalesce({col}, '') END"  # noqa: E731
        # CustomFields that is not a JSON array (an object, a string) failed the cast to JSON[] and
        # the whole stage with it (found by fuzzing): such a ticket has no custom field values
        cfs = ("CASE WHEN json_type(payload->'CustomFields') = 'ARRAY' THEN payload->'CustomFields' "
               "ELSE CAST('[]' AS JSON) END")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _rt_users AS
            SELECT record_id AS name, CAST(payload->>'Privileged' AS VARCHAR) AS privileged,
                   nullif(trim(payload->>'Organization'), '') AS org
            FROM src_records WHERE source = {src} AND kind = 'user'""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _rt_tickets AS
            SELECT record_id AS ticket_id, payload, payload->>'Created' AS created, payload->>'Subject' AS subject,
                   payload->'Requestor'->0->>'id' AS requestor, payload->>'Priority' AS priority,
                   (SELECT any_value(cf->>'id') FROM unnest(CAST({cfs} AS JSON[])) u(cf)
                     WHERE cf->>'name' = {_lit(self.severity_field)}) AS cf_id,
                   (SELECT any_value(cf->'values'->>0) FROM unnest(CAST({cfs} AS JSON[])) u(cf)
                     WHERE cf->>'name' = {_lit(self.severity_field)}) AS cf_value
            FROM src_records WHERE source = {src} AND kind = 'ticket'""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _rt_txn AS
            SELECT x.parent_id AS ticket_id, CAST(x.record_id AS BIGINT) AS txn_id, x.payload,
                   x.payload->>'Type' AS type, x.payload->>'Field' AS field, x.payload->>'OldValue' AS old,
                   x.payload->>'NewValue' AS new, x.payload->>'Created' AS created,
                   x.payload->'Creator'->>'id' AS creator
            FROM src_records x WHERE x.source = {src} AND x.kind = 'transaction'""")
        if self.severity_source == "priority":
            is_sev = "x.type = 'Set' AND x.field = 'Priority'"
            current = "t.priority"
        else:
            is_sev = "x.type = 'CustomField' AND x.field = t.cf_id"
            current = "t.cf_value"
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _rt_sev AS
            SELECT x.ticket_id, x.txn_id, x.old, x.new,
                   row_number() OVER (PARTITION BY x.ticket_id ORDER BY x.txn_id) AS n
            FROM _rt_txn x JOIN _rt_tickets t USING (ticket_id) WHERE {is_sev}""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE stg_tickets AS
            SELECT t.ticket_id, coalesce(u.org, '') AS customer_id, coalesce(t.subject, '') AS subject,
                   coalesce({self._severity_sql(f"coalesce(nullif(s.old, ''), s.new, {current})")}, '') AS severity,
                   {ts('t.created')} AS created_at, 'email' AS channel,
                   row_number() OVER (ORDER BY try_cast(t.ticket_id AS BIGINT), t.ticket_id) AS line,
                   'ticket/' || t.ticket_id AS source_ref, CAST(t.payload AS VARCHAR) AS raw
            FROM _rt_tickets t
            LEFT JOIN _rt_users u ON u.name = t.requestor
            LEFT JOIN _rt_sev s ON s.ticket_id = t.ticket_id AND s.n = 1""")
        actor = ("CASE WHEN x.creator = 'RT_System' THEN 'system' WHEN u.privileged = '1' THEN 'agent' "
                 "WHEN u.privileged = '0' THEN 'customer' ELSE 'unknown user ' || coalesce(x.creator, '') END")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE stg_ticket_events AS
            WITH ev AS (
                SELECT x.ticket_id, x.txn_id, x.payload, x.created,
                       CASE WHEN x.type = 'Correspond' THEN 'reply'
                            WHEN x.type = 'Status' OR (x.type = 'Set' AND x.field = 'Status') THEN 'status'
                            ELSE 'severity' END AS kind,
                       {actor} AS actor,
                       CASE WHEN x.type = 'Correspond' THEN ''
                            WHEN x.type = 'Status' OR (x.type = 'Set' AND x.field = 'Status') THEN {self._status_sql('x.new')}
                            ELSE coalesce({self._severity_sql('x.new')}, '') END AS value
                FROM _rt_txn x
                LEFT JOIN _rt_users u ON u.name = x.creator
                LEFT JOIN _rt_sev s ON s.ticket_id = x.ticket_id AND s.txn_id = x.txn_id
                WHERE x.type = 'Correspond' OR x.type = 'Status' OR (x.type = 'Set' AND x.field = 'Status')
                   OR (s.txn_id IS NOT NULL AND NOT (s.n = 1 AND coalesce(s.old, '') = ''))
            )
            SELECT ticket_id, {ts('created')} AS occurred_at, kind, actor, value,
                   row_number() OVER (ORDER BY try_cast(ticket_id AS BIGINT), ticket_id, txn_id) AS line,
                   'ticket/' || ticket_id || '/txn/' || txn_id AS source_ref, CAST(payload AS VARCHAR) AS raw
            FROM ev""")
        return self.finish_staging(con, ("_rt_users", "_rt_tickets", "_rt_txn", "_rt_sev"))


def dumps(obj) -> str:  # pragma: no cover - debugging helper
    return json.dumps(obj, indent=1, sort_keys=True)
