-- The trigger functions that keep each last-status table exact. hb_manage
-- creates the triggers; calling these functions directly is refused.
CREATE FUNCTION @extschema@.hb_before_insert() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_before_insert';
CREATE FUNCTION @extschema@.hb_sync_row() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_row';
CREATE FUNCTION @extschema@.hb_sync_insert() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_insert';
CREATE FUNCTION @extschema@.hb_sync_update() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_update';
CREATE FUNCTION @extschema@.hb_sync_delete() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_delete';
