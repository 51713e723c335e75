-- Limits stated and enforced before allocating (SPEC §11): the length of a text customer
-- key (rfm.max_key_bytes, checked on the stored size before the key is read), the size of a
-- saved scheme document (rfm.max_scheme_bytes, before the document is read) and the number
-- of customers of one analysis (rfm.max_customers). Before: a 3.4 MB scheme was saved (and
-- every reader of rfm.schemes paid for it), and 1,200 keys of 1 MB drove a backend to 2.5 GB.
SET TimeZone = 'UTC';
CREATE TABLE lim_tx (customer_id text, ordered_at timestamptz, amount numeric);
INSERT INTO lim_tx SELECT 'c' || g, '2025-12-01', 10 FROM generate_series(1, 20) g;
SELECT (SELECT sum(customers) FROM rfm.summary(rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}')))
       AS customers_with_short_keys FROM lim_tx;
SHOW rfm.max_key_bytes;
SHOW rfm.max_scheme_bytes;
-- a key of 2,000 bytes: 54000 naming the setting
INSERT INTO lim_tx VALUES (repeat('k', 2000), '2025-12-02', 5);
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}') FROM lim_tx$$);
SET rfm.max_key_bytes = 4096;
SELECT (SELECT sum(customers) FROM rfm.summary(a)) AS customers_with_the_limit_raised
FROM (SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}') AS a FROM lim_tx) s;
RESET rfm.max_key_bytes;
-- keys of 1 MB, stored compressed: refused at the first one, on its stored size
DELETE FROM lim_tx WHERE length(customer_id) > 100;
INSERT INTO lim_tx SELECT repeat(chr(65 + g % 26), 1000000), '2025-12-03', 1 FROM generate_series(1, 50) g;
SELECT pg_column_size(customer_id) < 100000 AS stored_compressed FROM lim_tx WHERE length(customer_id) > 100 LIMIT 1;
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}') FROM lim_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}') FROM lim_tx$$);
SELECT rfm_test.error_of($$SET rfm.max_key_bytes = 2000000$$);
-- a scheme document over rfm.max_scheme_bytes: 54000 before it is read; under it, saved
WITH rule AS (
    SELECT jsonb_build_array(jsonb_build_object('name', 'Any', 'when', '{"r": {">=": 1}}'::jsonb)) AS segments)
SELECT rfm_test.error_of(format('SELECT rfm.create_scheme(%L, %L)', 'lim_big',
           jsonb_build_object('description', repeat('a long description ', 5000), 'segments', segments)))
FROM rule;
WITH rule AS (
    SELECT jsonb_build_array(jsonb_build_object('name', 'Any', 'when', '{"r": {">=": 1}}'::jsonb)) AS segments)
SELECT rfm.create_scheme('lim_small', jsonb_build_object('description', repeat('a description ', 100), 'segments', segments))
       ? 'segments' AS saved
FROM rule;
SELECT rfm.drop_scheme('lim_small');
-- only a superuser may raise the scheme limit
CREATE ROLE lim_user;
SET ROLE lim_user;
SELECT rfm_test.error_of($$SET rfm.max_scheme_bytes = 1000000$$);
RESET ROLE;
DROP ROLE lim_user;
-- the number of customers of one analysis
SET rfm.max_customers = 10;
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}') FROM lim_tx WHERE length(customer_id) < 100$$);
RESET rfm.max_customers;
DROP TABLE lim_tx;
