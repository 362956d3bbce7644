-- 0.2 -> 0.3: what 0.3 changed in the tables of 0.2 (the background worker
-- and archives): three columns of hb_partitions; what describes an archive
-- is no longer the owners' to write (only the worker records one, and a
-- restore reads what it names), neither by UPDATE nor by INSERT; the
-- archive.stale event; hb_settings() has two more columns, so it is made
-- again (below, from its file).
ALTER TABLE @extschema@.hb_partitions
    ADD COLUMN last_attempt_at timestamptz,
    ADD COLUMN alerted_at      timestamptz,
    ADD COLUMN restored_at     timestamptz;
REVOKE UPDATE (checksum_manifest_url, sha256, archived_at) ON @extschema@.hb_partitions FROM PUBLIC;
REVOKE INSERT ON @extschema@.hb_partitions FROM PUBLIC;
GRANT INSERT (partition_name, parent, range_start, range_end, state, adopted)
    ON @extschema@.hb_partitions TO PUBLIC;
ALTER POLICY hb_partitions_insert ON @extschema@.hb_partitions
    WITH CHECK (@extschema@._hb_may_record(parent) AND state = 'active'
                AND NOT @extschema@._hb_others_name(parent, partition_name)
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                            JOIN pg_catalog.pg_class k ON k.oid OPERATOR(pg_catalog.=) i.inhrelid
                            WHERE i.inhparent OPERATOR(pg_catalog.=) parent::pg_catalog.oid
                              AND k.relname OPERATOR(pg_catalog.=) partition_name::pg_catalog.name));
-- 0.2 had no worker: an archive it records was written by hand, and
-- nothing checks it. Such partitions are archived for real again.
UPDATE @extschema@.hb_partitions
SET state = CASE WHEN state IN ('archiving', 'archived', 'archive_failed') THEN 'active' ELSE state END,
    checksum_manifest_url = NULL, sha256 = NULL, archived_at = NULL
WHERE checksum_manifest_url IS NOT NULL OR sha256 IS NOT NULL OR archived_at IS NOT NULL
   OR state IN ('archiving', 'archived', 'archive_failed');
ALTER TABLE @extschema@.hb_events DROP CONSTRAINT hb_events_event_check;
ALTER TABLE @extschema@.hb_events ADD CONSTRAINT hb_events_event_check
    CHECK (event IN ('partition.create', 'archive.start', 'archive.end', 'archive.failed', 'drop',
                     'restore', 'reconcile', 'quarantine', 'archive.stale', 'backfill'));
DROP FUNCTION @extschema@.hb_settings();
-- hb_reconcile() and hb_backfill_last_status(). A table managed under 0.2
-- has not been backfilled as far as 0.3 knows: its reads keep the legacy
-- query until CALL hb_backfill_last_status() completes.
ALTER TABLE @extschema@.hb_config
    ADD COLUMN reconcile_after  text,
    ADD COLUMN backfill_cursor  jsonb,
    ADD COLUMN backfill_done_at timestamptz,
    ADD COLUMN backfill_from    timestamptz;
GRANT UPDATE (reconcile_after, backfill_cursor, backfill_done_at, backfill_from)
    ON @extschema@.hb_config TO PUBLIC;
