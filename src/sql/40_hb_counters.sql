-- hb_counters: the shared-memory counters (needs shared_preload_libraries).
CREATE FUNCTION @extschema@.hb_counters(OUT counter text, OUT value bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'hb_counters';
COMMENT ON FUNCTION @extschema@.hb_counters() IS
    'hb_lifecycle''s counters since server start (dedupe hits, last-status writes, ...).';
REVOKE ALL ON FUNCTION @extschema@.hb_counters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.hb_counters() TO pg_monitor;
