-- Per-incident SLA metrics (sla-semantics.md section 3), set-based over the business calendar.
-- Inputs: tickets, ticket_events, contracts (with `terms`), exclusions, business_calendar,
-- sla_targets_versioned, sla_tiers_versioned, run_params, and (read when `scoped`) metrics_scope
-- (ticket_id), metrics_rank_only (ticket_id), metrics_kept_ranks (ticket_id, quota_rank),
-- metrics_rank_from (customer_id, month, from_key: every customer-month of a scope incident not in
-- metrics_kept_ranks) and metrics_rank_offsets (customer_id, month, tier, ranked_before). Scoped,
-- it also writes the temp table metrics_new_ranks (ticket_id, quota_rank): the new ranks of
-- metrics_rank_only, whose other figures are not computed.
-- Parameters are bound as DuckDB variables (SET VARIABLE; sla/metrics.py sets them from the policy
-- and the calendar), so this file runs as it stands in any DuckDB session that has them:
--   tz (the business timezone), initial_status, resolved and pause (lists of statuses),
--   clock_base, clock_bucket, clock_max, due_bucket (see sla/calendar.py ClockBuckets),
--   scoped (false: every incident; true: only the incidents in metrics_scope).
--
-- Scope (sla/incremental.py): a full run computes every incident. An incremental run computes the
-- incidents listed in metrics_scope with these same statements and writes its output tables into a
-- schema of their own (first on the search path), whose rows then replace the scope's rows. Every
-- figure of an incident depends on its own history only, except the quota rank, which is taken over
-- every incident of its customer-month (_pool below), so a scoped rank equals the full run's; an
-- incident whose rank cannot have changed (sla/sql/metrics_scope.sql) keeps it: metrics_kept_ranks;
-- an incident whose rank alone can have changed (metrics_rank_only) is only ranked.

-- Temp tables are written with preserve_insertion_order off: their row order carries no meaning
-- (every reader joins, groups or orders), and an order-preserving insert of a window's or a join's
-- output runs on one thread. It is on for the tables written in an order (data_warnings,
-- incident_exclusions, incident_clock_segments, incident_sla) and back at the session's value at the
-- end (sla/metrics.py also restores it when a statement fails).
SET VARIABLE _sla_insertion_order = current_setting('preserve_insertion_order');
SET preserve_insertion_order = false;

-- The clock's state in a status (sla-semantics.md section 3): stopped in a resolved status, paused in
-- a pause status, running otherwise. One definition for the statuses of events and the initial one.
CREATE OR REPLACE TEMP MACRO _sla_resolved(status) AS list_contains(getvariable('resolved'), status);
CREATE OR REPLACE TEMP MACRO _sla_clock_state(status) AS
    CASE WHEN _sla_resolved(status) THEN 'stopped'
         WHEN list_contains(getvariable('pause'), status) THEN 'paused'
         ELSE 'running' END;

-- Over the monthly allowance (sla-semantics.md section 4): ranked beyond its tier's quota; NULL
-- without a contract. sla/incremental.py applies it to the new ranks of metrics_rank_only.
CREATE OR REPLACE TEMP MACRO _sla_over_quota(tier, quota_rank, quota) AS
    CASE WHEN tier IS NOT NULL THEN quota_rank > quota END;

-- The cut-off as a constant: a filter on it reaches the table scans, where a join with run_params
-- would be a cross product per row (the 35M clock segments' filter became a nested-loop join).
SET VARIABLE _sla_as_of = (SELECT as_of FROM run_params);

-- The customer-months whose ranks are computed (metrics_rank_from: every month of a scope
-- incident that does not keep its rank; none in a full run, which ranks all of them), with the UTC
-- days (epoch // 86400) they touch from the point where their ranks can start to move (from_key):
-- a cheap equi-join key to find their incidents.
CREATE OR REPLACE TEMP TABLE _scope_days AS
SELECT customer_id, month, from_key,
       unnest(range(epoch(greatest(month_start, from_key.c))::BIGINT // 86400,
                    (epoch(month_end)::BIGINT - 1) // 86400 + 1)) AS utc_day
FROM (
    SELECT customer_id, month, from_key,
           timezone(getvariable('tz'), CAST(strptime(month || '-01', '%Y-%m-%d') AS TIMESTAMP)) AS month_start,
           timezone(getvariable('tz'), CAST(strptime(month || '-01', '%Y-%m-%d') AS TIMESTAMP) + INTERVAL 1 MONTH) AS month_end
    FROM metrics_rank_from
    WHERE getvariable('scoped')
);

-- Tickets of those customers created on those days (a superset of their customer-months; the bound
-- on created_at lets DuckDB skip older row groups of `tickets`).
CREATE OR REPLACE TEMP TABLE _pool_candidates AS
SELECT t.ticket_id, t.customer_id, t.severity, t.created_at, d.month AS group_month, d.from_key
FROM tickets t
JOIN _scope_days d ON d.customer_id = t.customer_id AND d.utc_day = epoch(t.created_at)::BIGINT // 86400,
     run_params p
WHERE getvariable('scoped') AND t.created_at <= p.as_of
  AND t.created_at >= (SELECT to_timestamp(min(utc_day) * 86400) FROM _scope_days);

-- Incidents as of the cut-off, with the local month and date of creation: all of them, or the
-- incidents of those customer-months from their first seed on.
CREATE OR REPLACE TEMP TABLE _pool AS
SELECT t.ticket_id, t.customer_id, t.severity AS created_severity, t.created_at,
       CAST(timezone(getvariable('tz'), t.created_at) AS DATE) AS local_date,
       strftime(timezone(getvariable('tz'), t.created_at), '%Y-%m') AS month
FROM tickets t
WHERE NOT getvariable('scoped') AND t.created_at <= getvariable('_sla_as_of')
UNION ALL
SELECT ticket_id, customer_id, created_severity, created_at, local_date, month FROM (
    SELECT *, CAST(local_at AS DATE) AS local_date, strftime(local_at, '%Y-%m') AS month
    FROM (SELECT c.ticket_id, c.customer_id, c.severity AS created_severity, c.created_at, c.group_month, c.from_key,
                 timezone(getvariable('tz'), c.created_at) AS local_at  -- converted once: the costly part
          FROM _pool_candidates c)
) WHERE month = group_month AND struct_pack(c := created_at, t := ticket_id) >= from_key;

-- The incidents computed by this run: those of the pool in the scope (but the ones only ranked),
-- and the scope's incidents that keep their rank (outside the pool). `tid` numbers them in
-- (created_at, ticket_id) order: the key of the joins and windows below (an integer is cheaper to
-- hash and sort than the text id at 10M incidents) and the physical order of incident_sla.
CREATE OR REPLACE TEMP TABLE _incidents AS
SELECT CAST(row_number() OVER (ORDER BY created_at, ticket_id) AS INTEGER) AS tid, * FROM (
    SELECT * FROM _pool
    WHERE NOT getvariable('scoped') OR (ticket_id IN (SELECT ticket_id FROM metrics_scope)
                                        AND ticket_id NOT IN (SELECT ticket_id FROM metrics_rank_only))
    UNION ALL
    SELECT t.ticket_id, t.customer_id, t.severity AS created_severity, t.created_at,
           CAST(timezone(getvariable('tz'), t.created_at) AS DATE) AS local_date,
           strftime(timezone(getvariable('tz'), t.created_at), '%Y-%m') AS month
    FROM tickets t, run_params p
    WHERE getvariable('scoped') AND t.created_at <= p.as_of
      AND t.ticket_id IN (SELECT ticket_id FROM metrics_kept_ranks)
      AND t.ticket_id NOT IN (SELECT ticket_id FROM _pool)
);

-- Tier: the contract in force on the local date of creation. Quota (sla-semantics.md section 4):
-- a customer's incidents of a local month are ranked per tier (creation time, then ticket id), so a
-- month with a tier change has one allowance per tier; incidents without a contract take no rank.
-- Ranked over _pool: in a full run all incidents (the pool is _incidents); in a scoped run the
-- incidents of each customer-month from its first seed on, counted on from the incidents of their
-- tier ranked before it (metrics_rank_offsets). Pool incidents outside the scope have no tid and
-- are ranked, not kept, and so are those of metrics_rank_only (kept by their ticket id in
-- `rank_only`, NULL for the others); the scope's incidents outside the pool keep their rank (in a
-- partition of their own).
CREATE OR REPLACE TEMP TABLE _ranked AS
SELECT tid, rank_only, tier, terms, quota_rank FROM (
    SELECT i.tid, CASE WHEN i.tid IS NULL THEN i.ticket_id END AS rank_only, c.tier, c.terms,
           CASE WHEN c.tier IS NOT NULL THEN
               coalesce(i.kept_rank, coalesce(o.ranked_before, 0)
                                     + row_number() OVER (PARTITION BY i.customer_id, i.month, c.tier, i.kept_rank IS NULL
                                                          ORDER BY i.created_at, i.ticket_id))
           END AS quota_rank
    FROM (
        SELECT tid, ticket_id, customer_id, month, created_at, local_date, CAST(NULL AS BIGINT) AS kept_rank
        FROM _incidents WHERE NOT getvariable('scoped')
        UNION ALL
        SELECT i.tid, p.ticket_id, p.customer_id, p.month, p.created_at, p.local_date, CAST(NULL AS BIGINT)
        FROM _pool p LEFT JOIN _incidents i USING (ticket_id) WHERE getvariable('scoped')
        UNION ALL
        SELECT i.tid, i.ticket_id, i.customer_id, i.month, i.created_at, i.local_date, k.quota_rank
        FROM _incidents i JOIN metrics_kept_ranks k USING (ticket_id)
        WHERE getvariable('scoped') AND i.ticket_id NOT IN (SELECT ticket_id FROM _pool)
    ) i
    LEFT JOIN contracts c ON c.customer_id = i.customer_id
          AND i.local_date BETWEEN c.valid_from AND coalesce(c.valid_to, DATE '9999-12-31')
    LEFT JOIN metrics_rank_offsets o ON i.kept_rank IS NULL AND o.customer_id = i.customer_id
          AND o.month = i.month AND o.tier = c.tier
)
WHERE tid IS NOT NULL OR rank_only IN (SELECT ticket_id FROM metrics_rank_only);

CREATE OR REPLACE TEMP TABLE metrics_new_ranks AS
SELECT rank_only AS ticket_id, quota_rank FROM _ranked WHERE tid IS NULL;

DROP TABLE _pool;
DROP TABLE _pool_candidates;
DROP TABLE _scope_days;

-- The events known at the cut-off: every ticket's, or (scoped) the computed incidents' only,
-- selected in one scan. The dictionaries _event_values and _status_ties below are built from them:
-- their codes are compared only between events of one incident, and any set of values holding an
-- incident's values orders them the same, so the scoped run's codes give the full run's figures.
CREATE OR REPLACE TEMP TABLE _scoped_events AS
SELECT e.ticket_id, e.occurred_at, e.kind, e.actor, e.value
FROM ticket_events e
WHERE getvariable('scoped') AND e.occurred_at <= getvariable('_sla_as_of')
  AND e.ticket_id IN (SELECT ticket_id FROM _incidents);

CREATE OR REPLACE TEMP VIEW _input_events AS
SELECT ticket_id, occurred_at, kind, actor, value FROM ticket_events
WHERE NOT getvariable('scoped') AND occurred_at <= getvariable('_sla_as_of')
UNION ALL
SELECT * FROM _scoped_events;

-- Those events in time order. Row order in a file carries no meaning
-- (sla-semantics.md section 3, "Order of events"), so events of one ticket at one instant apply in a
-- fixed order: replies, then severity changes (least to most severe: 4, 3, 2, 1), then status
-- changes in lifecycle order (status_rank, written from sla.policy.LIFECYCLE_ORDER). Remaining ties
-- (same kind and value) break on actor, then value; never on the input line. Rows equal in every
-- column left are interchangeable: no figure depends on which of them comes first.
--
-- The sort runs on integers only (text keys and text payload made it the costliest statement at
-- 10M incidents): the status and severity texts become codes of _event_values, and actor and
-- value are replaced by `tie`, which matters only where two events of a ticket at one instant
-- have the same kind and rank and different values: status changes the policy does not rank
-- (written by hand; the import accepts known statuses only, and every known status has a rank of
-- its own). Everywhere else a tie holds either equal values (a status, ranked) or rows whose order
-- reaches no figure: replies (only the first agent reply's instant counts), severities of one
-- value (the same integer), and kinds no figure reads; the events after them keep their seq.
-- _status_ties numbers the unranked (actor, value) pairs in (actor NULLS FIRST, value NULLS FIRST)
-- order, the documented tie-break; it is empty for imported data.
CREATE OR REPLACE TEMP TABLE _event_values AS
SELECT CAST(row_number() OVER (ORDER BY kind, value) AS INTEGER) AS vcode, kind, value,
       CASE kind WHEN 'severity' THEN -TRY_CAST(value AS INTEGER) ELSE sr.rank END AS value_rank,
       -- a status change into a resolved status, and the clock's state in that status (NULL for severities)
       CASE WHEN kind = 'status' THEN _sla_resolved(value) END AS resolved,
       CASE WHEN kind = 'status' THEN _sla_clock_state(value) END AS state
FROM (SELECT DISTINCT kind, value FROM _input_events WHERE kind IN ('severity', 'status') AND value IS NOT NULL) v
LEFT JOIN status_rank sr ON v.kind = 'status' AND sr.status = v.value;

CREATE OR REPLACE TEMP TABLE _status_ties AS
SELECT actor, value, CAST(dense_rank() OVER (ORDER BY actor NULLS FIRST, value NULLS FIRST) AS INTEGER) AS tie
FROM (SELECT DISTINCT e.actor, e.value FROM _input_events e ANTI JOIN status_rank sr ON sr.status = e.value
      WHERE e.kind = 'status');

-- One sort numbers the events (seq) and gives each status change whether the status it leaves is
-- resolved and the start of the next one. Kept afterwards (narrow, 60M rows at 10M incidents): the
-- events a figure reads, kind_code 1 = agent reply, 2 = severity change, 3 = status change; vcode
-- (_event_values) is NULL for a status or severity without a value (status values are never NULL
-- after the import, which rejects an empty one).
CREATE OR REPLACE TEMP TABLE _events AS
SELECT tid, occurred_at, kind_code, vcode, CAST(seq AS INTEGER) AS seq, resolved,
       coalesce(previous_resolved, _sla_resolved(getvariable('initial_status'))) AS from_resolved,
       next_status_at,
       -- another event of the ticket at the same instant comes before it (data_warnings looks only there)
       same_instant
FROM (
    SELECT tid, occurred_at, kind_code, vcode, resolved,
           row_number() OVER w AS seq,
           lag(CASE WHEN kind_code = 3 THEN resolved END IGNORE NULLS) OVER w AS previous_resolved,
           lead(CASE WHEN kind_code = 3 THEN occurred_at END IGNORE NULLS) OVER w AS next_status_at,
           lag(occurred_at) OVER w = occurred_at AS same_instant
    FROM (
        SELECT i.tid, e.occurred_at,
               CAST(CASE e.kind WHEN 'reply' THEN 1 WHEN 'severity' THEN 2 ELSE 3 END AS UTINYINT) AS kind_rank,
               CASE e.kind WHEN 'severity' THEN v.value_rank WHEN 'status' THEN v.value_rank ELSE 0 END AS value_rank,
               coalesce(t.tie, 0) AS tie,
               CAST(CASE e.kind WHEN 'reply' THEN CASE WHEN e.actor = 'agent' THEN 1 END WHEN 'severity' THEN 2
                                WHEN 'status' THEN 3 END AS UTINYINT) AS kind_code,
               v.vcode, v.resolved
        FROM _input_events e JOIN _incidents i USING (ticket_id)
        LEFT JOIN _event_values v ON v.kind = e.kind AND v.value = e.value
        LEFT JOIN _status_ties t ON e.kind = 'status' AND t.actor IS NOT DISTINCT FROM e.actor
                                AND t.value IS NOT DISTINCT FROM e.value
    )
    WINDOW w AS (PARTITION BY tid ORDER BY occurred_at, kind_rank, value_rank, tie)
)
WHERE kind_code IS NOT NULL;

DROP VIEW _input_events;
DROP TABLE _scoped_events;

SET preserve_insertion_order = true;

-- Tickets whose figures rest on that tie-break: two different status values, or two different
-- severities, at one instant (data-contract.md, data_warnings). Rebuilt with incident_sla.
CREATE OR REPLACE TABLE data_warnings AS
WITH conflicts AS (
    SELECT tid, occurred_at, kind, list(value ORDER BY value_rank) AS vals
    FROM (SELECT DISTINCT e.tid, e.occurred_at, CASE e.kind_code WHEN 2 THEN 'severity' ELSE 'status' END AS kind,
                 v.value, v.value_rank
          FROM _events e LEFT JOIN _event_values v USING (vcode)
          WHERE e.kind_code IN (2, 3)
            AND (e.tid, e.occurred_at) IN (SELECT (tid, occurred_at) FROM _events WHERE same_instant))
    GROUP BY tid, occurred_at, kind
    HAVING count(*) > 1
), shown AS (
    SELECT i.ticket_id, c.*, list_transform(vals, lambda v: chr(39) || v || chr(39)) AS quoted,
           CAST(epoch(timezone(getvariable('tz'), occurred_at)) - epoch(occurred_at) AS BIGINT) AS offset_s
    FROM conflicts c JOIN _incidents i USING (tid)
)
SELECT ticket_id,
       kind || ' changes '
       || array_to_string(quoted[1:len(quoted) - 1], ', ') || ' and ' || quoted[len(quoted)]
       || ' at ' || strftime(timezone(getvariable('tz'), occurred_at), '%Y-%m-%d %H:%M:%S')
       || CASE WHEN offset_s < 0 THEN '-' ELSE '+' END
       || lpad(CAST(abs(offset_s) // 3600 AS VARCHAR), 2, '0')
       || CASE WHEN abs(offset_s) % 3600 <> 0
               THEN ':' || lpad(CAST(abs(offset_s) % 3600 // 60 AS VARCHAR), 2, '0') ELSE '' END
       || ' have no order; applied ' || array_to_string(vals, ', then ')
       || CASE kind WHEN 'status' THEN ' (lifecycle order: the ticket ends ' || vals[len(vals)] || ')'
                    ELSE ' (least to most severe: severity ' || vals[len(vals)] || ' applies)' END AS reason
FROM shown
ORDER BY ticket_id, occurred_at, kind;

-- Approved exclusions (sla-semantics.md section 6) known at the cut-off: per incident and metric the
-- latest approval (approved_at, then the later line) applies; `both` stands for both metrics.
CREATE OR REPLACE TABLE incident_exclusions AS
SELECT ticket_id, metric, r.reason, r.approved_by, r.approved_at
FROM (
    SELECT e.ticket_id, m.metric,
           arg_max(struct_pack(reason := e.reason, approved_by := e.approved_by, approved_at := e.approved_at),
                   struct_pack(a := e.approved_at, l := e.line)) AS r
    FROM exclusions e
    CROSS JOIN (VALUES ('first_response'), ('resolution')) m(metric), run_params p
    WHERE e.approved_at <= p.as_of AND (e.metric = m.metric OR e.metric = 'both')
      AND e.ticket_id IN (SELECT ticket_id FROM _incidents)
    GROUP BY e.ticket_id, m.metric
)
ORDER BY ticket_id, metric;

SET preserve_insertion_order = false;

-- Per incident: first agent reply, first resolved status, latest status, first status change, the
-- resolution instant (the last entry into a resolved status from a non-resolved one), and the tier.
CREATE OR REPLACE TEMP TABLE _stops AS
WITH _milestones AS (
SELECT tid,
       min(occurred_at) FILTER (WHERE kind_code = 1) AS first_agent_reply_at,
       min(occurred_at) FILTER (WHERE kind_code = 3 AND resolved) AS first_resolved_at,
       arg_max(vcode, seq) FILTER (WHERE kind_code = 3) AS current_vcode,
       min(occurred_at) FILTER (WHERE kind_code = 3) AS first_status_at,
       max(occurred_at) FILTER (WHERE kind_code = 3 AND resolved AND NOT from_resolved) AS resolved_at
FROM _events
GROUP BY tid
)
SELECT i.*, r.tier, r.terms, r.quota_rank,
       coalesce(cv.value, getvariable('initial_status')) AS current_status,
       least(m.first_agent_reply_at, m.first_resolved_at) AS first_response_at,
       CASE WHEN _sla_resolved(coalesce(cv.value, getvariable('initial_status')))
            THEN m.resolved_at END AS resolved_at,
       m.first_status_at
FROM _incidents i LEFT JOIN _milestones m USING (tid)
LEFT JOIN _event_values cv ON cv.vcode = m.current_vcode
JOIN _ranked r USING (tid);

DROP TABLE _ranked;
DROP TABLE _incidents;  -- read for the last time by _stops

-- Clock segments: from creation through every status change to the resolution (or cut-off).
-- Business clock of an instant e (seconds since the calendar's start): the row of e's bucket in
-- business_clock_buckets (an equi-join; see sla/calendar.py ClockBuckets), then
-- cum_before + clamp(e - open_epoch, 0, business_seconds).
-- Written straight into incident_clock_segments (35M rows at 10M incidents: a temp table of them
-- spilled), with tid for _durations, then tid is dropped (no rewrite: the table is new in this
-- transaction). In incident order (tid): a ticket's rows then sit in a few row groups, whose
-- min/max let a lookup or an incremental run's delete of some tickets skip the others (a delete
-- of 1,000 tickets' rows from 3.5M: 27 -> 6 ms; the sort costs about 0.12 s at 1M incidents).
SET preserve_insertion_order = true;
CREATE OR REPLACE TABLE incident_clock_segments AS
WITH boundaries AS (
    SELECT tid, 0 AS seq, CAST(NULL AS INTEGER) AS vcode, created_at AS seg_start, first_status_at AS next_start
    FROM _stops
    UNION ALL
    SELECT tid, seq, vcode, occurred_at, next_status_at FROM _events WHERE kind_code = 3
), cut AS (
    SELECT s.ticket_id, b.tid, CAST(b.seq AS BIGINT) AS seq,
           CASE WHEN b.seq = 0 THEN getvariable('initial_status') ELSE v.value END AS status,
           -- a status without a value (vcode NULL, hand-written rows only) runs the clock
           CASE WHEN b.seq > 0 THEN coalesce(v.state, 'running')
                ELSE _sla_clock_state(getvariable('initial_status')) END AS state,
           b.seg_start AS start_at,
           least(coalesce(b.next_start, s.resolved_at, getvariable('_sla_as_of')),
                 coalesce(s.resolved_at, getvariable('_sla_as_of'))) AS end_at
    FROM boundaries b JOIN _stops s USING (tid) LEFT JOIN _event_values v USING (vcode)
    WHERE b.seg_start < coalesce(s.resolved_at, getvariable('_sla_as_of'))
       OR (b.seq = 0 AND b.seg_start = coalesce(s.resolved_at, getvariable('_sla_as_of')))
)
SELECT s.ticket_id, s.seq, s.status, s.state, s.start_at, s.end_at,
       greatest((ke.cum_before + least(greatest(s.e1 - ke.open_epoch, 0), ke.business_seconds))
              - (ks.cum_before + least(greatest(s.e0 - ks.open_epoch, 0), ks.business_seconds)), 0) AS business_seconds,
       s.tid
FROM (SELECT *, epoch(start_at)::BIGINT AS e0, epoch(end_at)::BIGINT AS e1 FROM cut) s
JOIN business_clock_buckets ks ON ks.k = least(greatest(s.e0 - getvariable('clock_base'), 0) // getvariable('clock_bucket'), getvariable('clock_max'))
JOIN business_clock_buckets ke ON ke.k = least(greatest(s.e1 - getvariable('clock_base'), 0) // getvariable('clock_bucket'), getvariable('clock_max'))
ORDER BY s.tid, s.seq;
SET preserve_insertion_order = false;

CREATE OR REPLACE TEMP TABLE _durations AS
SELECT tid,
       coalesce(sum(business_seconds) FILTER (WHERE state = 'running'), 0) AS running_seconds,
       coalesce(sum(business_seconds) FILTER (WHERE state = 'paused'), 0) AS paused_seconds
FROM incident_clock_segments GROUP BY tid;

ALTER TABLE incident_clock_segments DROP COLUMN tid;

-- Severity in effect at an instant: last severity event at or before it (the most severe of
-- one instant, by the event order above). Only incidents with a severity change have a row.
CREATE OR REPLACE TEMP TABLE _severity_changes AS
SELECT c.tid, c.occurred_at, CAST(v.value AS INTEGER) AS severity
FROM (SELECT tid, occurred_at, arg_max(vcode, seq) AS vcode FROM _events WHERE kind_code = 2 GROUP BY tid, occurred_at) c
LEFT JOIN _event_values v USING (vcode);

DROP TABLE _events;  -- 60M rows at 10M incidents, read for the last time above

CREATE OR REPLACE TEMP TABLE _severities AS
SELECT s.tid,
       arg_max(c.severity, c.occurred_at) FILTER (WHERE c.occurred_at <= coalesce(s.first_response_at, p.as_of)) AS fr_severity,
       arg_max(c.severity, c.occurred_at) FILTER (WHERE c.occurred_at <= coalesce(s.resolved_at, p.as_of)) AS res_severity
FROM _severity_changes c JOIN _stops s USING (tid), run_params p
GROUP BY s.tid;

DROP TABLE _severity_changes;

-- The figures of each incident: a view, joined and sorted in one statement with the writing of
-- incident_sla (one 10M-row hash table left, _durations on tid; _stops is the probe side).
CREATE OR REPLACE TEMP VIEW _measured AS
SELECT t.* EXCLUDE (fr_e, fr_severity, res_severity),
       coalesce(t.fr_severity, t.created_severity) AS first_response_severity,
       coalesce(t.res_severity, t.created_severity) AS resolution_severity,
       ft.first_response_seconds AS first_response_target_seconds,
       rt.resolution_seconds AS resolution_target_seconds,
       tier_q.monthly_incident_quota AS quota,
       CASE WHEN t.first_response_at IS NOT NULL THEN greatest(
           cr.cum_before + least(greatest(t.fr_e - cr.open_epoch, 0), cr.business_seconds) - t.created_clock, 0)
       END AS first_response_business_seconds,
       greatest(ca.clock - t.created_clock, 0) AS elapsed_business_seconds,
       d.running_seconds, d.paused_seconds
FROM (SELECT t.*, sv.fr_severity, sv.res_severity, epoch(t.first_response_at)::BIGINT AS fr_e,
             cf.cum_before + least(greatest(epoch(t.created_at)::BIGINT - cf.open_epoch, 0), cf.business_seconds)
                 AS created_clock
      FROM _stops t LEFT JOIN _severities sv USING (tid) LEFT JOIN business_clock_buckets cf ON cf.k = least(greatest(epoch(t.created_at)::BIGINT - getvariable('clock_base'), 0) // getvariable('clock_bucket'), getvariable('clock_max'))) t
LEFT JOIN _durations d USING (tid)  -- every incident has one (its first segment); LEFT: built on this side
LEFT JOIN business_clock_buckets cr ON cr.k = least(greatest(t.fr_e - getvariable('clock_base'), 0) // getvariable('clock_bucket'), getvariable('clock_max'))
CROSS JOIN (SELECT c.cum_before + least(greatest(epoch(p.as_of)::BIGINT - c.open_epoch, 0), c.business_seconds) AS clock
            FROM run_params p JOIN business_clock_buckets c ON c.k = least(greatest(epoch(p.as_of)::BIGINT - getvariable('clock_base'), 0) // getvariable('clock_bucket'), getvariable('clock_max'))) ca
-- Targets and quota (sla-semantics.md section 6): the policy version in force on the local date of
-- creation, under the contract's term set (NULL = the tier's standard terms).
LEFT JOIN sla_targets_versioned ft ON ft.tier = t.tier AND ft.severity = coalesce(t.fr_severity, t.created_severity)
      AND ft.terms IS NOT DISTINCT FROM t.terms AND t.local_date BETWEEN ft.valid_from AND ft.valid_to
LEFT JOIN sla_targets_versioned rt ON rt.tier = t.tier AND rt.severity = coalesce(t.res_severity, t.created_severity)
      AND rt.terms IS NOT DISTINCT FROM t.terms AND t.local_date BETWEEN rt.valid_from AND rt.valid_to
LEFT JOIN sla_tiers_versioned tier_q ON tier_q.tier = t.tier
      AND tier_q.terms IS NOT DISTINCT FROM t.terms AND t.local_date BETWEEN tier_q.valid_from AND tier_q.valid_to;

SET preserve_insertion_order = true;

CREATE OR REPLACE TABLE incident_sla AS
SELECT m.ticket_id,
       m.customer_id,
       m.tier,
       m.first_response_severity,
       m.resolution_severity,
       m.first_response_at,
       m.resolved_at,
       m.first_response_business_seconds::BIGINT AS first_response_business_seconds,
       m.first_response_target_seconds::BIGINT AS first_response_target_seconds,
       -- due instant: inverse lookup, the day whose cumulative business time first reaches the goal
       -- created_clock + target (cum_before < goal <= cum_end): row (goal - 1) // due_bucket of business_due_buckets
       CASE WHEN m.first_response_target_seconds = 0 THEN m.created_at
            ELSE to_timestamp(fd.open_epoch + (m.created_clock + m.first_response_target_seconds - fd.cum_before))
       END AS first_response_due_at,
       CASE WHEN m.first_response_target_seconds IS NULL OR xf.ticket_id IS NOT NULL THEN NULL
            WHEN m.first_response_at IS NOT NULL THEN m.first_response_business_seconds <= m.first_response_target_seconds
            WHEN m.elapsed_business_seconds > m.first_response_target_seconds THEN false
       END AS first_response_met,
       CASE WHEN m.resolved_at IS NOT NULL THEN m.running_seconds END::BIGINT AS resolution_business_seconds,
       CASE WHEN m.resolved_at IS NOT NULL THEN m.paused_seconds END::BIGINT AS paused_business_seconds,
       m.resolution_target_seconds::BIGINT AS resolution_target_seconds,
       CASE WHEN m.resolution_target_seconds IS NULL OR xr.ticket_id IS NOT NULL THEN NULL
            WHEN m.resolved_at IS NOT NULL THEN m.running_seconds <= m.resolution_target_seconds
            WHEN m.running_seconds > m.resolution_target_seconds THEN false
       END AS resolution_met,
       _sla_over_quota(m.tier, m.quota_rank, m.quota) AS over_quota,
       xf.ticket_id IS NOT NULL AS first_response_excluded,
       xr.ticket_id IS NOT NULL AS resolution_excluded,
       -- extensions beyond the data contract (for reports and explanations)
       m.created_at,
       m.month,
       m.created_severity,
       m.current_status,
       m.quota_rank::INTEGER AS quota_rank,
       m.running_seconds::BIGINT AS resolution_elapsed_business_seconds,
       m.paused_seconds::BIGINT AS paused_elapsed_business_seconds,
       CASE WHEN m.first_response_at IS NULL THEN m.elapsed_business_seconds END::BIGINT AS first_response_elapsed_business_seconds,
       m.terms,                                   -- the contract's term set; NULL = standard terms
       m.quota::INTEGER AS quota,                 -- allowance of the incident's tier (version, terms)
       xf.reason AS first_response_exclusion_reason,
       xr.reason AS resolution_exclusion_reason,
       p.as_of
FROM _measured m
LEFT JOIN business_due_buckets fd ON fd.q = (m.created_clock + m.first_response_target_seconds - 1) // getvariable('due_bucket')
LEFT JOIN incident_exclusions xf ON xf.ticket_id = m.ticket_id AND xf.metric = 'first_response'
LEFT JOIN incident_exclusions xr ON xr.ticket_id = m.ticket_id AND xr.metric = 'resolution'
CROSS JOIN run_params p
ORDER BY m.tid;

DROP VIEW _measured;
DROP TABLE _stops;
DROP TABLE _durations;
DROP TABLE _severities;

SET preserve_insertion_order = getvariable('_sla_insertion_order');
