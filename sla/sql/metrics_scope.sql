-- The incidents an incremental metrics run recomputes (sla/incremental.py): temp table metrics_scope;
-- metrics_rank_only: those of them that need a new quota rank and nothing else;
-- metrics_kept_ranks: those of them whose quota rank cannot have changed, with that rank; and
-- metrics_rank_from / metrics_rank_offsets: where ranks can start to move in each customer-month,
-- and how many incidents of each tier are ranked before that point.
-- Inputs: metrics_pending (kind 'ticket' / 'history' / 'customer', id) written by the import, the previous
-- incident_sla, tickets, ticket_events, exclusions, run_params (the new cut-off) and the variables
-- tz, old_as_of (the previous run's cut-off), cut_lo / cut_hi (the earlier and the later of the two).

-- Seeds that can move the quota rank of other incidents of their customer-month: tickets that are
-- new, removed, or have another customer or creation time (kind 'ticket'), every incident of a
-- customer whose contracts changed, and incidents created between the two cut-offs (they enter or
-- leave the ranking).
CREATE OR REPLACE TEMP TABLE _rank_seeds AS
SELECT id AS ticket_id FROM metrics_pending WHERE kind = 'ticket'
UNION
SELECT ticket_id FROM incident_sla WHERE customer_id IN (SELECT id FROM metrics_pending WHERE kind = 'customer')
UNION
SELECT t.ticket_id FROM tickets t, run_params p
WHERE t.customer_id IN (SELECT id FROM metrics_pending WHERE kind = 'customer') AND t.created_at <= p.as_of
UNION
SELECT ticket_id FROM tickets WHERE created_at > getvariable('cut_lo') AND created_at <= getvariable('cut_hi');

-- Where they sit in their customer-months, as the previous run saw them and as they are now. A
-- quota rank counts the incidents of its customer-month and tier ordered before it (creation time,
-- then ticket id), so a seed can only move the ranks of incidents ordered after it: from_key is the
-- first seed position per customer-month.
CREATE OR REPLACE TEMP TABLE _rank_groups AS
SELECT customer_id, month, min(k) AS from_key FROM (
    SELECT customer_id, month, struct_pack(c := created_at, t := ticket_id) AS k
    FROM incident_sla WHERE ticket_id IN (SELECT ticket_id FROM _rank_seeds)
    UNION ALL
    SELECT t.customer_id, strftime(timezone(getvariable('tz'), t.created_at), '%Y-%m'),
           struct_pack(c := t.created_at, t := t.ticket_id)
    FROM tickets t, run_params p
    WHERE t.ticket_id IN (SELECT ticket_id FROM _rank_seeds) AND t.created_at <= p.as_of
)
GROUP BY customer_id, month;

-- The scope: the incidents whose ranks can have moved (the seeds and the incidents ordered after
-- them in their customer-months), and those whose own figures can change (_own_changes): the
-- seeds, tickets whose history alone changed (events, severity, exclusions: kind 'history'), and,
-- when the cut-off moved, the incidents whose figures depend on it: running at the old cut-off
-- (their clocks and elapsed times), or with an event or an exclusion approval between the two
-- cut-offs (incidents created in between are seeds). An incident resolved at both cut-offs with
-- nothing in between keeps its figures.
CREATE OR REPLACE TEMP TABLE _ranks_moved AS
SELECT ticket_id FROM _rank_seeds
UNION
SELECT s.ticket_id FROM incident_sla s JOIN _rank_groups g USING (customer_id, month)
WHERE struct_pack(c := s.created_at, t := s.ticket_id) > g.from_key;

CREATE OR REPLACE TEMP TABLE _own_changes AS
SELECT ticket_id FROM _rank_seeds
UNION
SELECT id FROM metrics_pending WHERE kind = 'history'
UNION
SELECT ticket_id FROM incident_sla
WHERE getvariable('cut_lo') < getvariable('cut_hi') AND resolved_at IS NULL
UNION
SELECT ticket_id FROM ticket_events
WHERE occurred_at > getvariable('cut_lo') AND occurred_at <= getvariable('cut_hi')
UNION
SELECT ticket_id FROM exclusions
WHERE approved_at > getvariable('cut_lo') AND approved_at <= getvariable('cut_hi');

CREATE OR REPLACE TEMP TABLE metrics_scope AS
SELECT ticket_id FROM _ranks_moved UNION SELECT ticket_id FROM _own_changes;

-- Incidents of the scope for their rank alone (nothing of their own changed: not a seed, no new
-- history, not touched by the cut-off): every figure but quota_rank and over_quota stays as it was,
-- so incident_sla.sql only ranks them (metrics_new_ranks) and sla/incremental.py carries their
-- other columns over from the previous row.
CREATE OR REPLACE TEMP TABLE metrics_rank_only AS
SELECT ticket_id FROM _ranks_moved WHERE ticket_id NOT IN (SELECT ticket_id FROM _own_changes);

-- Incidents of the scope whose quota rank cannot have changed keep the previous run's (no seed is
-- ranked before them in their customer-month); incident_sla.sql ranks the others.
CREATE OR REPLACE TEMP TABLE metrics_kept_ranks AS
SELECT ticket_id, CAST(quota_rank AS BIGINT) AS quota_rank FROM incident_sla
WHERE ticket_id IN (SELECT ticket_id FROM metrics_scope) AND ticket_id NOT IN (SELECT ticket_id FROM _ranks_moved);

-- metrics_rank_from: the customer-months of the incidents ranked anew (_ranks_moved: the seeds' old
-- and new months, and the incidents after them in those months), each with its first seed.
-- The incidents of a customer-month ordered before its first seed keep their ranks (nothing before
-- them changed: a new, removed or moved incident, a changed contract or a cut-off that lets incidents
-- in or out is a seed), so incident_sla.sql ranks only the incidents from the first seed on, and
-- starts each tier's count after the incidents of that tier ranked before it: a quota rank is the
-- position among the incidents of its customer, month and tier, so those number 1..n.
CREATE OR REPLACE TEMP TABLE metrics_rank_from AS SELECT customer_id, month, from_key FROM _rank_groups;

CREATE OR REPLACE TEMP TABLE metrics_rank_offsets AS
SELECT s.customer_id, s.month, s.tier, count(*) AS ranked_before
FROM incident_sla s JOIN _rank_groups g USING (customer_id, month)
WHERE s.tier IS NOT NULL AND struct_pack(c := s.created_at, t := s.ticket_id) < g.from_key
GROUP BY s.customer_id, s.month, s.tier;

DROP TABLE _rank_seeds;
DROP TABLE _rank_groups;
DROP TABLE _ranks_moved;
DROP TABLE _own_changes;
