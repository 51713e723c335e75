#!/usr/bin/env bash
# rfm.analyze end to end in a LATIN1 database: non-ASCII text keys and option values must
# round-trip exactly through rfm.analyze, rfm.customers, rfm.summary, rfm.grid,
# rfm.excluded_keys, rfm.abc_tier, rfm.segment and rfm.check_options, with no internal
# error (XX000) and the expected SQLSTATEs where an error is expected.
# Assumes the extension is installed (cargo pgrx install); runs against a scratch
# PostgreSQL 15 cluster owned by the postgres user under /tmp, on a free port.
# Ends with "N passed, M failed" and exits non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
DB=rfm_latin1
source tests/integration/scratch_cluster.sh
start_scratch_cluster latin1 55700

# the client speaks UTF-8; the server converts to and from LATIN1
psql_() {
  "${as_pg[@]}" env PGCLIENTENCODING=UTF8 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "$work" -p "$port" -U postgres "$@"
}
psql_ -d postgres -c "CREATE DATABASE $DB ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
psql_ -d "$DB" <<'SQL'
CREATE EXTENSION rfm_segmentation;
CREATE SCHEMA t;
CREATE FUNCTION t.error_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE state text; msg text;
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN state || ': ' || msg;
END $$;
CREATE TABLE t.tx (customer text, ordered_at timestamptz, amount numeric);
INSERT INTO t.tx VALUES
    ('Jürgen Größe', '2025-12-30 10:00+00', 120.00),
    ('Jürgen Größe', '2025-11-02 10:00+00', 30.00),
    ('Åsa Ødegård', '2025-12-01 10:00+00', 75.50),
    ('Ça va ¿sí? ½ ©', '2025-09-15 10:00+00', 12.25),
    ('plain ascii', '2025-06-01 10:00+00', 5.00),
    ('Ñandú ausente', '2024-01-01 10:00+00', 9.99),
    ('ÿ last byte', '2025-12-31 09:00+00', 1.00);
CREATE TABLE t.result AS
SELECT rfm.analyze(customer, ordered_at, amount,
    '{"as_of": "2025-12-31 23:59:59+00", "abc_shares": [0.6, 0.3, 0.1],
      "abc_names": ["Größte", "Mittel", "Klein"], "keep_excluded": true}') AS a
FROM t.tx;
SQL

# from here on a failed condition is counted, not fatal
source tests/integration/checks.sh
q() { psql_ -d "$DB" -At -c "$1" 2>&1; }

eq "the database is LATIN1" "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()" "LATIN1"
eq "rfm.customers returns every active key with its exact characters" \
  "SELECT string_agg(customer_key, '|' ORDER BY customer_key) FROM rfm.customers((SELECT a FROM t.result))" \
  "Jürgen Größe|plain ascii|Åsa Ødegård|Ça va ¿sí? ½ ©|ÿ last byte"
eq "keys round-trip: every customer key is a key of the input" \
  "SELECT count(*) FROM rfm.customers((SELECT a FROM t.result)) c WHERE c.customer_key IN (SELECT customer FROM t.tx)" "5"
eq "monetary and frequency of a non-ASCII key" \
  "SELECT frequency || ' ' || monetary FROM rfm.customers((SELECT a FROM t.result)) WHERE customer_key = 'Jürgen Größe'" "2 150.00"
eq "non-ASCII ABC tier names from the options" \
  "SELECT string_agg(DISTINCT abc_tier, '|' ORDER BY abc_tier) FROM rfm.customers((SELECT a FROM t.result))" \
  "Größte|Klein|Mittel"
eq "the top customer is in the first (non-ASCII) tier" \
  "SELECT abc_tier FROM rfm.customers((SELECT a FROM t.result)) WHERE customer_key = 'Jürgen Größe'" "Größte"
eq "excluded keys round-trip" \
  "SELECT string_agg(k, '|') FROM rfm.excluded_keys((SELECT a FROM t.result)) k" "Ñandú ausente"
eq "overview counts" \
  "SELECT active_customers || ' ' || excluded_customers FROM rfm.overview((SELECT a FROM t.result))" "5 1"
eq "rfm.summary lists every segment and counts every customer" \
  "SELECT count(*) || ' ' || sum(customers) FROM rfm.summary((SELECT a FROM t.result))" "11 5"
eq "rfm.grid adds up" \
  "SELECT count(*) || ' ' || sum(customers) FROM rfm.grid((SELECT a FROM t.result))" "25 5"
eq "rfm.check_options returns non-ASCII names exactly" \
  "SELECT rfm.check_options('{\"abc_names\": [\"Größte\", \"Mittel\", \"Klein\"]}') ->> 'abc_names'" \
  '["Größte", "Mittel", "Klein"]'
eq "rfm.abc_tier with non-ASCII names" \
  "SELECT rfm.abc_tier(5, '{10,1}', '{Größte,Mittel,Klein}') || '|' || rfm.abc_tier(50, '{10,1}', '{Größte,Mittel,Klein}')" \
  "Mittel|Größte"
eq "rfm.segment with a non-ASCII scheme name is an unknown scheme (42704)" \
  "SELECT left(t.error_of(\$\$SELECT rfm.segment(1, 1, 1, 'größte')\$\$), 5)" "42704"
eq "a message quoting non-ASCII text is not garbled: its characters are written as code points" \
  "SELECT t.error_of(\$\$SELECT rfm.segment(1, 1, 1, 'ständard')\$\$)" \
  '42704: segment scheme "st\u00E4ndard" does not exist'
eq "a non-ASCII as_of is a named option error (22023)" \
  "SELECT left(t.error_of(\$\$SELECT rfm.check_options('{\"as_of\": \"bald ½ später\"}')\$\$), 26)" \
  '22023: option "as_of" is n'
eq "a non-ASCII period is a named option error (22023)" \
  "SELECT left(t.error_of(\$\$SELECT rfm.analyze(customer, ordered_at, amount, '{\"period\": \"ein Jahr ¼\"}') FROM t.tx\$\$), 26)" \
  '22023: option "period" is '
eq "the same analysis with double precision amounts and in parallel gives the same keys" \
  "SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
   SELECT string_agg(customer_key, '|' ORDER BY customer_key) FROM rfm.customers((SELECT rfm.analyze(customer, ordered_at, amount::float8, '{\"as_of\": \"2025-12-31 23:59:59+00\"}') FROM t.tx))" \
  "Jürgen Größe|plain ascii|Åsa Ødegård|Ça va ¿sí? ½ ©|ÿ last byte"
eq "a key that LATIN1 cannot hold never reaches the extension (22P05 from PostgreSQL)" \
  "SELECT left(t.error_of(\$\$SELECT rfm.analyze(convert_from('\\xe282ac'::bytea, 'UTF8'), now(), 1)\$\$), 5)" "22P05"
# the managed layer: an ABC segmentation with non-ASCII tiers, a default tier, overrides
q "SELECT rfm.create_segmentation('latin_abc', 't.tx', 'customer', 'ordered_at', 'amount',
   '{\"as_of\": \"2025-12-31 23:59:59+00\", \"abc_shares\": [0.6, 0.3, 0.1], \"abc_names\": [\"Größte\", \"Mittel\", \"Klein\"], \"default_tier\": \"Klein\"}', 'abc')" >/dev/null
q "SELECT rfm.create_segmentation('latin_rfm', 't.tx', 'customer', 'ordered_at', 'amount', '{\"as_of\": \"2025-12-31 23:59:59+00\"}')" >/dev/null
q "SELECT rfm.refresh('latin_abc'), rfm.refresh('latin_rfm')" >/dev/null
eq "a managed ABC segmentation keeps non-ASCII keys and tiers, default tier included" \
  "SELECT string_agg(customer_key || '=' || segment, '|' ORDER BY customer_key) FROM rfm.customer_segments WHERE segmentation = 'latin_abc'" \
  "$(q "SELECT string_agg(customer_key || '=' || abc_tier, '|' ORDER BY customer_key) FROM (SELECT customer_key, abc_tier FROM rfm.customers((SELECT a FROM t.result)) UNION ALL SELECT k, 'Klein' FROM rfm.excluded_keys((SELECT a FROM t.result)) k) x")"
eq "the history of the first refresh has every customer with its exact key" \
  "SELECT count(*) FROM rfm.history h JOIN rfm.segmentations s ON s.id = h.segmentation_id WHERE s.name = 'latin_abc' AND h.customer_key IN (SELECT customer FROM t.tx)" "6"
q "SELECT rfm.set_override('latin_abc', 'Åsa Ødegård', 'Größte')" >/dev/null
eq "an override of a non-ASCII key to a non-ASCII tier" \
  "SELECT segment || ' ' || automatic_segment FROM rfm.customer_segments WHERE segmentation = 'latin_abc' AND customer_key = 'Åsa Ødegård'" \
  "Größte $(q "SELECT abc_tier FROM rfm.customers((SELECT a FROM t.result)) WHERE customer_key = 'Åsa Ødegård'")"
eq "segment_summary of the ABC segmentation lists the non-ASCII tiers in order" \
  "SELECT string_agg(segment, '|' ORDER BY position) FROM rfm.segment_summary WHERE segmentation = 'latin_abc'" "Größte|Mittel|Klein"
eq "a second refresh after new orders logs the move of a non-ASCII key" \
  "INSERT INTO t.tx VALUES ('ÿ last byte', '2025-12-31 10:00+00', 500); SELECT rfm.refresh('latin_abc') IS NOT NULL; SELECT from_segment || '>' || to_segment FROM rfm.history WHERE customer_key = 'ÿ last byte' AND reason = 'refresh' AND run_id = (SELECT max(id) FROM rfm.runs)" \
  "$(printf 't\nKlein>Größte')"
eq "the managed RFM segmentation agrees with rfm.analyze" \
  "SELECT count(*) FROM rfm.customer_segments WHERE segmentation = 'latin_rfm' AND customer_key IN (SELECT customer FROM t.tx)" "5"
q "SELECT rfm.create_scheme('größe', '{\"description\": \"Nach Größe\", \"population\": \"all\", \"segments\": [{\"name\": \"Größte Kunden\", \"when\": {\"lifetime_value\": {\">=\": 100}}, \"actions\": [\"Grüße senden\"]}], \"default\": \"Übrige\"}')" >/dev/null
eq "a saved scheme with a non-ASCII name and segments segments the customers" \
  "SELECT string_agg(segment || '=' || customers, '|') FROM rfm.summary((SELECT rfm.analyze(customer, ordered_at, amount, '{\"as_of\": \"2025-12-31 23:59:59+00\", \"scheme\": \"größe\"}') FROM t.tx))" \
  "Größte Kunden=2|Übrige=4"  # Jürgen Größe (150) and ÿ last byte (501 with its new order)
eq "rfm.schemes shows the saved scheme's non-ASCII names" \
  "SELECT scheme || ' ' || scheme_description || ' ' || segment || ' ' || array_to_string(actions, ',') FROM rfm.schemes WHERE scheme = 'größe' AND position = 1" \
  "größe Nach Größe Größte Kunden Grüße senden"
eq "rfm.scheme_definition returns the saved document" \
  "SELECT rfm.scheme_definition('größe') -> 'segments' -> 0 ->> 'name'" "Größte Kunden"
eq "no internal error anywhere in the server log" "SELECT 1" "1"
grep -q "XX000\|PANIC\|panicked" "$work/server.log"
[ $? != 0 ]
check "the server log has no internal error or panic" $?

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
