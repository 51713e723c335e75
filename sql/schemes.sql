-- Segment schemes: the built-in ones and the ones users save (SPEC §5, §9).

-- The schemes users saved with rfm.create_scheme. Only rfm.create_scheme and
-- rfm.drop_scheme write it; everybody may read it, as everybody may list the schemes
-- (rfm.schemes) and use them. pg_dump keeps its rows (pg_extension_config_dump below).
CREATE TABLE user_schemes (
    name text PRIMARY KEY,
    definition jsonb NOT NULL,
    owner regrole NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE user_schemes IS
    'Segment schemes saved with rfm.create_scheme (read them through rfm.schemes and rfm.scheme_definition)';
SELECT pg_catalog.pg_extension_config_dump('user_schemes', '');
REVOKE ALL ON user_schemes FROM PUBLIC;
GRANT SELECT ON user_schemes TO PUBLIC;

-- The saved document of a user's scheme, or NULL. rfm.analyze, rfm.segment and
-- rfm.scheme_definition read schemes through it.
CREATE FUNCTION _user_scheme(name text) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT u.definition FROM rfm.user_schemes u WHERE u.name OPERATOR(pg_catalog.=) $1
$$;
GRANT EXECUTE ON FUNCTION _user_scheme(text) TO PUBLIC;

-- Every scheme, one row per segment, with its rule or cells, what it means and what to do
-- with its customers.
CREATE VIEW schemes AS
SELECT b.scheme, 'built-in'::text AS origin, NULL::regrole AS owner, b.population,
       b.scheme_description, b.position, b.segment, b.cells, b.rule, b.description, b.actions,
       b.visit_every_days, b.priority
FROM builtin_scheme_segments() b
UNION ALL
SELECT u.name, 'user', u.owner, s.population, s.scheme_description, s.position, s.segment,
       s.cells, s.rule, s.description, s.actions, s.visit_every_days, s.priority
FROM user_schemes u, LATERAL _user_scheme_segments(u.name, u.definition) s;

COMMENT ON VIEW schemes IS
    'Every segment scheme (built-in and saved with rfm.create_scheme): each segment with its rule or cells, description, actions and follow-up settings';

GRANT SELECT ON schemes TO PUBLIC;

COMMENT ON COLUMN schemes.scheme IS 'Scheme name (standard, rf10, codes, lifecycle, or a saved one)';
COMMENT ON COLUMN schemes.origin IS 'built-in, or user (saved with rfm.create_scheme)';
COMMENT ON COLUMN schemes.owner IS 'Role that saved the scheme (NULL for built-in ones); only it may change or drop it';
COMMENT ON COLUMN schemes.population IS 'Who is segmented: active (a purchase in the window) or all (every customer with a purchase at or before as_of)';
COMMENT ON COLUMN schemes.scheme_description IS 'What the scheme is';
COMMENT ON COLUMN schemes.position IS 'Display order of the segment in the scheme (1 first); rules are tried in this order';
COMMENT ON COLUMN schemes.segment IS 'Segment name';
COMMENT ON COLUMN schemes.cells IS 'Score cells the segment covers, for grid schemes: R5 FM4 (standard), R5 F4 (rf10) or a code such as 554 (codes)';
COMMENT ON COLUMN schemes.rule IS 'The "when" condition of a rule scheme''s segment (NULL for the default segment and for grid schemes)';
COMMENT ON COLUMN schemes.description IS 'Who the customers of the segment are';
COMMENT ON COLUMN schemes.actions IS 'Suggested actions for the segment';
COMMENT ON COLUMN schemes.visit_every_days IS 'How often to contact the segment''s customers, in days (rule schemes; NULL when not set)';
COMMENT ON COLUMN schemes.priority IS 'Priority of the segment for follow-up (rule schemes; NULL when not set)';
