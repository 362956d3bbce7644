-- _hb_lock_device_changes: takes every change lock of a managed table's
-- last-status table until the transaction ends (the locks an UPDATE or
-- DELETE of heartbeats takes for its devices; inserts take none).
-- hb_reconcile() and the backfill take them before the snapshot they read
-- the heartbeats with, so that no change of a heartbeat is in flight while
-- they read, and their write undoes none.
CREATE FUNCTION @extschema@._hb_lock_device_changes(parent regclass)
RETURNS void
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'hb_lock_device_changes';
COMMENT ON FUNCTION @extschema@._hb_lock_device_changes(regclass) IS
    'Internal: takes the change locks of every device of a managed table (hb_reconcile, the backfill).';
REVOKE ALL ON FUNCTION @extschema@._hb_lock_device_changes(regclass) FROM PUBLIC;
