-- The read path (read_path.cpp). hb_device_status and hb_fleet_status read
-- the last-status table when hb_lifecycle.read_from_last_status is on and
-- the table's backfill is complete, and the heartbeats (the legacy query)
-- otherwise, with a NOTICE once per session that says why; both return
-- (device_id text, ts timestamptz, heartbeat json), heartbeat holding the
-- columns the two tables share, in column order. parent names the managed table; NULL
-- means the only one there is. They run as the caller, who needs SELECT
-- on the table read: EXECUTE is granted to PUBLIC, like a view.
CREATE FUNCTION @extschema@.hb_device_status(device anyelement, parent regclass DEFAULT NULL)
RETURNS TABLE (device_id text, ts timestamptz, heartbeat json)
LANGUAGE C STABLE CALLED ON NULL INPUT
AS 'MODULE_PATHNAME', 'hb_device_status';
COMMENT ON FUNCTION @extschema@.hb_device_status(anyelement, regclass) IS
    'The newest heartbeat of one device (device_last_status, or the legacy query until the backfill completes).';

-- The same for a quoted literal (hb_device_status('42')), which anyelement
-- cannot take: PostgreSQL cannot tell its type.
CREATE FUNCTION @extschema@.hb_device_status(device text, parent regclass DEFAULT NULL)
RETURNS TABLE (device_id text, ts timestamptz, heartbeat json)
LANGUAGE C STABLE CALLED ON NULL INPUT
AS 'MODULE_PATHNAME', 'hb_device_status';
COMMENT ON FUNCTION @extschema@.hb_device_status(text, regclass) IS
    'The newest heartbeat of one device given as text (see hb_device_status(anyelement, regclass)).';

CREATE FUNCTION @extschema@.hb_fleet_status(parent regclass DEFAULT NULL)
RETURNS TABLE (device_id text, ts timestamptz, heartbeat json)
LANGUAGE C STABLE CALLED ON NULL INPUT
AS 'MODULE_PATHNAME', 'hb_fleet_status';
COMMENT ON FUNCTION @extschema@.hb_fleet_status(regclass) IS
    'The newest heartbeat of every device (device_last_status, or the legacy query until the backfill completes).';

-- hb_compare_read_paths: reads `sample` random devices of the last-status
-- table through both paths and compares them: per path, the latency
-- percentiles, the shared buffers a read touches, and the devices on
-- which the two disagree.
CREATE FUNCTION @extschema@.hb_compare_read_paths(sample integer DEFAULT 100, parent regclass DEFAULT NULL)
RETURNS TABLE (path text, reads integer, p50_ms double precision, p95_ms double precision,
               p99_ms double precision, max_ms double precision,
               buffers_per_read double precision, mismatches integer)
LANGUAGE C VOLATILE CALLED ON NULL INPUT
AS 'MODULE_PATHNAME', 'hb_compare_read_paths';
COMMENT ON FUNCTION @extschema@.hb_compare_read_paths(integer, regclass) IS
    'Runs both read paths for a sample of devices: latency percentiles, buffers, disagreements.';
-- A diagnostic for the table's owner (hb_manage grants it), not for every reader.
REVOKE ALL ON FUNCTION @extschema@.hb_compare_read_paths(integer, regclass) FROM PUBLIC;
