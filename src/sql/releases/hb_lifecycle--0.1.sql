-- hb_lifecycle 0.1, as released (frozen: never edit). Installed so that
-- CREATE EXTENSION hb_lifecycle VERSION '0.1' and the update path to the
-- current version can be used and tested.
-- hb_lifecycle: heartbeat fleets on PostgreSQL.
-- This script is built from src/sql/*.sql, one object per file, in name order.
\echo Use "CREATE EXTENSION hb_lifecycle" to load this file. \quit
-- hb_config: one row per managed heartbeats table (the arguments of hb_manage).
-- Written only by hb_manage / hb_unmanage (as the extension's owner); kept by
-- pg_dump as extension configuration.
CREATE TABLE @extschema@.hb_config (
    parent            regclass    PRIMARY KEY,
    device_column     name        NOT NULL,
    time_column       name        NOT NULL,
    granularity       text        NOT NULL CHECK (granularity IN ('day', 'month')),
    premake           integer     NOT NULL CHECK (premake BETWEEN 0 AND 1000),
    retention         interval    NOT NULL CHECK (retention > interval '0'),
    last_status_table regclass    NOT NULL UNIQUE,
    partition_prefix  text        NOT NULL UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.hb_config IS
    'Heartbeat tables managed by hb_lifecycle (one row per hb_manage call).';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hb_config', '');
REVOKE ALL ON @extschema@.hb_config FROM PUBLIC;
GRANT SELECT ON @extschema@.hb_config TO PUBLIC;
-- hb_before_insert: BEFORE INSERT row trigger of a managed table: refuses a NULL device or time,
-- skips a retried heartbeat (same device and time already stored).
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_before_insert() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_before_insert';
-- hb_before_update: BEFORE UPDATE row trigger of a managed table: refuses a
-- NULL device or time, and keeps rows an UPDATE moves to another partition
-- from being taken for retries there.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_before_update() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_before_update';
-- hb_sync_row: AFTER INSERT row trigger: offers the stored heartbeat to the statement's
-- newest-per-device buffer.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_row() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_row';
-- hb_sync_insert: AFTER INSERT statement trigger: writes the buffer to the last-status table.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_insert() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_insert';
-- hb_sync_update: AFTER UPDATE statement trigger (transition tables hb_old, hb_new):
-- recomputes the devices whose newest heartbeat changed.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_update() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_update';
-- hb_sync_delete: AFTER DELETE statement trigger (transition table hb_old): recomputes the
-- devices whose newest heartbeat was removed.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_delete() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_delete';
-- hb_manage: register an existing range-partitioned heartbeats table.
CREATE FUNCTION @extschema@.hb_manage(
    parent            regclass,
    device_column     name     DEFAULT 'device_id',
    time_column       name     DEFAULT 'ts',
    granularity       text     DEFAULT 'day',
    premake           integer  DEFAULT 7,
    retention         interval DEFAULT '90 days',
    last_status_table name     DEFAULT 'device_last_status',
    partition_prefix  text     DEFAULT NULL)
RETURNS void
LANGUAGE C CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'hb_manage';
COMMENT ON FUNCTION @extschema@.hb_manage(regclass, name, name, text, integer, interval, name, text) IS
    'Registers a range-partitioned heartbeats table: last-status table, triggers, config row.';
REVOKE ALL ON FUNCTION @extschema@.hb_manage(regclass, name, name, text, integer, interval, name, text) FROM PUBLIC;
-- hb_unmanage: the inverse of hb_manage; keeps every table and row.
CREATE FUNCTION @extschema@.hb_unmanage(parent regclass)
RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'hb_unmanage';
COMMENT ON FUNCTION @extschema@.hb_unmanage(regclass) IS
    'Removes hb_lifecycle''s triggers and config row from a managed table; keeps the tables.';
REVOKE ALL ON FUNCTION @extschema@.hb_unmanage(regclass) FROM PUBLIC;
-- hb_counters: the shared-memory counters (needs shared_preload_libraries).
CREATE FUNCTION @extschema@.hb_counters(OUT counter text, OUT value bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'hb_counters';
COMMENT ON FUNCTION @extschema@.hb_counters() IS
    'hb_lifecycle''s counters since server start (dedupe hits, last-status writes, ...).';
REVOKE ALL ON FUNCTION @extschema@.hb_counters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.hb_counters() TO pg_monitor;
-- New partitions of a managed table get the statement triggers that row
-- triggers cannot give them (PostgreSQL clones only row triggers), and DDL
-- that would break a managed table's sync is refused.
CREATE FUNCTION @extschema@.hb_on_ddl_end() RETURNS event_trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_on_ddl_end';
CREATE EVENT TRIGGER hb_lifecycle_partition_triggers ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION @extschema@.hb_on_ddl_end();
-- A dropped managed table takes its hb_config row with it.
CREATE FUNCTION @extschema@.hb_on_sql_drop() RETURNS event_trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_on_sql_drop';
CREATE EVENT TRIGGER hb_lifecycle_forget_dropped ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION @extschema@.hb_on_sql_drop();
