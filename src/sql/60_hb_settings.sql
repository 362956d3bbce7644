-- hb_settings: the partition lifecycle's settings, typed.
CREATE FUNCTION @extschema@.hb_settings(
    OUT ddl_lock_timeout interval, OUT ddl_lock_retries integer,
    OUT events_retention interval, OUT max_future interval, OUT max_drops_per_run integer,
    OUT archive_retry_interval interval, OUT worker_available boolean)
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'hb_settings';
COMMENT ON FUNCTION @extschema@.hb_settings() IS
    'hb_lifecycle.ddl_lock_timeout, ddl_lock_retries, events_retention, max_future, max_drops_per_run and archive_retry_interval, typed, and whether the worker is there.';
