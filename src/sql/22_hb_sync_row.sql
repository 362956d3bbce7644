-- hb_sync_row: AFTER INSERT row trigger: offers the stored heartbeat to the statement's
-- newest-per-device buffer.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_row() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_row';
