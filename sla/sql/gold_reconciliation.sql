-- Gold billing (sla-semantics.md section 5): reconciliation lines, pieces, invoice parts and the
-- service-year view. Money in integer cents (BIGINT / HUGEINT), never floating point; converted
-- to DECIMAL(12,2) only for the output columns.
-- Inputs: contracts (with `terms`), invoices, run_params (as_of), gold_fee (valid_from, valid_to,
-- terms, fee_cents: the Gold monthly fee per policy version and term set, sla-semantics.md section 6).
-- A day's fee is that of the version in force that day under the contract's terms; a piece (the
-- days of one line in one month) owes half-up(sum of its days' fees / days in the month).
-- Works on inclusive date intervals (Gold spans cut into segments at invoice-period boundaries),
-- never on one row per day; tests/sla/billing_reference.py checks it day by day.
--
-- Choices where the rules are silent (also in sla/billing.py):
-- * Invoice order is (issued_on, natural order of invoice_id, invoice_id as text). Natural order
--   splits the id into (text, digits) pairs, as Python's re.split(r'([0-9]+)', id) does, and
--   compares pair by pair: text by code point, digit runs as whole numbers of any length
--   (leading zeros dropped, then shorter = smaller, then digit by digit), a missing number
--   before any number, a shorter list first. Only ASCII 0-9 are digits. Ids equal in natural
--   order ('I-9', 'I-09') are ordered as plain text ('I-09' first).
-- * Credit notes (amount < 0) claim no day and do not make a later invoice an `overlap`: an
--   invoice is `overlap` when its period shares a day with the period of an earlier invoice
--   (invoice order, same customer) that is not a credit note. An amount of 0.00 is an invoice.
-- * Days an invoice claims after the cut-off count (an annual invoice owes its whole year);
--   only unbilled runs stop at the cut-off's local date.
-- * Allocation of an invoice to its months: half-up for negative amounts is half away from
--   zero, so a credit note's parts are exactly the negated parts of the invoice it mirrors.
-- * gold_service_year has a row for every customer and year with a piece (a Gold day assigned
--   to an invoice or an unbilled run) or a month of an existing invoice's period, even when
--   that row's figures are all 0.00.

-- half-up to the cent of fee x days / days_in_month (all non-negative)
CREATE OR REPLACE MACRO month_part_cents(fee_cents, days, days_in_month) AS
    (2 * fee_cents * days + days_in_month) // (2 * days_in_month);

-- half-up to the cent of (sum over the days of each day's fee) / days_in_month
CREATE OR REPLACE TEMP MACRO _fee_days_cents(fee_days, days_in_month) AS
    (2 * fee_days + days_in_month) // (2 * days_in_month);

-- exact: DECIMAL multiplication, no division and no float
CREATE OR REPLACE MACRO cents_to_eur(cents) AS CAST(CAST(cents AS DECIMAL(18,0)) * 0.01 AS DECIMAL(12,2));

-- num / den (den > 0) rounded to an integer, half away from zero (symmetric: f(-x) = -f(x))
CREATE OR REPLACE TEMP MACRO _round_half_away(num, den) AS
    sign(num) * ((2 * abs(num) + den) // (2 * den));

-- natural sort key of an id: list of (text, number length, number) pairs; see the header
CREATE OR REPLACE TEMP MACRO _natural_key(s) AS
    list_transform(regexp_extract_all(s, '[^0-9]+[0-9]*|[0-9]+'),
        lambda c: struct_pack(
            t := regexp_extract(c, '^[^0-9]*'),
            n_len := CASE WHEN regexp_extract(c, '[0-9]*$') = '' THEN -1
                          ELSE length(ltrim(regexp_extract(c, '[0-9]*$'), '0')) END,
            n := ltrim(regexp_extract(c, '[0-9]*$'), '0')));

CREATE OR REPLACE TEMP TABLE _params AS
SELECT CAST(timezone(getvariable('tz'), p.as_of) AS DATE) AS cutoff_day
FROM run_params p;

-- The invoices that exist as of the cut-off (issued on or before its local date), with their
-- rank in invoice order per customer.
CREATE OR REPLACE TEMP TABLE _inv AS
SELECT i.invoice_id, i.customer_id, i.issued_on, i.period_start, i.period_end,
       CAST(i.amount_eur * 100 AS BIGINT) AS amount_cents,
       i.amount_eur < 0 AS is_credit,
       row_number() OVER (PARTITION BY i.customer_id
                          ORDER BY i.issued_on, _natural_key(i.invoice_id), i.invoice_id) AS seq
FROM invoices i, _params p
WHERE i.issued_on <= p.cutoff_day;

-- Gold is needed up to the cut-off (unbilled runs) and through every invoice period. Everything
-- below works on date intervals (inclusive), never on one row per day.
CREATE OR REPLACE TEMP TABLE _horizon AS
SELECT greatest(p.cutoff_day, coalesce((SELECT max(period_end) FROM _inv), p.cutoff_day)) AS last_day,
       p.cutoff_day
FROM _params p;

-- Gold spans: the customer's Gold contracts (open-ended: to the horizon), merged where they
-- overlap or touch.
CREATE OR REPLACE TEMP TABLE _gold_spans AS
WITH c AS (
    SELECT customer_id, valid_from AS s, least(coalesce(valid_to, h.last_day), h.last_day) AS e
    FROM contracts, _horizon h
    WHERE tier = 'gold' AND valid_from <= h.last_day
), marked AS (
    SELECT *, CASE WHEN s <= max(e) OVER (PARTITION BY customer_id ORDER BY s, e
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + 1
                   THEN 0 ELSE 1 END AS starts_span
    FROM c
), numbered AS (
    SELECT *, sum(starts_span) OVER (PARTITION BY customer_id ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS span
    FROM marked
)
SELECT customer_id, min(s) AS s, max(e) AS e FROM numbered GROUP BY customer_id, span;

-- Fee spans: each Gold contract cut at the policy versions, with the fee of that version under the
-- contract's terms. Contracts of one customer never overlap, so neither do these.
CREATE OR REPLACE TEMP TABLE _fee_spans AS
SELECT c.customer_id, greatest(c.valid_from, f.valid_from) AS s,
       least(coalesce(c.valid_to, h.last_day), h.last_day, f.valid_to) AS e, f.fee_cents
FROM contracts c, _horizon h, gold_fee f
WHERE c.tier = 'gold' AND c.valid_from <= h.last_day AND f.terms IS NOT DISTINCT FROM c.terms
  AND f.valid_from <= least(coalesce(c.valid_to, h.last_day), h.last_day) AND c.valid_from <= f.valid_to;

-- Elementary segments: the customer's Gold spans cut at every boundary of a (non-credit)
-- invoice period and after the cut-off day, so that within one segment every day has the same
-- invoices and the same side of the cut-off.
CREATE OR REPLACE TEMP TABLE _segments AS
WITH points AS (
    SELECT customer_id, s AS p FROM _gold_spans
    UNION SELECT customer_id, e + 1 FROM _gold_spans
    UNION SELECT customer_id, s FROM _fee_spans
    UNION SELECT customer_id, e + 1 FROM _fee_spans
    UNION SELECT customer_id, period_start FROM _inv WHERE NOT is_credit
    UNION SELECT customer_id, period_end + 1 FROM _inv WHERE NOT is_credit
    UNION SELECT g.customer_id, h.cutoff_day + 1 FROM _gold_spans g, _horizon h
), cut AS (
    SELECT customer_id, p AS s, lead(p) OVER (PARTITION BY customer_id ORDER BY p) - 1 AS e FROM points
)
SELECT c.customer_id, c.s, c.e, f.fee_cents
FROM cut c JOIN _gold_spans g ON g.customer_id = c.customer_id AND c.s BETWEEN g.s AND g.e
JOIN _fee_spans f ON f.customer_id = c.customer_id AND c.s BETWEEN f.s AND f.e
WHERE c.e IS NOT NULL;

-- Each Gold day belongs to the first invoice (invoice order) whose period contains it; credit
-- notes claim none. Days nobody claims count up to the cut-off's local date only.
CREATE OR REPLACE TEMP TABLE _seg_owner AS
SELECT customer_id, s, e, fee_cents, invoice_id
FROM (
    SELECT g.customer_id, g.s, g.e, g.fee_cents, arg_min(i.invoice_id, i.seq) AS invoice_id
    FROM _segments g
    LEFT JOIN _inv i ON i.customer_id = g.customer_id AND NOT i.is_credit
                    AND i.period_start <= g.s AND g.e <= i.period_end
    GROUP BY g.customer_id, g.s, g.e, g.fee_cents
), _horizon h
WHERE invoice_id IS NOT NULL OR e <= h.cutoff_day;

-- Unbilled runs: unclaimed segments merged where they touch (maximal runs of consecutive days).
CREATE OR REPLACE TEMP TABLE _run_segments AS
WITH marked AS (
    SELECT customer_id, s, e, fee_cents,
           CASE WHEN s = lag(e) OVER (PARTITION BY customer_id ORDER BY s) + 1 THEN 0 ELSE 1 END AS starts_run
    FROM _seg_owner WHERE invoice_id IS NULL
), numbered AS (
    SELECT *, sum(starts_run) OVER (PARTITION BY customer_id ORDER BY s ROWS UNBOUNDED PRECEDING) AS run
    FROM marked
)
SELECT customer_id, s, e, fee_cents, min(s) OVER (PARTITION BY customer_id, run) AS run_start,
       max(e) OVER (PARTITION BY customer_id, run) AS run_end
FROM numbered;

-- Pieces: the days of one invoice or one unbilled run in one calendar month.
CREATE OR REPLACE TABLE gold_pieces AS
WITH assigned AS (
    SELECT o.customer_id, o.invoice_id, i.period_start, i.period_end, o.s, o.e, o.fee_cents
    FROM _seg_owner o JOIN _inv i ON i.invoice_id = o.invoice_id
    UNION ALL
    SELECT customer_id, NULL, run_start, run_end, s, e, fee_cents FROM _run_segments
), grouped AS (
    SELECT a.customer_id, a.invoice_id, a.period_start, a.period_end, m.month,
           sum(m.days) AS days, sum(m.days * a.fee_cents) AS fee_days, any_value(m.days_in_month) AS days_in_month
    FROM assigned a,
         LATERAL (SELECT CAST(mm AS DATE) AS month,
                         least(a.e, last_day(CAST(mm AS DATE))) - greatest(a.s, CAST(mm AS DATE)) + 1 AS days,
                         day(last_day(CAST(mm AS DATE))) AS days_in_month
                  FROM (SELECT unnest(generate_series(CAST(date_trunc('month', a.s) AS DATE),
                                                      CAST(date_trunc('month', a.e) AS DATE), INTERVAL 1 MONTH)) AS mm)) m
    GROUP BY ALL
)
SELECT g.customer_id, g.invoice_id, g.period_start, g.period_end, g.month,
       CAST(year(g.month) AS INTEGER) AS year, CAST(g.days AS INTEGER) AS days,
       CAST(g.days_in_month AS INTEGER) AS days_in_month,
       CAST(_fee_days_cents(g.fee_days, g.days_in_month) AS BIGINT) AS owed_cents,
       cents_to_eur(_fee_days_cents(g.fee_days, g.days_in_month)) AS owed_eur
FROM grouped g
ORDER BY g.customer_id, g.month, g.period_start, g.invoice_id NULLS LAST;

-- Invoices whose period shares a day with an earlier (invoice order) non-credit invoice.
CREATE OR REPLACE TEMP TABLE _overlapping AS
SELECT DISTINCT a.invoice_id
FROM _inv a JOIN _inv b
  ON a.customer_id = b.customer_id AND b.seq < a.seq AND NOT b.is_credit
 AND a.period_start <= b.period_end AND b.period_start <= a.period_end
WHERE NOT a.is_credit;

CREATE OR REPLACE TABLE gold_reconciliation AS
WITH owed AS (
    SELECT customer_id, invoice_id, period_start, period_end, sum(owed_cents) AS owed_cents, sum(days) AS days
    FROM gold_pieces GROUP BY ALL
), lines AS (
    SELECT i.customer_id, i.invoice_id, i.period_start, i.period_end, i.issued_on, i.seq,
           coalesce(o.owed_cents, 0) AS owed_cents, i.amount_cents AS invoiced_cents,
           coalesce(o.days, 0) AS days,
           CASE WHEN i.is_credit THEN 'credit_note'
                WHEN i.invoice_id IN (SELECT invoice_id FROM _overlapping) THEN 'overlap'
                WHEN coalesce(o.owed_cents, 0) = 0 THEN 'not_gold'
                WHEN i.amount_cents = o.owed_cents THEN 'ok'
                WHEN i.amount_cents < o.owed_cents THEN 'under_billed'
                ELSE 'over_billed' END AS status
    FROM _inv i LEFT JOIN owed o ON o.invoice_id = i.invoice_id
    UNION ALL
    SELECT customer_id, NULL, period_start, period_end, NULL, NULL, owed_cents, 0, days, 'not_invoiced'
    FROM owed WHERE invoice_id IS NULL
)
SELECT customer_id, invoice_id, period_start, period_end,
       cents_to_eur(owed_cents) AS owed_eur,
       cents_to_eur(invoiced_cents) AS invoiced_eur,
       cents_to_eur(invoiced_cents - owed_cents) AS difference_eur,
       status,
       issued_on,
       CAST(days AS INTEGER) AS gold_days,          -- Gold days assigned to the line
       CAST(seq AS INTEGER) AS invoice_rank          -- position in invoice order within the customer
FROM lines
ORDER BY customer_id, period_start, invoice_rank NULLS LAST;

-- Each invoice's amount spread over the months of its period, in proportion to what the period
-- would owe on its own (weight = the month's prorated fee for the customer's Gold days in it,
-- rounded half-up; all weights 0 -> the period's calendar days in the month), rounded
-- cumulatively in date order: part_k = R(A x W_1..k / W) - R(A x W_1..k-1 / W).
CREATE OR REPLACE TABLE gold_invoice_parts AS
WITH invoice_months AS (
    SELECT i.invoice_id, i.customer_id, CAST(mm AS DATE) AS month,
           greatest(i.period_start, CAST(mm AS DATE)) AS s, least(i.period_end, last_day(CAST(mm AS DATE))) AS e
    FROM _inv i,
         LATERAL (SELECT unnest(generate_series(CAST(date_trunc('month', i.period_start) AS DATE),
                                                CAST(date_trunc('month', i.period_end) AS DATE), INTERVAL 1 MONTH)) AS mm)
), months AS (
    SELECT m.invoice_id, m.customer_id, m.month,
           any_value(m.e - m.s + 1) AS calendar_days,
           -- (least/greatest skip NULLs: count only rows that did join a Gold span)
           coalesce(sum(least(m.e, g.e) - greatest(m.s, g.s) + 1) FILTER (WHERE g.customer_id IS NOT NULL), 0) AS gold_days,
           coalesce(sum((least(m.e, g.e) - greatest(m.s, g.s) + 1) * g.fee_cents)
                    FILTER (WHERE g.customer_id IS NOT NULL), 0) AS fee_days,
           any_value(day(last_day(m.month))) AS days_in_month
    FROM invoice_months m
    LEFT JOIN _fee_spans g ON g.customer_id = m.customer_id AND g.s <= m.e AND m.s <= g.e
    GROUP BY m.invoice_id, m.customer_id, m.month
), fee_weights AS (
    SELECT m.*, _fee_days_cents(m.fee_days, m.days_in_month) AS fee_weight,
           sum(_fee_days_cents(m.fee_days, m.days_in_month)) OVER (PARTITION BY m.invoice_id) AS fee_total
    FROM months m
), weights AS (
    SELECT *, CAST(CASE WHEN fee_total > 0 THEN fee_weight ELSE calendar_days END AS HUGEINT) AS weight
    FROM fee_weights
), cumulative AS (
    SELECT w.*, i.amount_cents,
           sum(weight) OVER (PARTITION BY w.invoice_id ORDER BY month) AS cum_weight,
           sum(weight) OVER (PARTITION BY w.invoice_id) AS total_weight
    FROM weights w JOIN _inv i USING (invoice_id)
)
SELECT customer_id, invoice_id, month, CAST(year(month) AS INTEGER) AS year,
       CAST(calendar_days AS INTEGER) AS calendar_days, CAST(gold_days AS INTEGER) AS gold_days,
       CAST(weight AS BIGINT) AS weight, fee_total > 0 AS weighted_by_fee,
       CAST(_round_half_away(CAST(amount_cents AS HUGEINT) * cum_weight, total_weight)
            - _round_half_away(CAST(amount_cents AS HUGEINT) * (cum_weight - weight), total_weight) AS BIGINT)
           AS part_cents
FROM cumulative
ORDER BY customer_id, invoice_id, month;

CREATE OR REPLACE TABLE gold_service_year AS
WITH owed AS (
    SELECT customer_id, year, sum(owed_cents) AS owed_cents FROM gold_pieces GROUP BY ALL
), invoiced AS (
    SELECT customer_id, year, sum(part_cents) AS invoiced_cents FROM gold_invoice_parts GROUP BY ALL
), joined AS (
    SELECT customer_id, year, coalesce(o.owed_cents, 0) AS owed_cents, coalesce(i.invoiced_cents, 0) AS invoiced_cents
    FROM owed o FULL OUTER JOIN invoiced i USING (customer_id, year)
)
SELECT customer_id, CAST(year AS INTEGER) AS year,
       cents_to_eur(owed_cents) AS owed_eur,
       cents_to_eur(invoiced_cents) AS invoiced_eur,
       cents_to_eur(invoiced_cents - owed_cents) AS difference_eur,
       cents_to_eur(greatest(owed_cents - invoiced_cents, 0)) AS to_invoice_eur,
       cents_to_eur(greatest(invoiced_cents - owed_cents, 0)) AS to_credit_eur
FROM joined
ORDER BY customer_id, year;

-- Open items: every customer-year with something to invoice or to credit, whatever the year.
CREATE OR REPLACE VIEW gold_open_items AS
SELECT * FROM gold_service_year WHERE to_invoice_eur > 0 OR to_credit_eur > 0;

-- free the helpers (the output tables above hold what reports need)
DROP TABLE IF EXISTS _segments;
DROP TABLE IF EXISTS _seg_owner;
DROP TABLE IF EXISTS _run_segments;
