-- hb_events: what the lifecycle did, newest last. Each row is also sent as
-- NOTIFY hb_events and counted in shared memory. hb_run_maintenance()
-- deletes rows older than hb_lifecycle.events_retention.
CREATE TABLE @extschema@.hb_events (
    id             bigserial   PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    event          text        NOT NULL CHECK (event IN ('partition.create', 'archive.start',
                       'archive.end', 'archive.failed', 'drop', 'restore', 'reconcile',
                       'quarantine', 'archive.stale', 'backfill')),
    partition_name text,
    parent         regclass,
    detail         jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX hb_events_at ON @extschema@.hb_events (at);
COMMENT ON TABLE @extschema@.hb_events IS
    'hb_lifecycle''s lifecycle events (also sent as NOTIFY hb_events).';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hb_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hb_events_id_seq', '');
REVOKE ALL ON @extschema@.hb_events FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON @extschema@.hb_events TO PUBLIC;
GRANT USAGE ON SEQUENCE @extschema@.hb_events_id_seq TO PUBLIC;
ALTER TABLE @extschema@.hb_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY hb_events_read ON @extschema@.hb_events FOR SELECT USING (true);
CREATE POLICY hb_events_insert ON @extschema@.hb_events FOR INSERT
    WITH CHECK (@extschema@._hb_may_record(parent));
CREATE POLICY hb_events_prune ON @extschema@.hb_events FOR DELETE
    USING (@extschema@._hb_owns(parent));
