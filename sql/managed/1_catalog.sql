-- Managed segmentations, part 1 of 7: roles and the catalog tables.
--
-- Security model (SPEC §11; docs/reference.md "Who may see and do what"):
-- * Nobody but the extension's own functions writes these tables: no role, rfm_admin
--   included, has any privilege on them, and the functions that write them are SECURITY
--   DEFINER implementations (rfm._do_*) that only the C entry point rfm.managed_entry calls,
--   passing the role that really called (src/managed.rs).
-- * A segmentation belongs to the role that created it; every refresh reads the source with
--   that owner's rights (rfm._read_source_as).
-- * The views are the only way to read: they show a segmentation to a role only when it may
--   manage it, was granted it by its owner, or may read its source itself (and then, when
--   the source has row-level security, only the customers whose rows it may see).

-- Roles belong to the cluster, so they are created only when missing and outlive
-- DROP EXTENSION.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'rfm_reader') THEN
        CREATE ROLE rfm_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'rfm_admin') THEN
        CREATE ROLE rfm_admin NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('rfm_admin', 'rfm_reader', 'MEMBER') THEN
        GRANT rfm_reader TO rfm_admin;
    END IF;
END
$roles$;

GRANT USAGE ON SCHEMA rfm TO PUBLIC;

CREATE TABLE segmentations (
    id              serial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    owner           regrole NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('rfm', 'abc')),
    source          regclass NOT NULL,
    -- the source's name when it was last checked, for messages once it has been dropped
    source_name     text NOT NULL,
    customer_column name NOT NULL,
    time_column     name NOT NULL,
    amount_column   name NOT NULL,
    options         jsonb NOT NULL DEFAULT '{}',
    mode            text NOT NULL DEFAULT 'dynamic' CHECK (mode IN ('dynamic', 'static')),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- shown to the segmentation's managers only: it may quote values of the source
    last_error      text,
    last_error_at   timestamptz,
    -- the pg_cron job rfm.schedule_refresh created (its jobid); only that job is ever removed
    cron_job        bigint
);
COMMENT ON TABLE segmentations IS 'Saved segmentation definitions (written only by rfm.create_segmentation and friends)';

-- Roles an owner shared a segmentation with (rfm.grant_segmentation).
CREATE TABLE readers (
    segmentation_id integer NOT NULL REFERENCES segmentations ON DELETE CASCADE,
    reader          regrole NOT NULL,
    granted_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segmentation_id, reader)
);
COMMENT ON TABLE readers IS 'Roles that may read a segmentation because its owner granted it to them';

CREATE TABLE runs (
    id                 bigserial PRIMARY KEY,
    segmentation_id    integer NOT NULL REFERENCES segmentations ON DELETE CASCADE,
    as_of              timestamptz NOT NULL,
    period             interval NOT NULL,
    started_at         timestamptz NOT NULL,
    started_by         regrole NOT NULL,
    finished_at        timestamptz,
    customers          bigint,
    excluded_customers bigint,
    total_revenue      numeric,
    transactions       bigint,
    changed            bigint,
    forced             boolean NOT NULL DEFAULT false,
    -- every row accounted for (SPEC §2): rows without a key and after as_of, the window
    -- amounts of the excluded customers, customers below an ABC minimum
    rows_without_key    bigint,
    amount_without_key  numeric,
    rows_after_as_of    bigint,
    excluded_amount     numeric,
    below_min_customers bigint,
    -- the score ranges of the run (rfm.thresholds), which explain moves between runs
    thresholds          jsonb
);
CREATE INDEX ON runs (segmentation_id, id);
COMMENT ON TABLE runs IS 'One row per refresh of a segmentation';

CREATE TABLE run_segments (
    run_id    bigint NOT NULL REFERENCES runs ON DELETE CASCADE,
    position  integer NOT NULL,
    segment   text NOT NULL,
    customers bigint NOT NULL,
    revenue   numeric NOT NULL,
    PRIMARY KEY (run_id, segment)
);
COMMENT ON TABLE run_segments IS 'Customers and revenue per automatic segment of every run';

-- The segment performance report of a run (option "performance"): for the customers in each
-- effective segment when the run was made, their revenue in the month of as_of up to its
-- end, in the month before and in the year to date, read from the source by the refresh
-- itself (in the same statement as its analysis), never at query time.
CREATE TABLE run_performance (
    run_id             bigint NOT NULL REFERENCES runs ON DELETE CASCADE,
    position           integer NOT NULL,
    segment            text NOT NULL,
    customers          bigint NOT NULL,
    revenue_this_month numeric NOT NULL,
    revenue_last_month numeric NOT NULL,
    revenue_ytd        numeric NOT NULL,
    PRIMARY KEY (run_id, segment)
);
COMMENT ON TABLE run_performance IS 'Revenue this month, last month and year to date per effective segment of every run with option performance';

-- The automatic assignment of the latest run of each segmentation: the run's rfm.analysis
-- value itself (about 13 bytes per customer), decoded by rfm._assigned when the views are
-- read. One row per segmentation, replaced by every refresh, so its size does not grow.
CREATE TABLE assignment (
    segmentation_id integer PRIMARY KEY REFERENCES segmentations ON DELETE CASCADE,
    run_id          bigint NOT NULL REFERENCES runs ON DELETE CASCADE,
    kind            text NOT NULL,
    default_segment text,
    analysis        analysis NOT NULL
);
-- stored uncompressed: the value is already compact, and the views decode it often
ALTER TABLE assignment ALTER COLUMN analysis SET STORAGE EXTERNAL;
COMMENT ON TABLE assignment IS 'The automatic assignment of the latest refresh of each segmentation (an rfm.analysis value)';

CREATE TABLE overrides (
    segmentation_id integer NOT NULL REFERENCES segmentations ON DELETE CASCADE,
    customer_key    text NOT NULL,
    segment         text NOT NULL,
    note            text,
    set_at          timestamptz NOT NULL DEFAULT now(),
    set_by          name NOT NULL,
    -- set for a customer the segmentation did not know yet (rfm.set_override(...,
    -- pre_assignment => true)), e.g. a key account before its first order
    pre_assignment  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (segmentation_id, customer_key)
);
COMMENT ON TABLE overrides IS 'Manual segments; they win over the automatic one and survive refreshes';

-- One row per change of a customer's effective segment. No foreign keys: a refresh writes
-- up to one row per customer, and a per-row check would cost more than the analysis
-- itself; rfm.drop_segmentation deletes a segmentation's rows, and nothing else writes here.
CREATE TABLE history (
    segmentation_id integer NOT NULL,
    run_id          bigint,
    customer_key    text NOT NULL,
    from_segment    text,
    to_segment      text,
    monetary        numeric,
    reason          text NOT NULL CHECK (reason IN ('refresh', 'override')),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    -- what the previous and this run said of the customer (refreshes only; NULL where it
    -- was not among a run's customers): the scores and metrics that explain the move
    from_r              smallint,
    from_f              smallint,
    from_m              smallint,
    from_recency_days   integer,
    from_frequency      bigint,
    from_monetary       numeric,
    to_r                smallint,
    to_f                smallint,
    to_m                smallint,
    to_recency_days     integer,
    to_frequency        bigint
);
-- BRIN, not btree: the table only grows at its end, run after run, so block ranges follow
-- (segmentation, run) closely; a btree would cost a first refresh of a million customers
-- about half a second more
CREATE INDEX ON history USING brin (segmentation_id, run_id);
COMMENT ON TABLE history IS
    'One row per change of a customer''s effective segment: entered (from NULL), left (to NULL) or moved';

-- pg_dump keeps the user's data (the tables start empty)
SELECT pg_catalog.pg_extension_config_dump('segmentations', '');
SELECT pg_catalog.pg_extension_config_dump('segmentations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('readers', '');
SELECT pg_catalog.pg_extension_config_dump('runs', '');
SELECT pg_catalog.pg_extension_config_dump('runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('run_segments', '');
SELECT pg_catalog.pg_extension_config_dump('run_performance', '');
SELECT pg_catalog.pg_extension_config_dump('assignment', '');
SELECT pg_catalog.pg_extension_config_dump('overrides', '');
SELECT pg_catalog.pg_extension_config_dump('history', '');
