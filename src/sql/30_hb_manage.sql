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
