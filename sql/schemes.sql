-- The built-in segment schemes, one row per segment, with the cells it covers, what it
-- means and what to do with its customers.
CREATE VIEW schemes AS
SELECT scheme, scheme_description, position, segment, cells, description, actions
FROM builtin_scheme_segments();

COMMENT ON VIEW schemes IS
    'Built-in segment schemes: every segment with its cells, a description and suggested actions';

GRANT SELECT ON schemes TO PUBLIC;

COMMENT ON COLUMN schemes.scheme IS 'Scheme name (standard, rf10, codes)';
COMMENT ON COLUMN schemes.scheme_description IS 'What the scheme is';
COMMENT ON COLUMN schemes.position IS 'Display order of the segment in the scheme (1 first)';
COMMENT ON COLUMN schemes.segment IS 'Segment name';
COMMENT ON COLUMN schemes.cells IS 'Score cells the segment covers: R5 FM4 (standard), R5 F4 (rf10) or a code such as 554 (codes)';
COMMENT ON COLUMN schemes.description IS 'Who the customers of the segment are';
COMMENT ON COLUMN schemes.actions IS 'Suggested actions for the segment';
