-- _hb_partition_triggers: creates the statement triggers that a relation of
-- a managed tree and the partitions below it lack (those the caller owns),
-- and returns how many. The DDL event trigger normally creates them, but
-- event triggers do not fire in single-user mode or under
-- session_replication_role = replica: without them, a statement that writes
-- a partition directly (COPY into it, a DELETE from it, the catch-all's
-- triage) would not reach device_last_status. hb_lifecycle's own DDL calls
-- it after creating a partition, and maintenance for every managed table.
CREATE FUNCTION @extschema@._hb_partition_triggers(rel regclass)
RETURNS integer
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'hb_partition_triggers';
COMMENT ON FUNCTION @extschema@._hb_partition_triggers(regclass) IS
    'Internal: creates the statement triggers a managed tree''s partitions lack.';
REVOKE ALL ON FUNCTION @extschema@._hb_partition_triggers(regclass) FROM PUBLIC;
