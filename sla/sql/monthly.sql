-- Monthly aggregates (sla-semantics.md section 4): views over incident_sla, so every month as of its
-- cut-off (`as_of`). sla/metrics.py compute_monthly materialises them as the tables monthly_sla and
-- monthly_quota, whole, in the step that rebuilds incident_sla: no table mixes two cut-offs. An
-- incremental run (sla/incremental.py rebuild_months) runs this file over the incidents of the
-- affected customer-months only and replaces their rows; the others only take the new cut-off.

-- Per month x customer x tier x severity x metric; the severity is the one that applies to the metric.
CREATE OR REPLACE VIEW monthly_sla_view AS
WITH metric_rows AS (
    SELECT month, customer_id, tier, 'first_response' AS metric, first_response_severity AS severity,
           first_response_met AS met, first_response_target_seconds AS target_seconds,
           first_response_business_seconds AS business_seconds, first_response_excluded AS excluded, as_of
    FROM incident_sla
    UNION ALL
    SELECT month, customer_id, tier, 'resolution', resolution_severity,
           resolution_met, resolution_target_seconds, resolution_business_seconds, resolution_excluded, as_of
    FROM incident_sla
)
SELECT month, customer_id, tier, severity, metric, incidents, met, breached, pending, no_target,
       compliance_rate, quantiles[1] AS median_business_seconds, quantiles[2] AS p90_business_seconds,
       measured, as_of, excluded
FROM (
    SELECT month, customer_id, tier, severity, metric,
           count(*) AS incidents,
           count(*) FILTER (WHERE met) AS met,
           count(*) FILTER (WHERE NOT met) AS breached,
           count(*) FILTER (WHERE met IS NULL AND target_seconds IS NOT NULL AND NOT excluded) AS pending,
           count(*) FILTER (WHERE target_seconds IS NULL AND NOT excluded) AS no_target,
           CAST(count(*) FILTER (WHERE met) AS DOUBLE) / nullif(count(*) FILTER (WHERE met IS NOT NULL), 0) AS compliance_rate,
           -- the median and the 90th percentile (interpolated) from one sort of the group's times
           quantile_cont(business_seconds, [0.5, 0.9]) AS quantiles,
           count(business_seconds) AS measured,
           any_value(as_of) AS as_of,
           -- approved exclusions (sla-semantics.md section 6): neither met, breached, pending nor no_target
           count(*) FILTER (WHERE excluded) AS excluded
    FROM metric_rows
    GROUP BY month, customer_id, tier, severity, metric
);

-- Quota usage per month x customer x tier: each tier has its own allowance (`quota`), and
-- `over_quota` counts the incidents ranked beyond it within that tier (incident_sla.over_quota).
-- tier NULL: incidents without a contract; they use no allowance (quota NULL, over_quota 0).
CREATE OR REPLACE VIEW monthly_quota_view AS
SELECT s.month, s.customer_id, s.tier, count(*) AS incidents,
       max(s.quota) AS quota,                 -- the tier's allowance (policy version, customer terms)
       count(*) FILTER (WHERE s.over_quota) AS over_quota,
       count(*) FILTER (WHERE s.resolved_at IS NULL) AS open_at_cutoff,
       any_value(s.as_of) AS as_of
FROM incident_sla s
GROUP BY s.month, s.customer_id, s.tier;
