#!/usr/bin/env bash
# rfm.analyze and a managed segmentation in a SQL_ASCII database, whose text has no declared
# encoding: keys that are not UTF-8 must come back byte for byte, and two keys that differ
# only in such bytes must stay two customers (before: every such byte became U+FFFD, two
# customers collapsed into one key and neither matched the source). UTF-8 keys round-trip
# too. Assumes the extension is installed; runs against a scratch PostgreSQL 15 cluster
# owned by the postgres user under /tmp, on a free port.
# Ends with "N passed, M failed" and exits non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
DB=rfm_sql_ascii
source tests/integration/scratch_cluster.sh
start_scratch_cluster sqlascii 55750

psql_() {
  "${as_pg[@]}" env PGCLIENTENCODING=SQL_ASCII "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "$work" -p "$port" -U postgres "$@"
}
psql_ -d postgres -c "CREATE DATABASE $DB ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
psql_ -d "$DB" <<'SQL'
CREATE EXTENSION rfm_segmentation;
CREATE TABLE tx (customer text, ordered_at timestamptz, amount numeric);
-- keys as raw bytes: Latin-1 e-acute and e-grave (not UTF-8), a lone UTF-8 lead byte, a key
-- in UTF-8 (valid), and plain ASCII
INSERT INTO tx
SELECT convert_from(k, 'SQL_ASCII'), '2025-12-31'::timestamptz - g * interval '9 days', 10 + g
FROM (VALUES ('\x636166e9'::bytea), ('\x636166e8'), ('\x61c3'), ('\x4dc3bc6c6c6572'), ('\x706c61696e')) v(k),
     generate_series(1, 3) g;
INSERT INTO tx VALUES (convert_from('\x6f6c64ff'::bytea, 'SQL_ASCII'), '2024-01-01', 5);
CREATE TABLE result AS
SELECT rfm.analyze(customer, ordered_at, amount, '{"as_of": "2025-12-31 23:59:59+00", "keep_excluded": true}') AS a
FROM tx;
SQL

source tests/integration/checks.sh
q() { psql_ -d "$DB" -At -c "$1" 2>&1; }

eq "the database is SQL_ASCII" "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()" "SQL_ASCII"
eq "five active customers: keys differing only in bytes that are not UTF-8 stay apart" \
  "SELECT active_customers FROM rfm.overview((SELECT a FROM result))" "5"
eq "rfm.customers returns every key byte for byte" \
  "SELECT string_agg(encode(convert_to(customer_key, 'SQL_ASCII'), 'hex'), ',' ORDER BY 1) FROM rfm.customers((SELECT a FROM result))" \
  "4dc3bc6c6c6572,61c3,636166e8,636166e9,706c61696e"
eq "every customer key is a key of the source" \
  "SELECT count(*) FROM rfm.customers((SELECT a FROM result)) c WHERE c.customer_key IN (SELECT customer FROM tx)" "5"
eq "monetary of a key with a byte that is not UTF-8" \
  "SELECT monetary FROM rfm.customers((SELECT a FROM result)) WHERE customer_key = convert_from('\\x636166e9'::bytea, 'SQL_ASCII')" "36"
eq "excluded keys come back byte for byte" \
  "SELECT encode(convert_to(k, 'SQL_ASCII'), 'hex') FROM rfm.excluded_keys((SELECT a FROM result)) k" "6f6c64ff"
q "SELECT rfm.create_segmentation('ascii_rfm', 'tx', 'customer', 'ordered_at', 'amount', '{\"as_of\": \"2025-12-31 23:59:59+00\"}')" >/dev/null
q "SELECT rfm.refresh('ascii_rfm')" >/dev/null
eq "a managed segmentation keeps the keys: customer_segments matches the source" \
  "SELECT count(*) FROM rfm.customer_segments WHERE segmentation = 'ascii_rfm' AND customer_key IN (SELECT customer FROM tx)" "5"
eq "an override of a key that is not UTF-8" \
  "SELECT rfm.set_override('ascii_rfm', convert_from('\\x636166e9'::bytea, 'SQL_ASCII'), 'Champions'); SELECT segment FROM rfm.customer_segments WHERE segmentation = 'ascii_rfm' AND customer_key = convert_from('\\x636166e9'::bytea, 'SQL_ASCII')" \
  "$(printf '\nChampions')"
grep -q "XX000\|PANIC\|panicked" "$work/server.log"
[ $? != 0 ]
check "the server log has no internal error or panic" $?

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
