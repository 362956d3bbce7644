-- hb_quarantine: heartbeats taken out of a managed table's catch-all
-- partition because no partition may hold them (too far in the future,
-- older than the retention, or for a partition already archived and
-- dropped), with the reason and the whole row as jsonb
-- (jsonb_populate_record(NULL::heartbeats, heartbeat) gives it back).
-- Only the parent's owner sees or removes its rows.
CREATE TABLE @extschema@.hb_quarantine (
    id             bigserial   PRIMARY KEY,
    parent         regclass    NOT NULL,
    reason         text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    heartbeat      jsonb       NOT NULL
);
CREATE INDEX hb_quarantine_parent ON @extschema@.hb_quarantine (parent, quarantined_at);
COMMENT ON TABLE @extschema@.hb_quarantine IS
    'Heartbeats no partition may hold, set aside by hb_run_maintenance() with a reason.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hb_quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hb_quarantine_id_seq', '');
REVOKE ALL ON @extschema@.hb_quarantine FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON @extschema@.hb_quarantine TO PUBLIC;
GRANT USAGE ON SEQUENCE @extschema@.hb_quarantine_id_seq TO PUBLIC;
ALTER TABLE @extschema@.hb_quarantine ENABLE ROW LEVEL SECURITY;
CREATE POLICY hb_quarantine_owner ON @extschema@.hb_quarantine
    USING (@extschema@._hb_owns(parent)) WITH CHECK (@extschema@._hb_may_record(parent));
