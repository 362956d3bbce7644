-- A dropped managed table takes its hb_config row with it.
CREATE FUNCTION @extschema@.hb_on_sql_drop() RETURNS event_trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_on_sql_drop';
CREATE EVENT TRIGGER hb_lifecycle_forget_dropped ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION @extschema@.hb_on_sql_drop();
