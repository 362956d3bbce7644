-- hb_config: one row per managed heartbeats table (the arguments of hb_manage).
-- Rows are created and deleted only by hb_manage / hb_unmanage (as the
-- extension's owner); a parent's owner may change premake, retention and
-- archive of that parent (hb_configure), row-level security sees to it.
-- Kept by pg_dump as extension configuration.
CREATE TABLE @extschema@.hb_config (
    parent            regclass    PRIMARY KEY,
    device_column     name        NOT NULL,
    time_column       name        NOT NULL,
    granularity       text        NOT NULL CHECK (granularity IN ('day', 'month')),
    premake           integer     NOT NULL CHECK (premake BETWEEN 0 AND 1000),
    retention         interval    NOT NULL CHECK (retention > interval '0'),
    last_status_table regclass    NOT NULL UNIQUE,
    partition_prefix  text        NOT NULL UNIQUE,
    archive           boolean     NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    reconcile_after   text,       -- where a capped hb_reconcile() run stopped (a device key)
    -- hb_backfill_last_status(): the backfill that runs or stopped (where
    -- it is, by bounds: {"from", "catchall", "upper", "in", "after",
    -- "rows", "batches", "started_at"}, see _hb_backfill_step), NULL when
    -- none; when the last one completed (NULL: never, so the read path
    -- keeps the legacy query) and from which instant it read the history
    -- (NULL: all of it).
    backfill_cursor   jsonb,
    backfill_done_at  timestamptz,
    backfill_from     timestamptz
);
COMMENT ON TABLE @extschema@.hb_config IS
    'Heartbeat tables managed by hb_lifecycle (one row per hb_manage call).';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hb_config', '');
REVOKE ALL ON @extschema@.hb_config FROM PUBLIC;
GRANT SELECT ON @extschema@.hb_config TO PUBLIC;
GRANT UPDATE (premake, retention, archive, reconcile_after,
              backfill_cursor, backfill_done_at, backfill_from) ON @extschema@.hb_config TO PUBLIC;
ALTER TABLE @extschema@.hb_config ENABLE ROW LEVEL SECURITY;
CREATE POLICY hb_config_read ON @extschema@.hb_config FOR SELECT USING (true);
CREATE POLICY hb_config_owner ON @extschema@.hb_config FOR UPDATE
    USING (@extschema@._hb_owns(parent)) WITH CHECK (@extschema@._hb_owns(parent));
