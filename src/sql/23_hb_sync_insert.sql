-- hb_sync_insert: AFTER INSERT statement trigger: writes the buffer to the last-status table.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_insert() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_insert';
