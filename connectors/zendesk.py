"""Zendesk Support connector (API v2).

Sync, in this order so roles and organisations are known before tickets are mapped:
- organizations and users: incremental exports (`/incremental/organizations`, `/incremental/users`,
  time-based, `start_time` -> `next_page` until `end_of_stream`), each with its own cursor;
- tickets: the incremental ticket export, cursor-based by default
  (`/incremental/tickets/cursor?start_time=` then `after_url` until `end_of_stream`) or time-based
  (`export="time"`); for every ticket its history: ticket audits (`/tickets/N/audits`, cursor paged;
  default) or, with `history="comments"`, its comments only (`/tickets/N/comments`).
Each page of tickets is committed with its histories and the cursor (the page's `end_time`, or its
latest `updated_at`) in one transaction; a run starts at the cursor minus the overlap.

Mapping (stage):
- customer = the ticket's organization (or its requester's); `customer_key` picks the
  organization's `name` (default), `id` or `external_id`; none -> rejected "customer_id is empty".
- severity = priority via `priority_map` (urgent/high/normal/low = 1-4); the priority set when the
  ticket was created (or first set, by triage) is the ticket's severity, later changes are events.
  No priority -> `default_severity`, or rejected as empty.
- audits: public comments = replies (author's role: end-user -> customer, agent/admin -> agent,
  author -1 -> system; the creating audit's comment is the ticket's description, not a reply);
  private comments are internal (no event); status changes -> status via `status_map` (hold ->
  on_hold; anything else, e.g. `deleted`, is staged as is and rejected); priority changes -> severity.
- comments mode has no status history: the current status (when not new) is one status event at
  the ticket's `updated_at`.
- approved SLA exclusions (optional, `exclusion_tags` = {tag: first_response|resolution|both}):
  a mapped tag the ticket carries now is an exclusion of that metric; its approval is the latest
  audit that added the tag (approved_by = the audit's author by name, `system` for Zendesk's own
  triggers; approved_at = the audit's created_at), reason = `exclusion_reason` with `{tag}` and
  `{metric}` filled in. A tag without such an audit (comments mode, or set before the audits
  kept) is staged without approver and so rejected. No map: no exclusions staged.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

from connectors.http import HttpClient, make_client
from connectors.sync import (
    ApiTicketSource,
    PageTrail,
    Record,
    SyncResult,
    SyncStore,
    as_dict,
    as_text,
    epoch_instant,
    exclusion_metric_map,
    iso_utc,
    latest,
    next_link,
    page_list,
    record_key,
    reset_staging,
)
from sla.db import sql_literal as _lit

DEFAULT_PRIORITY_MAP = {"urgent": "1", "high": "2", "normal": "3", "low": "4"}
DEFAULT_STATUS_MAP = {"new": "new", "open": "open", "pending": "pending", "hold": "on_hold",
                      "solved": "solved", "closed": "closed"}
DEFAULT_EXCLUSION_REASON = "excluded in Zendesk (tag {tag})"




def _case(raw: str, mapping: dict[str, str]) -> str:
    cases = " ".join(f"WHEN {raw} = {_lit(k)} THEN {_lit(v)}" for k, v in mapping.items())
    return f"CASE {cases} ELSE {raw} END" if cases else raw


def _tag_list(value: str) -> str:
    """Lower-cased tags of a JSON value: a list of tags (audits, tickets) or one space-separated text."""
    return (f"list_transform(CASE WHEN json_type({value}) = 'ARRAY' THEN json_extract_string({value}, '$[*]') "
            f"ELSE string_split(coalesce({value}->>'$', ''), ' ') END, lambda x: lower(trim(x)))")


class ZendeskSource(ApiTicketSource):
    name = "zendesk"

    def __init__(self, url: str | None = None, *, subdomain: str | None = None, email: str | None = None,
                 token: str | None = None, contracts_csv: str | None = None, export: str = "cursor",
                 history: str = "audits", priority_map: dict[str, str] | None = None,
                 status_map: dict[str, str] | None = None, default_severity: str | None = None,
                 customer_key: str = "name", overlap_minutes: float = 10, page_size: int = 100,
                 exclusion_tags: dict[str, str] | None = None, exclusion_reason: str | None = None,
                 name: str | None = None, client: HttpClient | None = None, **client_options):
        if export not in ("cursor", "time"):
            raise ValueError(f"export {export!r}: expected cursor or time")
        if history not in ("audits", "comments"):
            raise ValueError(f"history {history!r}: expected audits or comments")
        if customer_key not in ("name", "id", "external_id"):
            raise ValueError(f"customer_key {customer_key!r}: expected name, id or external_id")
        if not url and subdomain:
            url = f"https://{subdomain}.zendesk.com"
        self.name = name or self.name
        self.url = (url or "").rstrip("/")
        self.contracts_csv = contracts_csv
        self.export = export
        self.history = history
        self.priority_map = {str(k): str(v) for k, v in (priority_map or DEFAULT_PRIORITY_MAP).items()}
        self.status_map = {**DEFAULT_STATUS_MAP, **(status_map or {})}
        self.default_severity = default_severity
        self.customer_key = customer_key
        self.exclusion_tags = exclusion_metric_map("exclusion_tags", exclusion_tags, lower=True)
        self.exclusion_reason = exclusion_reason or DEFAULT_EXCLUSION_REASON
        self.overlap = dt.timedelta(minutes=overlap_minutes)
        self.page_size = page_size
        self.labels = {"tickets": f"{self.name} tickets", "ticket_events": f"{self.name} events",
                       "exclusions": f"{self.name} exclusions"}
        self._client = client
        self._auth = (email, token)
        self._client_options = client_options

    def client(self) -> HttpClient:
        if self._client is None:
            email, token = self._auth
            self._client = make_client(self.name, self.url + "/api/v2/", user=f"{email}/token" if email else None,
                                       password=token, credential_hint="SLA_ZENDESK_EMAIL / SLA_ZENDESK_TOKEN",
                                       **self._client_options)
        return self._client

    # ---- sync -----------------------------------------------------------------------------
    @staticmethod
    def _start(since: dt.datetime | None) -> int:
        return max(1, int(since.timestamp())) if since else 1

    @staticmethod
    def _page_cursor(data: dict, items: list[dict]) -> str | None:
        # garbage end_time / updated_at / generated_timestamp is ignored, not a traceback (fuzzing)
        end = epoch_instant(data.get("end_time"))
        if end:
            return end
        return latest([x.get("updated_at") for x in items] + [epoch_instant(x.get("generated_timestamp")) for x in items])

    def _export_simple(self, con, collection: str, kind: str, progress, result: SyncResult) -> None:
        store = SyncStore(con, self.name, collection)
        url = f"incremental/{collection}?" + urlencode({"start_time": self._start(store.since(self.overlap))})
        trail = PageTrail(self.name, collection)
        while True:
            trail.visit(url)
            data = self.client().get_json(url)
            items = page_list(self.name, data, collection, f"{collection} page")
            records = [Record(kind, record_key(self.name, x, kind), x, None, x.get("updated_at")) for x in items]
            result.records += store.commit(records, cursor=self._page_cursor(data, items))
            progress(f"{self.name}: {len(items)} {collection}")
            nxt = next_link(self.name, data.get("next_page"), f"{collection} page")
            if data.get("end_of_stream") or not items or not nxt:
                return
            url = self.client().follow(nxt)

    def _ticket_history(self, ticket_id: str) -> list[Record]:
        client = self.client()
        tid = quote(ticket_id, safe="")  # an id is text from the server: never a path of its own
        if self.history == "comments":
            url, kind, key = f"tickets/{tid}/comments", "comment", "comments"
        else:
            url, kind, key = f"tickets/{tid}/audits?" + urlencode({"page[size]": 100}), "audit", "audits"
        out = []
        trail = PageTrail(self.name, f"{key} of ticket {ticket_id!r}")
        while url:
            trail.visit(url)
            data = client.get_json(url)
            out += [Record(kind, record_key(self.name, x, kind), x, ticket_id, x.get("created_at"))
                    for x in page_list(self.name, data, key, f"{key} page")]
            nxt = None
            if as_dict(data.get("meta")).get("has_more"):
                nxt = as_dict(data.get("links")).get("next")
            elif data.get("next_page"):
                nxt = data["next_page"]
            nxt = next_link(self.name, nxt, f"{key} page")
            url = client.follow(nxt) if nxt else None
        return out

    def sync(self, con, progress=None) -> SyncResult:
        progress = progress or (lambda _m: None)
        result = SyncResult(self.name)
        self._export_simple(con, "organizations", "organization", progress, result)
        self._export_simple(con, "users", "user", progress, result)
        store = SyncStore(con, self.name)
        since = store.since(self.overlap)
        progress(f"{self.name}: syncing tickets updated since {iso_utc(since) if since else 'the beginning'}")
        start = {"start_time": self._start(since)}
        if self.export == "cursor":
            url = "incremental/tickets/cursor?" + urlencode({**start, "per_page": self.page_size})
        else:
            url = "incremental/tickets?" + urlencode(start)
        child = "comment" if self.history == "comments" else "audit"
        trail = PageTrail(self.name, "tickets")
        while url:
            trail.visit(url)
            data = self.client().get_json(url)
            items = page_list(self.name, data, "tickets", "tickets page")
            records, children, tids = [], [], []
            for t in items:
                tid = record_key(self.name, t, "ticket")
                tids.append(tid)
                records.append(Record("ticket", tid, t, None, t.get("updated_at")))
                if t.get("status") != "deleted":  # a deleted ticket's history is gone (404)
                    records += self._ticket_history(tid)
                    children.append((child, tid))
            result.records += store.commit(records, cursor=self._page_cursor(data, items), replace_children=children)
            result.pages += 1
            result.parents |= set(tids)
            result.created |= {c for c in (as_text(t.get("created_at")) for t in items) if c}
            progress(f"{self.name}: page {result.pages}: {len(items)} ticket(s)")
            if data.get("end_of_stream") or not items:
                break
            nxt = next_link(self.name, data.get("after_url") or data.get("next_page"), "tickets page")
            url = self.client().follow(nxt) if nxt else None
        result.cursor = store.cursor()
        progress(result.summary())
        return result

    # ---- stage ----------------------------------------------------------------------------
    def stage(self, con) -> dict[str, int]:
        SyncStore(con, self.name)
        reset_staging(con)
        src = _lit(self.name)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _zd_users AS
            SELECT record_id AS id, payload->>'role' AS role, payload->>'organization_id' AS org_id,
                   payload->>'name' AS name
            FROM src_records WHERE source = {src} AND kind = 'user'""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _zd_orgs AS
            SELECT record_id AS id, payload->>'name' AS name, payload->>'external_id' AS external_id
            FROM src_records WHERE source = {src} AND kind = 'organization'""")
        key = {"name": "o.name", "id": "o.id", "external_id": "o.external_id"}[self.customer_key]
        sev = lambda raw: _case(raw, self.priority_map)  # noqa: E731
        default = _lit(self.default_severity) if self.default_severity else "''"
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _zd_tickets AS
            SELECT t.record_id AS ticket_id, t.payload, t.payload->>'status' AS status,
                   t.payload->>'priority' AS priority, t.payload->>'updated_at' AS updated_at,
                   coalesce(t.payload->>'organization_id', u.org_id) AS org_id
            FROM src_records t LEFT JOIN _zd_users u ON u.id = t.payload->>'requester_id'
            WHERE t.source = {src} AND t.kind = 'ticket'""")
        # history rows: (ticket, at, order key, kind, author, public, field, value, previous, is_create)
        if self.history == "audits":
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _zd_hist AS
                WITH a AS (
                    SELECT parent_id AS ticket_id, record_id AS audit_id, payload,
                           coalesce(list_contains(json_extract_string(payload, '$.events[*].type'), 'Create'), false) AS is_create
                    FROM src_records WHERE source = {src} AND kind = 'audit'
                ), e AS (
                    SELECT a.ticket_id, a.audit_id, a.is_create, a.payload AS audit, r.i,
                           json_extract(a.payload, '$.events[' || r.i || ']') AS ev
                    FROM a, range(CAST(coalesce(json_array_length(a.payload->'events'), 0) AS BIGINT)) r(i)
                )
                SELECT ticket_id, audit->>'created_at' AS ts, audit_id, i, ev->>'type' AS type,
                       coalesce(ev->>'author_id', audit->>'author_id') AS author,
                       CAST(ev->>'public' AS VARCHAR) AS public, ev->>'field_name' AS field,
                       ev->>'value' AS value, ev->>'previous_value' AS previous, is_create,
                       json_object('audit_id', audit_id, 'created_at', audit->>'created_at',
                                   'author_id', audit->>'author_id', 'event', ev) AS raw
                FROM e""")
        else:
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _zd_hist AS
                SELECT parent_id AS ticket_id, payload->>'created_at' AS ts, record_id AS audit_id, 0 AS i,
                       'Comment' AS type, payload->>'author_id' AS author, CAST(payload->>'public' AS VARCHAR) AS public,
                       NULL AS field, NULL AS value, NULL AS previous,
                       row_number() OVER (PARTITION BY parent_id ORDER BY payload->>'created_at',
                                          try_cast(record_id AS BIGINT)) = 1 AS is_create,
                       payload AS raw
                FROM src_records WHERE source = {src} AND kind = 'comment'""")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _zd_prio AS
            SELECT ticket_id, ts, audit_id, i, value, previous,
                   row_number() OVER (PARTITION BY ticket_id ORDER BY ts, try_cast(audit_id AS BIGINT), i) AS n
            FROM _zd_hist WHERE field = 'priority' AND type IN ('Create', 'Change')""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE stg_tickets AS
            SELECT t.ticket_id, coalesce({key}, '') AS customer_id, coalesce(t.payload->>'subject', '') AS subject,
                   coalesce({sev("CASE WHEN p.n = 1 AND p.previous IS NULL THEN p.value ELSE coalesce(p.previous, t.priority) END")},
                            {default}) AS severity,
                   coalesce(t.payload->>'created_at', '') AS created_at,
                   coalesce(t.payload->'via'->>'channel', 'web') AS channel,
                   row_number() OVER (ORDER BY try_cast(t.ticket_id AS BIGINT), t.ticket_id) AS line,
                   'ticket/' || t.ticket_id AS source_ref, CAST(t.payload AS VARCHAR) AS raw
            FROM _zd_tickets t
            LEFT JOIN _zd_orgs o ON o.id = t.org_id
            LEFT JOIN _zd_prio p ON p.ticket_id = t.ticket_id AND p.n = 1""")
        actor = ("CASE WHEN h.author = '-1' THEN 'system' WHEN u.role = 'end-user' THEN 'customer' "
                 "WHEN u.role IN ('agent', 'admin') THEN 'agent' ELSE 'unknown user ' || coalesce(h.author, '') END")
        status_tail = ""
        if self.history == "comments":
            status_tail = f"""
                UNION ALL
                SELECT t.ticket_id, t.updated_at AS ts, 'zz', 0, 'status', 'system', {_case('t.status', self.status_map)},
                       'ticket/' || t.ticket_id || '/status', t.payload
                FROM _zd_tickets t WHERE t.status IS NOT NULL AND t.status <> 'new'"""
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE stg_ticket_events AS
            WITH ev AS (
                SELECT h.ticket_id, h.ts, h.audit_id, h.i,
                       CASE WHEN h.type = 'Comment' THEN 'reply' WHEN h.field = 'status' THEN 'status' ELSE 'severity' END AS kind,
                       {actor} AS actor,
                       CASE WHEN h.type = 'Comment' THEN ''
                            WHEN h.field = 'status' THEN coalesce({_case('h.value', self.status_map)}, '')
                            ELSE coalesce({sev('h.value')}, '') END AS value,
                       'ticket/' || h.ticket_id || '/' || CASE WHEN h.type = 'Comment' AND {self.history == 'comments'}
                           THEN 'comment/' || h.audit_id ELSE 'audit/' || h.audit_id || '/event/' || h.i END AS source_ref,
                       h.raw
                FROM _zd_hist h
                LEFT JOIN _zd_users u ON u.id = h.author
                LEFT JOIN _zd_prio p ON p.ticket_id = h.ticket_id AND p.audit_id = h.audit_id AND p.i = h.i
                WHERE (h.type = 'Comment' AND h.public = 'true' AND NOT h.is_create)
                   OR (h.type = 'Change' AND h.field = 'status')
                   OR (h.type = 'Create' AND h.field = 'status' AND coalesce({_case('h.value', self.status_map)}, '') <> 'new')
                   OR (p.n > 1 OR (p.n = 1 AND p.previous IS NOT NULL)){status_tail}
            )
            SELECT ticket_id, coalesce(ts, '') AS occurred_at, kind, actor, value,
                   row_number() OVER (ORDER BY try_cast(ticket_id AS BIGINT), ticket_id, ts,
                                      try_cast(audit_id AS BIGINT), audit_id, i) AS line,
                   source_ref, CAST(raw AS VARCHAR) AS raw
            FROM ev""")
        if self.exclusion_tags:
            self._stage_exclusions(con)
        return self.finish_staging(con, ("_zd_users", "_zd_orgs", "_zd_tickets", "_zd_hist", "_zd_prio", "_zd_xmap"),
                                   exclusions=bool(self.exclusion_tags))

    def _stage_exclusions(self, con) -> None:
        """stg_exclusions from the mapped tags the tickets carry now, approved by the audit that added them."""
        rows = ", ".join(
            f"({_lit(tag)}, {_lit(metric)}, "
            f"{_lit(self.exclusion_reason.replace('{tag}', tag).replace('{metric}', metric))})"
            for tag, metric in self.exclusion_tags.items())
        con.execute(f"CREATE OR REPLACE TEMP TABLE _zd_xmap AS SELECT * FROM (VALUES {rows}) m(tag, metric, reason)")
        ev_value = "json_extract(h.raw, '$.event.value')"
        ev_previous = "json_extract(h.raw, '$.event.previous_value')"
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE stg_exclusions AS
            WITH cur AS (
                SELECT t.ticket_id, t.payload->'tags' AS tags, m.tag, m.metric, m.reason
                FROM _zd_tickets t JOIN _zd_xmap m ON list_contains({_tag_list("t.payload->'tags'")}, m.tag)
            ), added AS (
                SELECT h.ticket_id, h.ts, h.audit_id, h.i, h.author, h.raw, m.tag,
                       row_number() OVER (PARTITION BY h.ticket_id, m.tag
                                          ORDER BY h.ts DESC, try_cast(h.audit_id AS BIGINT) DESC, h.i DESC) AS n
                FROM _zd_hist h JOIN _zd_xmap m ON list_contains({_tag_list(ev_value)}, m.tag)
                     AND NOT list_contains({_tag_list(ev_previous)}, m.tag)
                WHERE h.field = 'tags' AND h.type IN ('Create', 'Change')
            )
            SELECT c.ticket_id, c.metric, c.reason,
                   CASE WHEN a.author = '-1' THEN 'system'
                        WHEN a.author IS NOT NULL THEN coalesce(nullif(trim(u.name), ''), 'Zendesk user ' || a.author)
                        ELSE '' END AS approved_by,
                   coalesce(a.ts, '') AS approved_at,
                   row_number() OVER (ORDER BY try_cast(c.ticket_id AS BIGINT), c.ticket_id, c.tag) AS line,
                   'ticket/' || c.ticket_id || coalesce('/audit/' || a.audit_id || '/event/' || a.i,
                                                        '/tags/' || c.tag) AS source_ref,
                   CAST(coalesce(a.raw, json_object('ticket_id', c.ticket_id, 'tags', c.tags)) AS VARCHAR) AS raw
            FROM cur c
            LEFT JOIN added a ON a.ticket_id = c.ticket_id AND a.tag = c.tag AND a.n = 1
            LEFT JOIN _zd_users u ON u.id = a.author""")
