-- hb_count_event: internal. Counts a lifecycle event in shared memory.
CREATE FUNCTION @extschema@.hb_count_event(event text)
RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'hb_count_event';
COMMENT ON FUNCTION @extschema@.hb_count_event(text) IS
    'Internal: counts a lifecycle event in shared memory.';
REVOKE ALL ON FUNCTION @extschema@.hb_count_event(text) FROM PUBLIC;
