// In-database tests, run by `cargo pgrx test`. The SQL surface is covered in depth by the
// pg_regress files in tests/pg_regress; these check the Rust glue directly.

use pgrx::prelude::*;

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
        crate::primitives::segment(1, 5, 4, "standard"),
        "Can't Lose Them"
    );
    assert_eq!(
        crate::primitives::segment(5, 4, 4, "codes"),
        "VIP Champions"
    );
    assert_eq!(
        one::<String>("SELECT rfm.abc_tier(v, (SELECT rfm.abc_thresholds(x) FROM unnest('{70,20,5,5}'::float8[]) x)) FROM (VALUES (5::float8)) t(v)"),
        "B"
    );
}

#[pg_test]
fn schemes_view_lists_every_builtin_segment() {
    assert_eq!(one::<i64>("SELECT count(*) FROM rfm.schemes"), 31);
    assert_eq!(
        one::<i64>("SELECT count(DISTINCT scheme) FROM rfm.schemes"),
        3
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
