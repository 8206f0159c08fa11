"""Jira Service Management connector (Jira Cloud REST API).

Sync: issues matching a JQL filter and updated since the cursor minus the overlap, in `updated`
order (`GET /rest/api/3/search/jql?expand=changelog`, paged by `nextPageToken`); an issue whose
embedded changelog is incomplete has the rest read from `/rest/api/3/issue/KEY/changelog`
(`startAt` paging); its comments from `/rest/api/2/issue/KEY/comment` (they carry `jsdPublic`).
Each page of issues is committed with their changelogs, comments and the cursor in one
transaction. JQL dates have minute precision in the sync user's time zone (`jira_timezone`); the
overlap (10 minutes by default) covers both.

Mapping (stage):
- ticket id = issue key; customer = the first organization in the JSM Organizations field
  (`organization_field`, default customfield_10002), by `name` (default) or `id`; none ->
  rejected "customer_id is empty"; created = `fields.created`.
- severity = priority name via `priority_map` (Highest 1, High 2, Medium 3, Low and Lowest 4); the
  priority at creation is the first priority change's `fromString` (or the current priority);
  later priority changes are severity events.
- comments: `jsdPublic: false` = internal (no event); public ones are replies: by the reporter or
  a `customer` account -> customer, an `app` account (automation) -> system, other -> agent.
- status changes -> status via `status_map` (status names, case-insensitive; JSM's defaults:
  Waiting for support/In progress/Escalated -> open, Waiting for customer -> pending, Pending ->
  on_hold, Resolved/Done -> solved, Closed/Canceled/Declined -> closed); others are staged as is
  and rejected.
- approved SLA exclusions (optional, `exclusion_field` = a custom field, e.g. customfield_10050):
  its value (a select option, several of a multi-select, or text) names the exclusion, mapped to
  first_response / resolution / both by `exclusion_map` (case-insensitive; those names themselves
  always map to themselves; an unmapped value is staged as is and rejected). The latest changelog entry that
  set the field is the approval (approved_by = its author's display name, approved_at = its
  created; the options of a multi-select share it); a value set when the issue was created has
  no changelog entry, so no approver, and is rejected. reason = the value's text, or the text of `exclusion_reason_field` when configured.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

from connectors.http import HttpClient, make_client
from connectors.sync import (
    ApiTicketSource,
    PageTrail,
    Record,
    SyncResult,
    SyncStore,
    as_dict,
    as_text,
    exclusion_metric_map,
    iso_utc,
    next_link,
    page_list,
    parse_instant,
    record_key,
    reset_staging,
)
from sla.db import sql_literal as _lit

DEFAULT_PRIORITY_MAP = {"highest": "1", "high": "2", "medium": "3", "low": "4", "lowest": "4"}
DEFAULT_STATUS_MAP = {
    "open": "open", "new": "new", "to do": "new", "waiting for support": "open", "in progress": "open",
    "work in progress": "open", "escalated": "open", "waiting for customer": "pending", "pending": "on_hold",
    "resolved": "solved", "done": "solved", "closed": "closed", "canceled": "closed", "cancelled": "closed",
    "declined": "closed",
}




def _case(raw: str, mapping: dict[str, str]) -> str:
    cases = " ".join(f"WHEN lower({raw}) = {_lit(k.lower())} THEN {_lit(v)}" for k, v in mapping.items())
    return f"CASE {cases} ELSE {raw} END"


def _field_text(value: str) -> str:
    """The text of a Jira field value: a string, an option (`value`), a user or other named object
    (`name`, `displayName`), a rich-text document (its text nodes), or a list of them joined."""
    one = lambda v: (f"CASE json_type({v}) WHEN 'VARCHAR' THEN {v}->>'$' WHEN 'OBJECT' THEN coalesce("  # noqa: E731
                     f"{v}->>'value', {v}->>'name', {v}->>'displayName', "
                     f"nullif(array_to_string(json_extract_string({v}, '$..text'), ''), '')) "
                     f"WHEN 'NULL' THEN NULL ELSE {v}->>'$' END")
    return (f"CASE WHEN json_type({value}) = 'ARRAY' THEN array_to_string(list_transform("
            f"json_extract({value}, '$[*]'), lambda e: {one('e')}), ', ') ELSE {one(value)} END")


def _field_values(value: str) -> str:
    """The values of a Jira field as a list of texts: one per option of a multi-select."""
    return (f"CASE WHEN json_type({value}) = 'ARRAY' THEN list_transform(json_extract({value}, '$[*]'), "
            f"lambda e: {_field_text('e')}) ELSE [{_field_text(value)}] END")


def jira_instant(text: str | None) -> dt.datetime | None:
    """Jira's `2026-02-02T09:00:00.000+0100`."""
    if not isinstance(text, str) or not text:  # a number or a list (fuzzing: TypeError in re.sub)
        return None
    return parse_instant(re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text))


class JiraSource(ApiTicketSource):
    name = "jira"

    def __init__(self, url: str, *, email: str | None = None, token: str | None = None,
                 contracts_csv: str | None = None, jql: str = "", organization_field: str = "customfield_10002",
                 customer_key: str = "name", priority_map: dict[str, str] | None = None,
                 status_map: dict[str, str] | None = None, overlap_minutes: float = 10, page_size: int = 50,
                 jira_timezone: str = "UTC", exclusion_field: str | None = None,
                 exclusion_map: dict[str, str] | None = None, exclusion_reason_field: str | None = None,
                 name: str | None = None, client: HttpClient | None = None, **client_options):
        if customer_key not in ("name", "id"):
            raise ValueError(f"customer_key {customer_key!r}: expected name or id")
        self.name = name or self.name
        self.url = url.rstrip("/")
        self.contracts_csv = contracts_csv
        self.jql = jql.strip()
        self.organization_field = organization_field
        self.customer_key = customer_key
        self.priority_map = {str(k).lower(): str(v) for k, v in (priority_map or DEFAULT_PRIORITY_MAP).items()}
        self.status_map = {**DEFAULT_STATUS_MAP, **{str(k).lower(): v for k, v in (status_map or {}).items()}}
        self.overlap = dt.timedelta(minutes=overlap_minutes)
        self.page_size = page_size
        self.jira_timezone = jira_timezone
        self.exclusion_field = (exclusion_field or "").strip() or None
        self.exclusion_map = exclusion_metric_map(
            "exclusion_map", {**{m: m for m in ("first_response", "resolution", "both")}, **(exclusion_map or {})},
            lower=True)
        self.exclusion_reason_field = (exclusion_reason_field or "").strip() or None
        for f in (self.exclusion_field, self.exclusion_reason_field):
            if f and not re.fullmatch(r"[A-Za-z0-9_.-]+", f):
                raise ValueError(f"exclusion field {f!r}: expected a field id like customfield_10050")
        self.labels = {"tickets": f"{self.name} tickets", "ticket_events": f"{self.name} events",
                       "exclusions": f"{self.name} exclusions"}
        self._client = client
        self._auth = (email, token)
        self._client_options = client_options

    def client(self) -> HttpClient:
        if self._client is None:
            email, token = self._auth
            self._client = make_client(self.name, self.url + "/", user=email, password=token,
                                       credential_hint="SLA_JIRA_EMAIL / SLA_JIRA_TOKEN", **self._client_options)
        return self._client

    # ---- sync -----------------------------------------------------------------------------
    def _jql(self, since: dt.datetime | None) -> str:
        parts = [f"({self.jql})"] if self.jql else []
        if since is not None:
            from zoneinfo import ZoneInfo

            local = since.astimezone(ZoneInfo(self.jira_timezone)).strftime("%Y/%m/%d %H:%M")
            parts.append(f'updated >= "{local}"')
        return " AND ".join(parts) + " ORDER BY updated ASC, key ASC"

    @staticmethod
    def _count(value, default: int) -> int:
        """A `total` as sent; garbage (text, null, a list) counts as absent (fuzzing: TypeError/ValueError)."""
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def _changelog(self, key: str, issue: dict) -> list[dict]:
        log = as_dict(issue.get("changelog"))
        histories = list(page_list(self.name, log, "histories", "embedded changelog"))
        if self._count(log.get("total"), len(histories)) <= len(histories):
            return histories
        histories, start = [], 0
        while True:
            data = self.client().get_json(f"rest/api/3/issue/{quote(key, safe='')}/changelog",
                                          params={"startAt": start, "maxResults": 100})
            values = page_list(self.name, data, "values", "changelog page")
            histories += values
            start += len(values)
            if data.get("isLast", True) or not values:
                return histories

    def _comments(self, key: str) -> list[dict]:
        out, start = [], 0
        while True:
            data = self.client().get_json(f"rest/api/2/issue/{quote(key, safe='')}/comment",
                                          params={"startAt": start, "maxResults": 100, "orderBy": "created"})
            got = page_list(self.name, data, "comments", "comments page")
            out += got
            start += len(got)
            if not got or start >= self._count(data.get("total"), start):
                return out

    def sync(self, con, progress=None) -> SyncResult:
        progress = progress or (lambda _m: None)
        store = SyncStore(con, self.name)
        result = SyncResult(self.name)
        since = store.since(self.overlap)
        progress(f"{self.name}: syncing issues updated since {iso_utc(since) if since else 'the beginning'}")
        fields = ",".join(["summary", "status", "priority", "created", "updated", "reporter", self.organization_field]
                          + [f for f in (self.exclusion_field, self.exclusion_reason_field) if f])
        token = None
        trail = PageTrail(self.name, "issues")
        while True:
            params = {"jql": self._jql(since), "fields": fields, "expand": "changelog", "maxResults": self.page_size}
            if token:
                params["nextPageToken"] = token
            trail.visit(token or "")  # a token pointing back to a page already read would loop
            data = self.client().get_json("rest/api/3/search/jql", params=params)
            issues = page_list(self.name, data, "issues", "search page")
            records, children, keys = [], [], []
            for issue in issues:
                key = record_key(self.name, issue, "issue", key="key")
                keys.append(key)
                body = {k: v for k, v in issue.items() if k != "changelog"}
                updated = as_dict(issue.get("fields")).get("updated")
                records.append(Record("issue", key, body, None, updated))
                records += [Record("history", record_key(self.name, h, "changelog history"), h, key, h.get("created"))
                            for h in self._changelog(key, issue)]
                records += [Record("comment", record_key(self.name, c, "comment"), c, key, c.get("created"))
                            for c in self._comments(key)]
                children += [("history", key), ("comment", key)]
            stamps = [jira_instant(as_dict(i.get("fields")).get("updated")) for i in issues]
            stamps = [s for s in stamps if s]
            cursor = iso_utc(max(stamps)) if stamps else None
            result.records += store.commit(records, cursor=cursor, replace_children=children)
            result.pages += 1
            result.parents |= set(keys)
            result.created |= {c for c in (as_text(as_dict(i.get("fields")).get("created")) for i in issues) if c}
            progress(f"{self.name}: page {result.pages}: {len(issues)} issue(s)")
            token = next_link(self.name, data.get("nextPageToken"), "search page")
            if data.get("isLast", not token) or not token or not issues:
                break
        result.cursor = store.cursor()
        progress(result.summary())
        return result

    # ---- stage ----------------------------------------------------------------------------
    def stage(self, con) -> dict[str, int]:
        SyncStore(con, self.name)
        reset_staging(con)
        src = _lit(self.name)
        org = f"payload->'fields'->'{self.organization_field}'->0->>'{self.customer_key}'"
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _jr_issues AS
            SELECT record_id AS key, payload, payload->'fields' AS f,
                   payload->'fields'->'reporter'->>'accountId' AS reporter, nullif(trim({org}), '') AS customer
            FROM src_records WHERE source = {src} AND kind = 'issue'""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _jr_items AS
            SELECT h.parent_id AS key, h.record_id AS history_id, h.payload->>'created' AS ts,
                   h.payload->'author'->>'accountType' AS account_type, r.i,
                   json_extract(h.payload, '$.items[' || r.i || ']') AS item, h.payload AS history
            FROM src_records h, range(CAST(coalesce(json_array_length(h.payload->'items'), 0) AS BIGINT)) r(i)
            WHERE h.source = {src} AND h.kind = 'history'""")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _jr_prio AS
            SELECT key, history_id, i, item->>'fromString' AS old, item->>'toString' AS new,
                   row_number() OVER (PARTITION BY key ORDER BY ts, try_cast(history_id AS BIGINT), i) AS n
            FROM _jr_items WHERE item->>'field' = 'priority'""")
        sev = lambda raw: _case(raw, self.priority_map)  # noqa: E731
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE stg_tickets AS
            SELECT t.key AS ticket_id, coalesce(t.customer, '') AS customer_id, coalesce(t.f->>'summary', '') AS subject,
                   coalesce({sev("coalesce(p.old, t.f->'priority'->>'name')")}, '') AS severity,
                   coalesce(t.f->>'created', '') AS created_at, 'portal' AS channel,
                   row_number() OVER (ORDER BY t.key) AS line,
                   'issue/' || t.key AS source_ref, CAST(t.payload AS VARCHAR) AS raw
            FROM _jr_issues t LEFT JOIN _jr_prio p ON p.key = t.key AND p.n = 1""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE stg_ticket_events AS
            WITH ev AS (
                SELECT x.key, x.ts, x.history_id AS id, x.i, 1 AS src_order,
                       CASE WHEN x.item->>'field' = 'status' THEN 'status' ELSE 'severity' END AS kind,
                       CASE WHEN x.account_type = 'app' THEN 'system' WHEN x.account_type = 'customer' THEN 'customer'
                            ELSE 'agent' END AS actor,
                       CASE WHEN x.item->>'field' = 'status' THEN coalesce({_case("x.item->>'toString'", self.status_map)}, '')
                            ELSE coalesce({sev("x.item->>'toString'")}, '') END AS value,
                       'issue/' || x.key || '/changelog/' || x.history_id || '/item/' || x.i AS source_ref,
                       x.history AS raw
                FROM _jr_items x WHERE x.item->>'field' IN ('status', 'priority')
                UNION ALL
                SELECT c.parent_id, c.payload->>'created', c.record_id, 0, 0, 'reply',
                       CASE WHEN c.payload->'author'->>'accountId' = t.reporter
                                 OR c.payload->'author'->>'accountType' = 'customer' THEN 'customer'
                            WHEN c.payload->'author'->>'accountType' = 'app' THEN 'system' ELSE 'agent' END,
                       '', 'issue/' || c.parent_id || '/comment/' || c.record_id, c.payload
                FROM src_records c JOIN _jr_issues t ON t.key = c.parent_id
                WHERE c.source = {src} AND c.kind = 'comment'
                  AND coalesce(CAST(c.payload->>'jsdPublic' AS VARCHAR), 'true') <> 'false'
            )
            SELECT key AS ticket_id, coalesce(ts, '') AS occurred_at, kind, actor, value,
                   row_number() OVER (ORDER BY key, ts, src_order, try_cast(id AS BIGINT), i) AS line,
                   source_ref, CAST(raw AS VARCHAR) AS raw
            FROM ev""")
        if self.exclusion_field:
            self._stage_exclusions(con)
        return self.finish_staging(con, ("_jr_issues", "_jr_items", "_jr_prio"),
                                   exclusions=bool(self.exclusion_field))

    def _stage_exclusions(self, con) -> None:
        """stg_exclusions from the exclusion field's current values, approved by the changelog entry that set it."""
        field = _lit(self.exclusion_field)
        value = f"t.f->'{self.exclusion_field}'"
        metric = _case("v.name", self.exclusion_map)
        reason = (_field_text(f"v.f->'{self.exclusion_reason_field}'") if self.exclusion_reason_field else "v.name")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE stg_exclusions AS
            WITH v AS (
                SELECT t.key, t.f, {value} AS value, trim(u.name) AS name, u.n
                FROM _jr_issues t, unnest({_field_values(value)}) WITH ORDINALITY u(name, n)
                WHERE json_type({value}) NOT IN ('NULL') AND nullif(trim(u.name), '') IS NOT NULL
            ), set_by AS (
                SELECT x.key, x.history_id, x.i, x.ts, x.history,
                       coalesce(nullif(trim(x.history->'author'->>'displayName'), ''),
                                nullif(trim(x.history->'author'->>'emailAddress'), ''),
                                x.history->'author'->>'accountId') AS author,
                       row_number() OVER (PARTITION BY x.key
                                          ORDER BY x.ts DESC, try_cast(x.history_id AS BIGINT) DESC, x.i DESC) AS n
                FROM _jr_items x
                WHERE (x.item->>'fieldId' = {field} OR x.item->>'field' = {field})
                  AND nullif(trim(x.item->>'toString'), '') IS NOT NULL
            )
            SELECT v.key AS ticket_id, coalesce({metric}, '') AS metric, coalesce({reason}, '') AS reason,
                   coalesce(s.author, '') AS approved_by, coalesce(s.ts, '') AS approved_at,
                   row_number() OVER (ORDER BY v.key, v.n) AS line,
                   'issue/' || v.key || coalesce('/changelog/' || s.history_id || '/item/' || s.i,
                                                 '/field/' || {field}) AS source_ref,
                   CAST(coalesce(s.history, json_object({field}, v.value)) AS VARCHAR) AS raw
            FROM v LEFT JOIN set_by s ON s.key = v.key AND s.n = 1""")
