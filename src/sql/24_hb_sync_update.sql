-- hb_sync_update: AFTER UPDATE statement trigger (transition tables hb_old, hb_new):
-- recomputes the devices whose newest heartbeat changed.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_update() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_update';
