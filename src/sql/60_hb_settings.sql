-- hb_settings: the partition lifecycle's settings, typed.
CREATE FUNCTION @extschema@.hb_settings(
    OUT ddl_lock_timeout interval, OUT ddl_lock_retries integer,
    OUT events_retention interval, OUT max_future interval)
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'hb_settings';
COMMENT ON FUNCTION @extschema@.hb_settings() IS
    'hb_lifecycle.ddl_lock_timeout, ddl_lock_retries, events_retention and max_future, typed.';
