-- New partitions of a managed table get the statement triggers that row
-- triggers cannot give them (PostgreSQL clones only row triggers), and DDL
-- that would break a managed table's sync is refused.
CREATE FUNCTION @extschema@.hb_on_ddl_end() RETURNS event_trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_on_ddl_end';
CREATE EVENT TRIGGER hb_lifecycle_partition_triggers ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION @extschema@.hb_on_ddl_end();
