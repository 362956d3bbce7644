-- hb_before_insert: BEFORE INSERT row trigger of a managed table: refuses a NULL device or time,
-- skips a retried heartbeat (same device and time already stored).
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_before_insert() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_before_insert';
