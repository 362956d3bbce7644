-- hb_sync_delete: AFTER DELETE statement trigger (transition table hb_old): recomputes the
-- devices whose newest heartbeat was removed.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_delete() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_delete';
