// In-database tests, run by `cargo pgrx test`. The SQL surface is covered in depth by the
// pg_regress files in tests/pg_regress; these check the Rust glue directly.

use pgrx::prelude::*;
use pgrx::AnyNumeric;

fn one<T: IntoDatum + FromDatum>(sql: &str) -> T {
    Spi::get_one::<T>(sql)
        .expect("query runs")
        .expect("query returns a value")
}

#[pg_test]
fn score_follows_the_netsuite_examples() {
    let th = vec![Some(30.0), Some(90.0), Some(180.0), Some(365.0)];
    assert_eq!(crate::primitives::score(0.0, th.clone(), false, false), 5);
    assert_eq!(crate::primitives::score(366.0, th, false, false), 1);
    assert_eq!(
        one::<i32>("SELECT rfm.score(10, '{2,3,5,10}', true, true)"),
        5
    );
}

#[pg_test]
fn quantile_thresholds_equal_percentile_cont() {
    Spi::run("SELECT setseed(0.5)").unwrap();
    let same = one::<bool>(
        "WITH d AS (SELECT round((random() * 100)::numeric, 1)::float8 AS x FROM generate_series(1, 5000))
         SELECT (SELECT rfm.quantile_thresholds(x, 7) FROM d)
              = (SELECT percentile_cont(ARRAY[1/7.0, 2/7.0, 3/7.0, 4/7.0, 5/7.0, 6/7.0]::float8[])
                        WITHIN GROUP (ORDER BY x) FROM d)",
    );
    assert!(same);
}

#[pg_test]
fn segment_and_abc_tier() {
    assert_eq!(
        crate::schemes::segment(1, 5, 4, crate::text::ServerText("standard".into())).0,
        "Can't Lose Them"
    );
    assert_eq!(
        crate::schemes::segment(5, 4, 4, crate::text::ServerText("codes".into())).0,
        "VIP Champions"
    );
    assert_eq!(
        one::<String>("SELECT rfm.abc_tier(v, (SELECT rfm.abc_thresholds(x) FROM unnest('{70,20,5,5}'::float8[]) x)) FROM (VALUES (5::float8)) t(v)"),
        "B"
    );
}

#[pg_test]
fn schemes_view_lists_every_builtin_segment() {
    // 11 + 10 + 10 grid segments and the 8 lifecycle stages
    assert_eq!(one::<i64>("SELECT count(*) FROM rfm.schemes"), 39);
    assert_eq!(
        one::<i64>("SELECT count(DISTINCT scheme) FROM rfm.schemes WHERE origin = 'built-in'"),
        4
    );
}

#[pg_test(
    error = "thresholds must be in ascending order, but element 2 (1) is less than element 1 (2)"
)]
fn unsorted_thresholds_are_rejected() {
    Spi::run("SELECT rfm.score(1, '{2,1}')").unwrap();
}

#[pg_test]
fn errors_carry_their_sqlstate() {
    Spi::run(
        "CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
         BEGIN EXECUTE q; RETURN 'no error';
         EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $f$",
    )
    .unwrap();
    let cases = [
        ("SELECT rfm.segment(1, 1, 1, 'nope')", "42704"),
        ("SELECT rfm.fm_score(0, 1)", "22003"),
        ("SELECT rfm.score(1, '{1,NULL}')", "22004"),
        ("SELECT rfm.score('NaN', '{1}')", "22023"),
        (
            "SELECT rfm.quantile_thresholds(x, 1) FROM generate_series(1, 3) x",
            "22023",
        ),
        (
            "SELECT rfm.abc_thresholds(x, '{0.5,0.4}') FROM generate_series(1, 3) x",
            "22023",
        ),
    ];
    for (query, state) in cases {
        let got =
            Spi::get_one_with_args::<String>("SELECT pg_temp.sqlstate_of($1)", &[query.into()])
                .unwrap()
                .unwrap();
        assert_eq!(got, state, "{query}");
    }
}

/// The ABC defaults live in rfm_core::abc; the one SQL DEFAULT literal that repeats them
/// (rfm.abc_tier's names) and the one-argument rfm.abc_thresholds must agree with them and
/// with what rfm.check_options resolves, so they cannot drift.
#[pg_test]
fn abc_defaults_in_sql_are_the_rust_constants() {
    let args = one::<String>("SELECT pg_get_function_arguments('rfm.abc_tier'::regproc)");
    let literal = format!("'{{{}}}'", rfm_core::abc::DEFAULT_NAMES.join(","));
    assert!(args.contains(&literal), "{args} lacks {literal}");
    assert!(one::<bool>(
        "SELECT ARRAY[rfm.abc_tier(20, '{10,5}'), rfm.abc_tier(7, '{10,5}'), rfm.abc_tier(0, '{10,5}')]
              = ARRAY(SELECT jsonb_array_elements_text(rfm.check_options('{}') -> 'abc_names'))"
    ));
    assert!(one::<bool>(
        "SELECT (SELECT rfm.abc_thresholds(x) FROM generate_series(1, 100) x)
              = (SELECT rfm.abc_thresholds(x, ARRAY(SELECT jsonb_array_elements_text(
                     rfm.check_options('{}') -> 'abc_shares')::float8)) FROM generate_series(1, 100) x)"
    ));
    let shares: Vec<f64> = rfm_core::abc::DEFAULT_SHARES.to_vec();
    let resolved = one::<String>("SELECT (rfm.check_options('{}') -> 'abc_shares')::text");
    let parsed: Vec<f64> = serde_json::from_str(&resolved).unwrap();
    assert_eq!(parsed, shares);
}

/// Exact amounts are written as numeric bytes by rfm_core::numeric::encode; they must be
/// byte for byte what PostgreSQL's numeric_in makes of the same decimal text (a non-canonical
/// encoding would compare equal but hash differently, and GROUP BY would split it).
#[pg_test]
fn encoded_numerics_are_the_bytes_postgres_writes() {
    use pgrx::IntoDatum;
    let mut values: Vec<(i128, u32)> = Vec::new();
    for scale in [0u32, 1, 2, 3, 4, 5, 8, 12, 20, 63, 64, 100] {
        for units in [0i128, 1, -1, 5, 99, 10_000, -123_456, 100_000_000, 9_999_999_999_999_999,
                      i64::MAX as i128 * 1_000, -(10i128.pow(30)) - 7] {
            values.push((units, scale));
        }
    }
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..2_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let units = (seed as i64 as i128) >> (seed % 40);
        values.push((units, (seed % 9) as u32));
    }
    for (units, scale) in values {
        let text = rfm_core::numeric::format(units, scale);
        let ours = crate::analyze::money(rfm_core::analysis::Money::Exact(units, scale));
        let theirs = Spi::get_one_with_args::<AnyNumeric>("SELECT $1::numeric", &[text.clone().into()])
            .unwrap()
            .unwrap();
        // SAFETY: both are valid numeric datums in this memory context
        let (a, b) = unsafe {
            let a = ours.into_datum().unwrap();
            let b = theirs.into_datum().unwrap();
            (
                pgrx::varlena::varlena_to_byte_slice(pg_sys::pg_detoast_datum_packed(a.cast_mut_ptr())).to_vec(),
                pgrx::varlena::varlena_to_byte_slice(pg_sys::pg_detoast_datum_packed(b.cast_mut_ptr())).to_vec(),
            )
        };
        assert_eq!(a, b, "{text}");
    }
}

/// The lines of the plan of `sql`, one string.
fn plan_of(sql: &str) -> String {
    // options first when given: EXPLAIN (ANALYZE, ...) query
    let explain = match sql.strip_prefix('(') {
        Some(rest) => format!("EXPLAIN (COSTS OFF, {rest}"),
        None => format!("EXPLAIN (COSTS OFF) {sql}"),
    };
    Spi::connect(|c| {
        c.select(&explain, None, &[])
            .unwrap()
            .map(|r| r.get::<String>(1).unwrap().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// The value of `sql` (an `rfm.analysis`) as text, and how many partial states the backend
/// took over whole while it ran.
fn value_and_taken(sql: &str) -> (String, u64) {
    let before = crate::analyze::states_taken_whole();
    let v = one::<String>(&format!("SELECT ({sql})::text"));
    (v, crate::analyze::states_taken_whole() - before)
}

#[pg_test]
fn the_leaders_partial_state_is_taken_whole_and_changes_nothing() {
    Spi::run(
        "CREATE TABLE ho AS
         SELECT (g % 3001)::bigint AS c, ('c' || g % 3001) AS ck, g % 4 AS grp,
                timestamptz '2023-06-01' + (g * 7919 % 900) * interval '1 day' + g * interval '1 second' AS t,
                round(((g * 31 % 200) - 10)::numeric / 100, 2) AS a
         FROM generate_series(1, 60000) g",
    )
    .unwrap();
    Spi::run("ANALYZE ho").unwrap();
    let lifecycle = r#"'{"as_of": "2025-12-31", "scheme": "lifecycle"}'"#;
    let queries = [
        format!("SELECT rfm.analyze(c, t, a, {lifecycle}) FROM ho"),
        format!("SELECT rfm.analyze(ck, t, a, {lifecycle}) FROM ho"),
        "SELECT rfm.analyze(c, t, a, '{\"as_of\": \"2025-12-31\"}') FROM ho".to_string(),
        "SELECT rfm.analyze(ck, t, a::float8, '{\"as_of\": \"2025-12-31\"}') FROM ho".to_string(),
    ];
    let serial: Vec<String> = queries.iter().map(|q| value_and_taken(q).0).collect();
    // a parallel plan whose workers are not started: the leader runs the partial
    // aggregate alone, and its state is taken whole
    for setting in [
        "SET parallel_setup_cost = 0",
        "SET parallel_tuple_cost = 0",
        "SET min_parallel_table_scan_size = 0",
        "SET max_parallel_workers_per_gather = 2",
        "SET max_parallel_workers = 0",
    ] {
        Spi::run(setting).unwrap();
    }
    let plan = plan_of(&queries[0]);
    assert!(plan.contains("Partial Aggregate"), "{plan}");
    for (q, want) in queries.iter().zip(&serial) {
        let (v, taken) = value_and_taken(q);
        assert_eq!(&v, want, "{q}");
        assert_eq!(taken, 1, "{q}");
    }
    // with workers: the same value
    Spi::run("SET max_parallel_workers = 8").unwrap();
    let ran = plan_of(&format!("(ANALYZE, TIMING OFF, SUMMARY OFF) {}", queries[1]));
    assert!(
        ran.contains("Workers Launched: ") && !ran.contains("Workers Launched: 0"),
        "{ran}"
    );
    for (q, want) in queries.iter().zip(&serial) {
        assert_eq!(&value_and_taken(q).0, want, "{q}");
    }
    // a grouped partial aggregate frees a group's state when it moves to the next: it is
    // never handed over, and every group's value is the serial one
    let grouped = format!(
        "SELECT string_agg(v::text, '|' ORDER BY grp) FROM (SELECT grp, rfm.analyze(c, t, a, {lifecycle}) AS v FROM ho GROUP BY grp) s"
    );
    Spi::run("SET max_parallel_workers = 0").unwrap();
    let plan = plan_of(&grouped);
    assert!(plan.contains("Partial"), "{plan}");
    let before = crate::analyze::states_taken_whole();
    let par = one::<String>(&grouped);
    assert_eq!(crate::analyze::states_taken_whole(), before);
    Spi::run("SET max_parallel_workers_per_gather = 0").unwrap();
    assert_eq!(par, one::<String>(&grouped));
}
