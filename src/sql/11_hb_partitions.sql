-- hb_partitions: one row per partition of a managed table that hb_lifecycle
-- created, adopted, archived, restored or dropped. Every change of a
-- partition made by hb_lifecycle updates its row in the same transaction as
-- the DDL, so the table never disagrees with the catalog; a partition
-- dropped by hand is marked 'dropped' by the sql_drop event trigger.
-- A parent's owner may write the rows of that parent's partitions (the
-- lifecycle functions run as their caller); row-level security refuses the
-- rest. Kept by pg_dump as extension configuration.
CREATE TABLE @extschema@.hb_partitions (
    partition_name        text        PRIMARY KEY,
    parent                regclass    NOT NULL,
    range_start           timestamptz NOT NULL,
    range_end             timestamptz NOT NULL,
    state                 text        NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'archiving', 'archived', 'archive_failed', 'dropped')),
    row_count             bigint,
    bytes                 bigint,
    sha256                text,
    checksum_manifest_url text,
    attempts              integer     NOT NULL DEFAULT 0,
    last_error            text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    archived_at           timestamptz,
    dropped_at            timestamptz,
    adopted               boolean     NOT NULL DEFAULT false,  -- made outside hb_lifecycle
    stats_at              timestamptz,                         -- when row_count, bytes were taken
    last_attempt_at       timestamptz,                         -- the last archive attempt's end
    alerted_at            timestamptz,                         -- the last alert about it
    restored_at           timestamptz,                         -- brought back by hb_restore_partition
    CHECK (range_start < range_end)
);
CREATE INDEX hb_partitions_parent_range ON @extschema@.hb_partitions (parent, range_start);
COMMENT ON TABLE @extschema@.hb_partitions IS
    'Partitions of hb_lifecycle''s managed tables and where each is in its lifecycle.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hb_partitions', '');
REVOKE ALL ON @extschema@.hb_partitions FROM PUBLIC;
GRANT SELECT ON @extschema@.hb_partitions TO PUBLIC;
-- A new row is an active partition; what describes an archive is the
-- worker's (as the extension's owner) to record.
GRANT INSERT (partition_name, parent, range_start, range_end, state, adopted)
    ON @extschema@.hb_partitions TO PUBLIC;
-- Not partition_name nor parent: a row cannot be renamed onto a name
-- another table will need. Not what describes an archive
-- (checksum_manifest_url, sha256, archived_at, ...): only the worker (and
-- the late-write trigger) record it, as the extension's owner, and a
-- restore reads what it names as the server's OS user.
GRANT UPDATE (range_start, range_end, state, row_count, bytes, attempts, last_error,
              created_at, dropped_at, adopted, stats_at)
    ON @extschema@.hb_partitions TO PUBLIC;
ALTER TABLE @extschema@.hb_partitions ENABLE ROW LEVEL SECURITY;
CREATE POLICY hb_partitions_read ON @extschema@.hb_partitions FOR SELECT USING (true);
-- A row names a partition that exists, attached to a managed table the
-- role owns, by a name not in another managed table's scheme: no one can
-- claim a name another table will need.
CREATE POLICY hb_partitions_insert ON @extschema@.hb_partitions FOR INSERT
    WITH CHECK (@extschema@._hb_may_record(parent) AND state = 'active'
                AND NOT @extschema@._hb_others_name(parent, partition_name)
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                            JOIN pg_catalog.pg_class k ON k.oid OPERATOR(pg_catalog.=) i.inhrelid
                            WHERE i.inhparent OPERATOR(pg_catalog.=) parent::pg_catalog.oid
                              AND k.relname OPERATOR(pg_catalog.=) partition_name::pg_catalog.name));
CREATE POLICY hb_partitions_update ON @extschema@.hb_partitions FOR UPDATE
    USING (@extschema@._hb_owns(parent)) WITH CHECK (@extschema@._hb_may_record(parent));
