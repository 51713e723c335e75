-- The built-in segment schemes, one row per segment, with the cells it covers, what it
-- means and what to do with its customers.
CREATE VIEW schemes AS
SELECT scheme, scheme_description, position, segment, cells, description, actions
FROM builtin_scheme_segments();

COMMENT ON VIEW schemes IS
    'Built-in segment schemes: every segment with its cells, a description and suggested actions';

GRANT SELECT ON schemes TO PUBLIC;
