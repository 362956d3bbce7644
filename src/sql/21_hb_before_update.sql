-- hb_before_update: BEFORE UPDATE row trigger of a managed table: refuses a
-- NULL device or time, and keeps rows an UPDATE moves to another partition
-- from being taken for retries there.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_before_update() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_before_update';
