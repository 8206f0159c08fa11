-- Gold billing reconciliation (sla-semantics.md section 5). Money in integer cents, rounded
-- half-up per calendar month; never floating point.
-- Inputs: contracts, invoices, run_params (as_of), gold_fee_cents (from the policy).

-- Every day on which a Gold contract is in force (open-ended contracts: up to the latest date
-- any invoice or the cut-off needs).
CREATE OR REPLACE TEMP TABLE _horizon AS
SELECT greatest(CAST(timezone('{tz}', p.as_of) AS DATE),
                coalesce((SELECT max(period_end) FROM invoices), DATE '1970-01-01')) AS last_day,
       CAST(timezone('{tz}', p.as_of) AS DATE) AS cutoff_day
FROM run_params p;

CREATE OR REPLACE TEMP TABLE _gold_days AS
SELECT DISTINCT c.customer_id, CAST(d.day AS DATE) AS day
FROM contracts c, _horizon h,
     LATERAL (SELECT unnest(generate_series(c.valid_from, least(coalesce(c.valid_to, h.last_day), h.last_day),
                                            INTERVAL 1 DAY)) AS day) d
WHERE c.tier = 'gold';

-- One day's share of the monthly fee is not rounded; a month's part is: fee x days / days_in_month.
CREATE OR REPLACE MACRO month_part_cents(fee_cents, days, days_in_month) AS
    (2 * fee_cents * days + days_in_month) // (2 * days_in_month);

-- exact: DECIMAL multiplication, no division and no float
CREATE OR REPLACE MACRO cents_to_eur(cents) AS CAST(CAST(cents AS DECIMAL(18,0)) * 0.01 AS DECIMAL(12,2));

CREATE OR REPLACE TEMP TABLE _invoice_days AS
SELECT i.invoice_id, i.customer_id, CAST(d.day AS DATE) AS day
FROM invoices i,
     LATERAL (SELECT unnest(generate_series(i.period_start, i.period_end, INTERVAL 1 DAY)) AS day) d;

CREATE OR REPLACE TEMP TABLE _invoice_owed AS
SELECT invoice_id, coalesce(sum(part), 0) AS owed_cents
FROM (
    SELECT d.invoice_id, date_trunc('month', d.day) AS month,
           month_part_cents(f.fee_cents, count(*), day(last_day(any_value(d.day)))) AS part
    FROM _invoice_days d JOIN _gold_days g USING (customer_id, day), gold_fee f
    GROUP BY d.invoice_id, date_trunc('month', d.day), f.fee_cents
) GROUP BY invoice_id;

-- An invoice overlapping one of the same customer issued earlier (same day: smaller id first).
CREATE OR REPLACE TEMP TABLE _overlapping AS
SELECT DISTINCT a.invoice_id
FROM invoices a JOIN invoices b
  ON a.customer_id = b.customer_id AND a.invoice_id <> b.invoice_id
 AND a.period_start <= b.period_end AND b.period_start <= a.period_end
 AND (b.issued_on < a.issued_on OR (b.issued_on = a.issued_on AND b.invoice_id < a.invoice_id));

-- Runs of Gold days up to the cut-off that no invoice of the customer covers.
CREATE OR REPLACE TEMP TABLE _unbilled_runs AS
WITH unbilled AS (
    SELECT g.customer_id, g.day
    FROM _gold_days g, _horizon h
    WHERE g.day <= h.cutoff_day
      AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = g.customer_id
                                               AND g.day BETWEEN i.period_start AND i.period_end)
), islands AS (
    SELECT customer_id, day,
           day - CAST(row_number() OVER (PARTITION BY customer_id ORDER BY day) AS INTEGER) AS island
    FROM unbilled
), runs AS (
    SELECT customer_id, island, min(day) AS period_start, max(day) AS period_end FROM islands GROUP BY ALL
), run_months AS (
    SELECT r.customer_id, r.period_start, r.period_end, date_trunc('month', i.day) AS month,
           month_part_cents(f.fee_cents, count(*), day(last_day(any_value(i.day)))) AS part
    FROM runs r JOIN islands i USING (customer_id, island), gold_fee f
    GROUP BY r.customer_id, r.period_start, r.period_end, date_trunc('month', i.day), f.fee_cents
)
SELECT customer_id, period_start, period_end, sum(part) AS owed_cents FROM run_months GROUP BY ALL;

CREATE OR REPLACE TABLE gold_reconciliation AS
WITH lines AS (
    SELECT i.customer_id, i.invoice_id, i.period_start, i.period_end, i.issued_on,
           coalesce(o.owed_cents, 0) AS owed_cents, CAST(i.amount_eur * 100 AS BIGINT) AS invoiced_cents,
           CASE WHEN i.invoice_id IN (SELECT invoice_id FROM _overlapping) THEN 'overlap'
                WHEN coalesce(o.owed_cents, 0) = 0 THEN 'not_gold'
                WHEN CAST(i.amount_eur * 100 AS BIGINT) = o.owed_cents THEN 'ok'
                WHEN CAST(i.amount_eur * 100 AS BIGINT) < o.owed_cents THEN 'under_billed'
                ELSE 'over_billed' END AS status
    FROM invoices i LEFT JOIN _invoice_owed o USING (invoice_id)
    UNION ALL
    SELECT customer_id, NULL, period_start, period_end, NULL, owed_cents, 0, 'not_invoiced'
    FROM _unbilled_runs
)
SELECT customer_id, invoice_id, period_start, period_end,
       cents_to_eur(owed_cents) AS owed_eur,
       cents_to_eur(invoiced_cents) AS invoiced_eur,
       cents_to_eur(invoiced_cents - owed_cents) AS difference_eur,
       status,
       issued_on
FROM lines
ORDER BY customer_id, period_start, invoice_id NULLS LAST;
