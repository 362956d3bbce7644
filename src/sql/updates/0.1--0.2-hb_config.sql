-- 0.1 -> 0.2: hb_config gains the archive switch and row-level security
-- (a parent's owner may change premake, retention and archive).
ALTER TABLE @extschema@.hb_config ADD COLUMN archive boolean NOT NULL DEFAULT true;
GRANT UPDATE (premake, retention, archive) ON @extschema@.hb_config TO PUBLIC;
ALTER TABLE @extschema@.hb_config ENABLE ROW LEVEL SECURITY;
CREATE POLICY hb_config_read ON @extschema@.hb_config FOR SELECT USING (true);
CREATE POLICY hb_config_owner ON @extschema@.hb_config FOR UPDATE
    USING (@extschema@._hb_owns(parent)) WITH CHECK (@extschema@._hb_owns(parent));
