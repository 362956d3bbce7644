-- 0.2 -> 0.3: what 0.3 changed in the tables of 0.2 (the background worker
-- and archives): three columns of hb_partitions; what describes an archive
-- is no longer the owners' to write (only the worker records one, and a
-- restore reads what it names); the archive.stale event; hb_settings()
-- has two more columns, so it is made again (below, from its file).
ALTER TABLE @extschema@.hb_partitions
    ADD COLUMN last_attempt_at timestamptz,
    ADD COLUMN alerted_at      timestamptz,
    ADD COLUMN restored_at     timestamptz;
REVOKE UPDATE (checksum_manifest_url, archived_at) ON @extschema@.hb_partitions FROM PUBLIC;
ALTER TABLE @extschema@.hb_events DROP CONSTRAINT hb_events_event_check;
ALTER TABLE @extschema@.hb_events ADD CONSTRAINT hb_events_event_check
    CHECK (event IN ('partition.create', 'archive.start', 'archive.end', 'archive.failed', 'drop',
                     'restore', 'reconcile', 'quarantine', 'archive.stale'));
DROP FUNCTION @extschema@.hb_settings();
