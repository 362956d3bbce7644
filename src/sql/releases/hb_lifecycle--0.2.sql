-- hb_lifecycle: heartbeat fleets on PostgreSQL.
-- This script is built from src/sql/*.sql, one object per file, in name order.
\echo Use "CREATE EXTENSION hb_lifecycle" (or ALTER EXTENSION hb_lifecycle UPDATE) to load this file. \quit
-- _hb_owns: whether the current role owns (is a member of the owner of) a
-- table, PostgreSQL's own ownership rule. The row-level security policies
-- of the metadata tables use it: a table's owner may record the lifecycle
-- of that table's partitions, and no one else's.
CREATE FUNCTION @extschema@._hb_owns(rel regclass) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT pg_has_role(c.relowner, 'USAGE')
                     FROM pg_class c WHERE c.oid = rel), false)
$$;
COMMENT ON FUNCTION @extschema@._hb_owns(regclass) IS
    'Internal: true when the current role owns the table (row-level security of hb_lifecycle''s metadata).';
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
    created_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.hb_config IS
    'Heartbeat tables managed by hb_lifecycle (one row per hb_manage call).';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hb_config', '');
REVOKE ALL ON @extschema@.hb_config FROM PUBLIC;
GRANT SELECT ON @extschema@.hb_config TO PUBLIC;
GRANT UPDATE (premake, retention, archive) ON @extschema@.hb_config TO PUBLIC;
ALTER TABLE @extschema@.hb_config ENABLE ROW LEVEL SECURITY;
CREATE POLICY hb_config_read ON @extschema@.hb_config FOR SELECT USING (true);
CREATE POLICY hb_config_owner ON @extschema@.hb_config FOR UPDATE
    USING (@extschema@._hb_owns(parent)) WITH CHECK (@extschema@._hb_owns(parent));
-- _hb_may_record: whether the current role may write lifecycle rows about
-- a table: one that is managed (in hb_config) and that it owns.
CREATE FUNCTION @extschema@._hb_may_record(rel regclass) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM @extschema@.hb_config c WHERE c.parent = rel)
           AND @extschema@._hb_owns(rel)
$$;
COMMENT ON FUNCTION @extschema@._hb_may_record(regclass) IS
    'Internal: true when the current role owns a managed table (row-level security of hb_lifecycle''s metadata).';

-- _hb_others_name: whether name is a partition name of the scheme of a
-- managed table other than parent (<its prefix>_yyyy_mm_dd or _yyyy_mm):
-- such a name is that table's to take, never another's.
CREATE FUNCTION @extschema@._hb_others_name(parent regclass, name text) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    -- Prefixes are lower-case letters, digits and '_' (hb_manage checks):
    -- nothing in them is special to a regular expression.
    SELECT EXISTS (SELECT 1 FROM @extschema@.hb_config o
                   WHERE o.parent <> _hb_others_name.parent
                     AND name ~ ('^' || o.partition_prefix || '_[0-9]{4}_[0-9]{2}(_[0-9]{2})?$'))
$$;
COMMENT ON FUNCTION @extschema@._hb_others_name(regclass, text) IS
    'Internal: true when a name belongs to the partition scheme of another managed table.';
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
    CHECK (range_start < range_end)
);
CREATE INDEX hb_partitions_parent_range ON @extschema@.hb_partitions (parent, range_start);
COMMENT ON TABLE @extschema@.hb_partitions IS
    'Partitions of hb_lifecycle''s managed tables and where each is in its lifecycle.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hb_partitions', '');
REVOKE ALL ON @extschema@.hb_partitions FROM PUBLIC;
GRANT SELECT, INSERT ON @extschema@.hb_partitions TO PUBLIC;
-- Not partition_name nor parent: a row cannot be renamed onto a name
-- another table will need.
GRANT UPDATE (range_start, range_end, state, row_count, bytes, sha256, checksum_manifest_url,
              attempts, last_error, created_at, archived_at, dropped_at, adopted, stats_at)
    ON @extschema@.hb_partitions TO PUBLIC;
ALTER TABLE @extschema@.hb_partitions ENABLE ROW LEVEL SECURITY;
CREATE POLICY hb_partitions_read ON @extschema@.hb_partitions FOR SELECT USING (true);
-- A row names a partition that exists, attached to a managed table the
-- role owns, by a name not in another managed table's scheme: no one can
-- claim a name another table will need.
CREATE POLICY hb_partitions_insert ON @extschema@.hb_partitions FOR INSERT
    WITH CHECK (@extschema@._hb_may_record(parent)
                AND NOT @extschema@._hb_others_name(parent, partition_name)
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                            JOIN pg_catalog.pg_class k ON k.oid OPERATOR(pg_catalog.=) i.inhrelid
                            WHERE i.inhparent OPERATOR(pg_catalog.=) parent::pg_catalog.oid
                              AND k.relname OPERATOR(pg_catalog.=) partition_name::pg_catalog.name));
CREATE POLICY hb_partitions_update ON @extschema@.hb_partitions FOR UPDATE
    USING (@extschema@._hb_owns(parent)) WITH CHECK (@extschema@._hb_may_record(parent));
-- hb_events: what the lifecycle did, newest last. Each row is also sent as
-- NOTIFY hb_events and counted in shared memory. hb_run_maintenance()
-- deletes rows older than hb_lifecycle.events_retention.
CREATE TABLE @extschema@.hb_events (
    id             bigserial   PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    event          text        NOT NULL CHECK (event IN ('partition.create', 'archive.start',
                       'archive.end', 'archive.failed', 'drop', 'restore', 'reconcile',
                       'quarantine')),
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
-- hb_before_insert: BEFORE INSERT row trigger of a managed table: refuses a NULL device or time,
-- skips a retried heartbeat (same device and time already stored).
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_before_insert() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_before_insert';
-- hb_before_update: BEFORE UPDATE row trigger of a managed table: refuses a
-- NULL device or time, and keeps rows an UPDATE moves to another partition
-- from being taken for retries there.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_before_update() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_before_update';
-- hb_sync_row: AFTER INSERT row trigger: offers the stored heartbeat to the statement's
-- newest-per-device buffer.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_row() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_row';
-- hb_sync_insert: AFTER INSERT statement trigger: writes the buffer to the last-status table.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_insert() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_insert';
-- hb_sync_update: AFTER UPDATE statement trigger (transition tables hb_old, hb_new):
-- recomputes the devices whose newest heartbeat changed.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_update() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_update';
-- hb_sync_delete: AFTER DELETE statement trigger (transition table hb_old): recomputes the
-- devices whose newest heartbeat was removed.
-- hb_manage creates the trigger; calling the function directly is refused.
CREATE FUNCTION @extschema@.hb_sync_delete() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_sync_delete';
-- hb_manage: register an existing range-partitioned heartbeats table.
CREATE FUNCTION @extschema@.hb_manage(
    parent            regclass,
    device_column     name     DEFAULT 'device_id',
    time_column       name     DEFAULT 'ts',
    granularity       text     DEFAULT 'day',
    premake           integer  DEFAULT 7,
    retention         interval DEFAULT '90 days',
    last_status_table name     DEFAULT 'device_last_status',
    partition_prefix  text     DEFAULT NULL)
RETURNS void
LANGUAGE C CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'hb_manage';
COMMENT ON FUNCTION @extschema@.hb_manage(regclass, name, name, text, integer, interval, name, text) IS
    'Registers a range-partitioned heartbeats table: last-status table, triggers, config row.';
REVOKE ALL ON FUNCTION @extschema@.hb_manage(regclass, name, name, text, integer, interval, name, text) FROM PUBLIC;
-- hb_unmanage: the inverse of hb_manage; keeps every table and row.
CREATE FUNCTION @extschema@.hb_unmanage(parent regclass)
RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'hb_unmanage';
COMMENT ON FUNCTION @extschema@.hb_unmanage(regclass) IS
    'Removes hb_lifecycle''s triggers and config row from a managed table; keeps the tables.';
REVOKE ALL ON FUNCTION @extschema@.hb_unmanage(regclass) FROM PUBLIC;
-- hb_counters: the shared-memory counters (needs shared_preload_libraries).
CREATE FUNCTION @extschema@.hb_counters(OUT counter text, OUT value bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'hb_counters';
COMMENT ON FUNCTION @extschema@.hb_counters() IS
    'hb_lifecycle''s counters since server start (dedupe hits, last-status writes, ...).';
REVOKE ALL ON FUNCTION @extschema@.hb_counters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.hb_counters() TO pg_monitor;
-- New partitions of a managed table get the statement triggers that row
-- triggers cannot give them (PostgreSQL clones only row triggers), and DDL
-- that would break a managed table's sync is refused.
CREATE FUNCTION @extschema@.hb_on_ddl_end() RETURNS event_trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_on_ddl_end';
CREATE EVENT TRIGGER hb_lifecycle_partition_triggers ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION @extschema@.hb_on_ddl_end();
-- A dropped managed table takes its hb_config row with it.
CREATE FUNCTION @extschema@.hb_on_sql_drop() RETURNS event_trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hb_on_sql_drop';
CREATE EVENT TRIGGER hb_lifecycle_forget_dropped ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION @extschema@.hb_on_sql_drop();
-- hb_settings: the partition lifecycle's settings, typed.
CREATE FUNCTION @extschema@.hb_settings(
    OUT ddl_lock_timeout interval, OUT ddl_lock_retries integer,
    OUT events_retention interval, OUT max_future interval, OUT max_drops_per_run integer)
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'hb_settings';
COMMENT ON FUNCTION @extschema@.hb_settings() IS
    'hb_lifecycle.ddl_lock_timeout, ddl_lock_retries, events_retention, max_future and max_drops_per_run, typed.';
-- hb_partition_slot: the name and UTC bounds of the partition of the scheme
-- (granularity, prefix) that holds an instant. Pure arithmetic in C++
-- (src/core/partition_scheme), the same in every session and time zone.
CREATE FUNCTION @extschema@.hb_partition_slot(
    granularity text, prefix text, at timestamptz,
    OUT partition_name text, OUT range_start timestamptz, OUT range_end timestamptz)
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'hb_partition_slot';
COMMENT ON FUNCTION @extschema@.hb_partition_slot(text, text, timestamptz) IS
    'Name and UTC bounds of the day or month partition that holds an instant.';
-- hb_partition_bounds: a partition's range bounds as timestamptz, read from
-- the catalog (NULL for MINVALUE / MAXVALUE); no row for a table that is not
-- a range partition on one timestamptz column.
CREATE FUNCTION @extschema@.hb_partition_bounds(
    partition regclass,
    OUT range_start timestamptz, OUT range_end timestamptz, OUT is_default boolean)
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'hb_partition_bounds';
COMMENT ON FUNCTION @extschema@.hb_partition_bounds(regclass) IS
    'Bounds of a partition of a table partitioned by range of a timestamptz column.';
-- hb_take_catchall_rows: internal to maintenance. Moves the rows of a
-- catch-all partition with lo <= time < hi into target (a table about to be
-- attached as their partition), or with target NULL into hb_quarantine with
-- reason; as the catch-all's owner, in a security-restricted operation.
CREATE FUNCTION @extschema@.hb_take_catchall_rows(
    catchall regclass, parent regclass, time_column name,
    lo timestamptz, hi timestamptz, target regclass, reason text)
RETURNS bigint
LANGUAGE C CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'hb_take_catchall_rows';
COMMENT ON FUNCTION @extschema@.hb_take_catchall_rows(regclass, regclass, name, timestamptz, timestamptz, regclass, text) IS
    'Internal: moves or quarantines rows of a catch-all partition.';
REVOKE ALL ON FUNCTION @extschema@.hb_take_catchall_rows(regclass, regclass, name, timestamptz, timestamptz, regclass, text) FROM PUBLIC;
-- hb_vacuum_later: internal to maintenance. VACUUM cannot run inside a
-- function, so a background worker runs VACUUM (ANALYZE) on the relations at
-- top level, as the calling role; returns how many were handed over.
CREATE FUNCTION @extschema@.hb_vacuum_later(relations regclass[])
RETURNS integer
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'hb_vacuum_later';
COMMENT ON FUNCTION @extschema@.hb_vacuum_later(regclass[]) IS
    'Internal: VACUUM (ANALYZE) the relations from a background worker.';
REVOKE ALL ON FUNCTION @extschema@.hb_vacuum_later(regclass[]) FROM PUBLIC;
-- hb_count_event: internal. Counts a lifecycle event in shared memory.
CREATE FUNCTION @extschema@.hb_count_event(event text)
RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'hb_count_event';
COMMENT ON FUNCTION @extschema@.hb_count_event(text) IS
    'Internal: counts a lifecycle event in shared memory.';
REVOKE ALL ON FUNCTION @extschema@.hb_count_event(text) FROM PUBLIC;
-- _hb_event: records a lifecycle event: a row of hb_events, NOTIFY
-- hb_events with {"id", "event", "partition", "parent"}, and its counter.
CREATE FUNCTION @extschema@._hb_event(
    parent regclass, event text, partition_name text, detail jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    event_id bigint;
BEGIN
    INSERT INTO @extschema@.hb_events (event, partition_name, parent, detail)
    VALUES (_hb_event.event, _hb_event.partition_name, _hb_event.parent, _hb_event.detail)
    RETURNING id INTO event_id;
    PERFORM pg_notify('hb_events', json_build_object(
        'id', event_id, 'event', _hb_event.event, 'partition', _hb_event.partition_name,
        'parent', _hb_event.parent::text)::text);
    PERFORM @extschema@.hb_count_event(_hb_event.event);
    RETURN event_id;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_event(regclass, text, text, jsonb) IS
    'Internal: records a lifecycle event (hb_events, NOTIFY hb_events, counter).';
REVOKE ALL ON FUNCTION @extschema@._hb_event(regclass, text, text, jsonb) FROM PUBLIC;
-- _hb_ddl: runs statements (built by the lifecycle functions, every
-- identifier quoted) in one subtransaction under lock_timeout =
-- hb_lifecycle.ddl_lock_timeout. The application's inserts queue behind a
-- lock that DDL waits for, so they never wait longer than that. When a lock
-- is not granted in time, everything the statements did is undone and they
-- are tried again after a backoff (the timeout times 1, 2, 4, ... with
-- jitter), at most hb_lifecycle.ddl_lock_retries more times; then the error
-- says that nothing was changed. lock_wait and retries, when given,
-- replace the setting (maintenance's drops; see there). Returns the
-- attempts it took.
CREATE FUNCTION @extschema@._hb_ddl(what text, statements text[], lock_wait interval DEFAULT NULL,
                                    retries integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg record;
    attempt integer := 0;
    stmt text;
    saved text := current_setting('lock_timeout');
BEGIN
    SELECT * INTO cfg FROM @extschema@.hb_settings();
    cfg.ddl_lock_timeout := coalesce(lock_wait, cfg.ddl_lock_timeout);
    -- hb_run_maintenance() asks for one attempt everywhere (it may hold
    -- locks the application waits for while a retry would sleep).
    cfg.ddl_lock_retries := coalesce(retries, nullif(current_setting('hb_lifecycle_run.ddl_lock_retries', true), '')::integer,
                                     cfg.ddl_lock_retries);
    LOOP
        BEGIN
            PERFORM set_config('lock_timeout',
                               (extract(epoch FROM cfg.ddl_lock_timeout) * 1000)::bigint || 'ms', true);
            FOREACH stmt IN ARRAY statements LOOP
                EXECUTE stmt;
            END LOOP;
            PERFORM set_config('lock_timeout', saved, true);
            RETURN attempt + 1;
        EXCEPTION WHEN lock_not_available THEN
            IF attempt >= cfg.ddl_lock_retries THEN
                RAISE EXCEPTION '%: no lock within % ms (hb_lifecycle.ddl_lock_timeout) in % attempts; nothing was changed',
                    what, (extract(epoch FROM cfg.ddl_lock_timeout) * 1000)::bigint, attempt + 1
                    USING ERRCODE = 'lock_not_available',
                          HINT = 'A long transaction holds a lock on the table (see pg_locks and pg_stat_activity). '
                              'The next hb_run_maintenance() tries again. Raise hb_lifecycle.ddl_lock_timeout only if '
                              'the application''s inserts may wait that long.';
            END IF;
        END;
        attempt := attempt + 1;
        PERFORM pg_sleep(extract(epoch FROM cfg.ddl_lock_timeout) * (2 ^ (attempt - 1)) * (0.5 + random()));
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_ddl(text, text[], interval, integer) IS
    'Internal: runs DDL under hb_lifecycle.ddl_lock_timeout, retried with backoff.';
REVOKE ALL ON FUNCTION @extschema@._hb_ddl(text, text[], interval, integer) FROM PUBLIC;
-- _hb_managed: the hb_config row of a parent the current role may run the
-- lifecycle on; a clear error for a NULL, unmanaged or not-owned parent.
CREATE FUNCTION @extschema@._hb_managed(parent regclass, caller text)
RETURNS @extschema@.hb_config
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg @extschema@.hb_config;
BEGIN
    IF parent IS NULL THEN
        RAISE EXCEPTION '%: parent must not be NULL', caller
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a table that hb_manage() registered; hb_config lists them.';
    END IF;
    SELECT * INTO cfg FROM @extschema@.hb_config c WHERE c.parent = _hb_managed.parent;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: "%" is not managed by hb_lifecycle', caller, parent
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Register it first: SELECT hb_manage(%L).', parent::text);
    END IF;
    IF NOT @extschema@._hb_owns(parent) THEN
        RAISE EXCEPTION '%: must be owner of table %', caller, parent
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The lifecycle of a table''s partitions is its owner''s (or a superuser''s) to run.';
    END IF;
    RETURN cfg;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_managed(regclass, text) IS
    'Internal: the hb_config row of a managed table the current role owns, or an error.';
-- Executable by anyone: it tells only what hb_config shows anyone, and a
-- role granted one lifecycle function gets its ownership error from here.
-- _hb_children: the partitions directly under parent, by name (a set the
-- lifecycle joins to hb_partitions by hash, not one catalog probe per row).
CREATE FUNCTION @extschema@._hb_children(parent regclass, OUT relid regclass, OUT name text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.oid::regclass, k.relname::text
    FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
    WHERE i.inhparent = parent
$$;
COMMENT ON FUNCTION @extschema@._hb_children(regclass) IS
    'Internal: the partitions directly under a table, with their names.';
-- _hb_require_create: a clear error unless the current role may create the
-- partitions of parent (they go in the parent's schema, and the lifecycle
-- runs with its caller's rights).
CREATE FUNCTION @extschema@._hb_require_create(parent regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.oid = parent);
BEGIN
    IF NOT has_schema_privilege(nsp, 'CREATE') THEN
        RAISE EXCEPTION 'cannot create partitions of %: role "%" may not create tables in schema "%"',
            parent, current_user, nsp
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('GRANT CREATE ON SCHEMA %I TO %I; or run the lifecycle as a superuser '
                                '(hb_schedule() called by a superuser runs it as one).', nsp, current_user);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_require_create(regclass) IS
    'Internal: an error unless the current role may create partitions of a table.';
-- _hb_parent: what the lifecycle needs to know of a managed table from the
-- catalog: its schema, its owner, and its catch-all (default) partition, or
-- NULL when it has none.
CREATE FUNCTION @extschema@._hb_parent(parent regclass,
    OUT nsp text, OUT owner_name text, OUT catchall regclass)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.nspname::text, pg_get_userbyid(c.relowner)::text, nullif(pt.partdefid, 0)::regclass
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
    WHERE c.oid = parent
$$;
COMMENT ON FUNCTION @extschema@._hb_parent(regclass) IS
    'Internal: schema, owner and catch-all partition of a partitioned table.';
-- _hb_sync_partitions: makes hb_partitions agree with the catalog for one
-- parent. A partition made outside hb_lifecycle whose bounds are exactly a
-- slot of the scheme is adopted under its own name (a partition.create
-- event with "adopted": true); one whose bounds are not is reported in
-- "unmatched" and left alone. A recorded partition whose table is gone is
-- marked dropped; one that still exists but was detached is reported in
-- "detached". Returns {"adopted": [...], "unmatched": [...], "detached": [...]}.
CREATE FUNCTION @extschema@._hb_sync_partitions(parent regclass)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_lifecycle');
    part record;
    slot record;
    adopted text[] := '{}';
    unmatched text[] := '{}';
    detached text[] := '{}';
BEGIN
    FOR part IN
        SELECT u.name, b.range_start, b.range_end
        FROM (SELECT kid.relid, kid.name FROM @extschema@._hb_children(cfg.parent) kid
              WHERE kid.name NOT IN (SELECT p.partition_name FROM @extschema@.hb_partitions p
                                     WHERE p.parent = cfg.parent AND p.state <> 'dropped')
              OFFSET 0) u
        CROSS JOIN LATERAL @extschema@.hb_partition_bounds(u.relid) b
        WHERE NOT b.is_default
        ORDER BY b.range_start NULLS FIRST
    LOOP
        slot := NULL;
        IF part.range_start IS NOT NULL AND part.range_end IS NOT NULL
           AND extract(year FROM part.range_start) BETWEEN 1000 AND 9999 THEN
            SELECT * INTO slot
            FROM @extschema@.hb_partition_slot(cfg.granularity, cfg.partition_prefix, part.range_start);
        END IF;
        IF slot.range_start IS NOT DISTINCT FROM part.range_start
           AND slot.range_end IS NOT DISTINCT FROM part.range_end
           AND slot.range_start IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM @extschema@.hb_partitions p
                           WHERE p.partition_name = part.name AND p.parent <> cfg.parent)
           -- nor a name in another managed table's scheme, which it will need
           AND NOT @extschema@._hb_others_name(cfg.parent, part.name) THEN
            INSERT INTO @extschema@.hb_partitions AS p
                (partition_name, parent, range_start, range_end, state, adopted)
            VALUES (part.name, cfg.parent, part.range_start, part.range_end, 'active', true)
            ON CONFLICT (partition_name) DO UPDATE
                SET state = 'active', range_start = excluded.range_start,
                    range_end = excluded.range_end, adopted = true, dropped_at = NULL,
                    last_error = NULL, row_count = NULL, bytes = NULL, stats_at = NULL;
            PERFORM @extschema@._hb_event(cfg.parent, 'partition.create', part.name,
                jsonb_build_object('adopted', true, 'range_start', part.range_start,
                                   'range_end', part.range_end));
            adopted := adopted || part.name;
        ELSE
            unmatched := unmatched || part.name;
        END IF;
    END LOOP;

    FOR part IN
        SELECT p.partition_name AS name,
               to_regclass(format('%I.%I', n.nspname, p.partition_name)) AS rel
        FROM @extschema@.hb_partitions p
        JOIN pg_class pc ON pc.oid = cfg.parent
        JOIN pg_namespace n ON n.oid = pc.relnamespace
        WHERE p.parent = cfg.parent AND p.state <> 'dropped'
          AND p.partition_name NOT IN (SELECT kid.name FROM @extschema@._hb_children(cfg.parent) kid)
    LOOP
        IF part.rel IS NULL THEN
            UPDATE @extschema@.hb_partitions
            SET state = 'dropped', dropped_at = now(),
                last_error = 'dropped outside hb_lifecycle'
            WHERE partition_name = part.name;
        ELSE
            detached := detached || part.name;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('adopted', to_jsonb(adopted), 'unmatched', to_jsonb(unmatched),
                              'detached', to_jsonb(detached));
END
$$;
COMMENT ON FUNCTION @extschema@._hb_sync_partitions(regclass) IS
    'Internal: adopts partitions made by hand that fit the scheme, reports the others.';
REVOKE ALL ON FUNCTION @extschema@._hb_sync_partitions(regclass) FROM PUBLIC;
-- _hb_ensure_catchall: gives a managed table its catch-all partition,
-- <prefix>_default, unless it has a default partition (which then serves).
-- hb_create_ahead and maintenance call it, so a table managed before 0.2,
-- or whose catch-all was dropped, gets one.
CREATE FUNCTION @extschema@._hb_ensure_catchall(parent regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_create_ahead');
    facts record := @extschema@._hb_parent(parent);
    catchall text;
    stmts text[];
BEGIN
    IF facts.catchall IS NULL THEN
        catchall := format('%I.%I', facts.nsp, cfg.partition_prefix || '_default');
        PERFORM @extschema@._hb_require_create(cfg.parent);
        IF to_regclass(catchall) IS NOT NULL THEN
            RAISE EXCEPTION 'cannot create the catch-all partition %: the name is taken', catchall
                USING ERRCODE = 'duplicate_table',
                      HINT = 'Pass another prefix (partition_prefix => ...), or attach that table as the default partition.';
        END IF;
        stmts := ARRAY[format('CREATE TABLE %s PARTITION OF %s DEFAULT', catchall, cfg.parent)];
        IF facts.owner_name <> current_user THEN
            stmts := stmts || format('ALTER TABLE %s OWNER TO %I', catchall, facts.owner_name);
        END IF;
        PERFORM @extschema@._hb_ddl(format('creating catch-all partition %s', catchall), stmts);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_ensure_catchall(regclass) IS
    'Internal: creates a managed table''s catch-all partition if it has none.';
REVOKE ALL ON FUNCTION @extschema@._hb_ensure_catchall(regclass) FROM PUBLIC;
-- _hb_lock_for_create: takes the locks that creating partitions of parent
-- needs: SHARE UPDATE EXCLUSIVE on parent (what ATTACH PARTITION takes; the
-- application's inserts do not wait for it) and ACCESS EXCLUSIVE on its
-- catch-all partition (inserts of rows that have no partition wait for it),
-- in the order ATTACH takes them, under hb_lifecycle.ddl_lock_timeout with
-- retries (_hb_ddl), after checking that the current role may create
-- them (_hb_require_create). Returns true.
CREATE FUNCTION @extschema@._hb_lock_for_create(parent regclass)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    catchall regclass := (@extschema@._hb_parent(parent)).catchall;
    -- ONLY: the partitions themselves are not locked (a VACUUM of one must
    -- not stand in the way).
    stmts text[] := ARRAY[format('LOCK TABLE ONLY %s IN SHARE UPDATE EXCLUSIVE MODE', parent)];
BEGIN
    PERFORM @extschema@._hb_require_create(parent);
    IF catchall IS NOT NULL THEN
        stmts := stmts || format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', catchall);
    END IF;
    PERFORM @extschema@._hb_ddl(format('locking %s to create partitions', parent), stmts);
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_lock_for_create(regclass) IS
    'Internal: the locks creating partitions needs, under ddl_lock_timeout.';
REVOKE ALL ON FUNCTION @extschema@._hb_lock_for_create(regclass) FROM PUBLIC;
-- _hb_create_slot: creates the partition [lo, hi) named name of a managed
-- parent and records it, in the caller's transaction:
--   1. lock the parent (SHARE UPDATE EXCLUSIVE, which the application's
--      inserts do not wait for) and the catch-all partition (ATTACH needs it;
--      inserts of rows that have no partition wait for it),
--   2. create a plain table shaped like the parent, owned by its owner,
--   3. move the catch-all's rows of [lo, hi) into it,
--   4. attach it, which takes only SHARE UPDATE EXCLUSIVE on the parent, so
--      the application's inserts into other partitions never wait.
-- Creating a partition therefore never fails on a non-empty catch-all.
-- locked: the caller holds the locks of _hb_lock_for_create already (SHARE
-- UPDATE EXCLUSIVE on the parent, then ACCESS EXCLUSIVE on the catch-all);
-- otherwise this takes them, in that order, under ddl_lock_timeout with
-- retries.
-- Returns the rows moved out of the catch-all.
CREATE FUNCTION @extschema@._hb_create_slot(parent regclass, name text, lo timestamptz, hi timestamptz,
                                            locked boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    -- (Ownership is the DDL's own check: ATTACH needs the parent's.)
    cfg @extschema@.hb_config := (SELECT c FROM @extschema@.hb_config c WHERE c.parent = _hb_create_slot.parent);
    facts record := @extschema@._hb_parent(parent);
    qualified text := format('%I.%I', facts.nsp, name);
    moved bigint := 0;
    saved_timeout text := current_setting('lock_timeout');
BEGIN
    IF NOT locked THEN
        PERFORM @extschema@._hb_lock_for_create(cfg.parent);
    END IF;
    -- The locks on the parent and the catch-all are held; anything else the
    -- DDL must lock (the table a foreign key references, for one) is waited
    -- for no longer than ddl_lock_timeout.
    PERFORM set_config('lock_timeout',
                       (extract(epoch FROM (SELECT ddl_lock_timeout FROM @extschema@.hb_settings())) * 1000)::bigint
                       || 'ms', true);
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED '
                   'INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)', qualified, cfg.parent);
    IF facts.owner_name <> current_user THEN
        EXECUTE format('ALTER TABLE %s OWNER TO %I', qualified, facts.owner_name);
    END IF;
    IF facts.catchall IS NOT NULL THEN
        moved := @extschema@.hb_take_catchall_rows(facts.catchall, cfg.parent, cfg.time_column, lo, hi,
                                                   qualified::regclass, NULL);
    END IF;
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                   cfg.parent, qualified, lo, hi);
    PERFORM set_config('lock_timeout', saved_timeout, true);
    INSERT INTO @extschema@.hb_partitions (partition_name, parent, range_start, range_end, state)
    VALUES (name, cfg.parent, lo, hi, 'active')
    ON CONFLICT (partition_name) DO UPDATE
        SET state = 'active', range_start = excluded.range_start, range_end = excluded.range_end,
            adopted = false, dropped_at = NULL, last_error = NULL, created_at = now(),
            row_count = NULL, bytes = NULL, stats_at = NULL
        WHERE hb_partitions.parent = excluded.parent AND hb_partitions.state = 'dropped';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'partition name "%" is already recorded for another table', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Two managed tables cannot share a partition prefix; see hb_config.partition_prefix.';
    END IF;
    PERFORM @extschema@._hb_event(cfg.parent, 'partition.create', name,
        jsonb_build_object('range_start', lo, 'range_end', hi, 'rows_moved', moved));
    RETURN moved;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_create_slot(regclass, text, timestamptz, timestamptz, boolean) IS
    'Internal: creates, fills from the catch-all, attaches and records one partition.';
REVOKE ALL ON FUNCTION @extschema@._hb_create_slot(regclass, text, timestamptz, timestamptz, boolean) FROM PUBLIC;
-- _hb_create_missing: creates partition name = [lo, hi) of parent unless it
-- exists, was archived and dropped (one dropped without an archive is
-- created again), is past the retention, or a partition
-- made by hand overlaps it (each skip says so in a NOTICE; check_overlap =
-- false when the caller knows the table has no partition made by hand;
-- locked, see _hb_create_slot).
-- Returns the rows moved out of the catch-all, or NULL when it created
-- nothing.
CREATE FUNCTION @extschema@._hb_create_missing(parent regclass, name text, lo timestamptz, hi timestamptz,
                                               check_overlap boolean DEFAULT true,
                                               locked boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_create_partitions');
    state text;
    archived boolean;
    other text;
BEGIN
    -- The slot is known by its range: a partition adopted under another
    -- name holds it as well as one of ours.
    SELECT p.state, p.archived_at IS NOT NULL INTO state, archived
    FROM @extschema@.hb_partitions p
    WHERE p.parent = cfg.parent AND p.range_start = lo
    ORDER BY p.state = 'dropped' LIMIT 1;
    IF state IS NOT NULL AND state <> 'dropped' THEN
        RETURN NULL;
    END IF;
    -- Its rows are in an archive: a new partition would split them.
    IF state = 'dropped' AND archived THEN
        RAISE NOTICE 'partition % was archived and dropped; not created again', name
            USING HINT = 'Restore it from its archive (hb_partitions.checksum_manifest_url) to bring its rows back.';
        RETURN NULL;
    END IF;
    IF hi <= now() - cfg.retention THEN
        RAISE NOTICE 'partition % is past the retention of % (%); not created', name, cfg.parent, cfg.retention
            USING HINT = format('Lengthen the retention first: SELECT hb_configure(%L, retention => ...).',
                                cfg.parent::text);
        RETURN NULL;
    END IF;
    -- Recorded partitions are slots, and slots do not overlap: only the
    -- others can be in the way.
    IF check_overlap THEN
    SELECT u.name INTO other
    FROM (SELECT kid.relid, kid.name FROM @extschema@._hb_children(cfg.parent) kid
          WHERE kid.name NOT IN (SELECT p.partition_name FROM @extschema@.hb_partitions p
                                 WHERE p.parent = cfg.parent AND p.state <> 'dropped')
          OFFSET 0) u
    CROSS JOIN LATERAL @extschema@.hb_partition_bounds(u.relid) b
    WHERE NOT b.is_default
      AND coalesce(b.range_start, '-infinity') < hi AND coalesce(b.range_end, 'infinity') > lo
    LIMIT 1;
    END IF;
    IF other IS NOT NULL THEN
        RAISE NOTICE 'partition % of % not created: partition % covers part of its range', name, cfg.parent, other
            USING HINT = 'A partition made by hand whose bounds are not one UTC day or month is left '
                         'alone; its rows are kept. hb_run_maintenance() reports it as unmatched.';
        RETURN NULL;
    END IF;
    RETURN @extschema@._hb_create_slot(cfg.parent, name, lo, hi, locked);
END
$$;
COMMENT ON FUNCTION @extschema@._hb_create_missing(regclass, text, timestamptz, timestamptz, boolean, boolean) IS
    'Internal: creates one partition unless it exists, was dropped, is past retention or overlaps.';
REVOKE ALL ON FUNCTION @extschema@._hb_create_missing(regclass, text, timestamptz, timestamptz, boolean, boolean) FROM PUBLIC;
-- _hb_create_range: creates the missing partitions of parent from the slot
-- holding range_from to the one holding range_to (see _hb_create_missing
-- for what it skips); returns the names it created. Callers check the
-- arguments and bring hb_partitions up to date first.
CREATE FUNCTION @extschema@._hb_create_range(parent regclass, range_from timestamptz, range_to timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_create_partitions');
    slot record;
    locked boolean := false;
    -- Partitions made by hand (not recorded) are the only ones a slot can
    -- overlap; most tables have none, and then no slot needs the check.
    handmade boolean := EXISTS (
        SELECT 1 FROM @extschema@._hb_children(cfg.parent) kid
        CROSS JOIN LATERAL @extschema@.hb_partition_bounds(kid.relid) b
        WHERE NOT b.is_default
          AND kid.name NOT IN (SELECT p.partition_name FROM @extschema@.hb_partitions p
                               WHERE p.parent = cfg.parent AND p.state <> 'dropped'));
BEGIN
    SELECT * INTO slot FROM @extschema@.hb_partition_slot(cfg.granularity, cfg.partition_prefix, range_from);
    WHILE slot.range_start <= range_to LOOP
        -- Before the first partition it will create, the range takes the
        -- locks every creation needs, once (under ddl_lock_timeout, with
        -- retries): they are held until commit anyway, and the partitions
        -- then need no lock wait and no subtransaction each.
        IF NOT locked AND NOT EXISTS (SELECT 1 FROM @extschema@.hb_partitions p
                                      WHERE p.parent = cfg.parent AND p.range_start = slot.range_start
                                        AND p.state <> 'dropped') THEN
            locked := @extschema@._hb_lock_for_create(cfg.parent);
        END IF;
        IF @extschema@._hb_create_missing(cfg.parent, slot.partition_name, slot.range_start,
                                          slot.range_end, handmade, locked) IS NOT NULL THEN
            RETURN NEXT slot.partition_name;
        END IF;
        SELECT * INTO slot
        FROM @extschema@.hb_partition_slot(cfg.granularity, cfg.partition_prefix, slot.range_end);
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_create_range(regclass, timestamptz, timestamptz) IS
    'Internal: creates the missing partitions between two instants.';
REVOKE ALL ON FUNCTION @extschema@._hb_create_range(regclass, timestamptz, timestamptz) FROM PUBLIC;
-- hb_create_partitions: creates every missing partition of a managed table
-- from the one holding range_from to the one holding range_to (both
-- included), e.g. before loading history. Skips, with a NOTICE, a slot that
-- is past the retention, one that was archived and dropped (restore it
-- instead), and one that a partition made by hand overlaps. Returns the
-- names of the partitions it created.
CREATE FUNCTION @extschema@.hb_create_partitions(parent regclass, range_from timestamptz, range_to timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_create_partitions');
BEGIN
    IF range_from IS NULL OR range_to IS NULL THEN
        RAISE EXCEPTION 'hb_create_partitions: range_from and range_to must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF range_from > range_to THEN
        RAISE EXCEPTION 'hb_create_partitions: range_from (%) is after range_to (%)', range_from, range_to
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(range_from) OR NOT isfinite(range_to) THEN
        RAISE EXCEPTION 'hb_create_partitions: the range must be finite'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF range_to > range_from + 1001 * (CASE cfg.granularity WHEN 'day' THEN interval '1 day'
                                                           ELSE interval '1 month' END) THEN
        RAISE EXCEPTION 'hb_create_partitions: % to % spans more than 1001 partitions', range_from, range_to
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Create a long range in several calls.';
    END IF;
    PERFORM @extschema@._hb_sync_partitions(cfg.parent);
    RETURN QUERY SELECT @extschema@._hb_create_range(cfg.parent, range_from, range_to);
END
$$;
COMMENT ON FUNCTION @extschema@.hb_create_partitions(regclass, timestamptz, timestamptz) IS
    'Creates the missing partitions of a managed table between two instants.';
REVOKE ALL ON FUNCTION @extschema@.hb_create_partitions(regclass, timestamptz, timestamptz) FROM PUBLIC;
-- hb_create_ahead: creates the missing partitions from today to today +
-- premake (each parent's own premake when NULL), for one managed table or
-- for every one the current role owns, after giving it its catch-all
-- partition if it has none and adopting the partitions made by hand that
-- fit the scheme. Idempotent: a second call creates nothing. Emits a
-- partition.create event per partition.
CREATE FUNCTION @extschema@.hb_create_ahead(parent regclass DEFAULT NULL, premake integer DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config;
    ahead integer;
BEGIN
    IF premake IS NOT NULL AND (premake < 0 OR premake > 1000) THEN
        RAISE EXCEPTION 'hb_create_ahead: premake must be between 0 and 1000, not %', premake
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'premake is how many partitions to create ahead of today.';
    END IF;
    IF parent IS NOT NULL THEN
        PERFORM @extschema@._hb_managed(parent, 'hb_create_ahead');
    END IF;
    FOR cfg IN
        SELECT * FROM @extschema@.hb_config c
        WHERE (hb_create_ahead.parent IS NULL OR c.parent = hb_create_ahead.parent)
          AND @extschema@._hb_owns(c.parent)
        ORDER BY c.parent::text
    LOOP
        ahead := coalesce(premake, cfg.premake);
        PERFORM @extschema@._hb_ensure_catchall(cfg.parent);
        PERFORM @extschema@._hb_sync_partitions(cfg.parent);
        RETURN QUERY SELECT @extschema@._hb_create_range(
            cfg.parent, now(),
            now() + ahead * CASE cfg.granularity WHEN 'day' THEN interval '1 day' ELSE interval '1 month' END);
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_create_ahead(regclass, integer) IS
    'Creates the missing partitions from today to today + premake; idempotent.';
REVOKE ALL ON FUNCTION @extschema@.hb_create_ahead(regclass, integer) FROM PUBLIC;
-- _hb_triage_catchall: empties a managed table's catch-all partition, the
-- default partition where rows whose partition does not exist land (so the
-- application's insert never fails on a device with a wrong clock):
--   * rows older than the retention, or further ahead of now() than
--     hb_lifecycle.max_future, go to hb_quarantine with the reason;
--   * rows whose partition was archived and dropped go there too (restore
--     the partition, then re-insert them from hb_quarantine); a partition
--     dropped without an archive is simply created again;
--   * every other row gets its partition created, and is moved into it.
-- Rows under a partition made by hand that overlaps their slot stay.
-- Returns {"catchall_rows", "moved", "quarantined", "created": [...]}.
CREATE FUNCTION @extschema@._hb_triage_catchall(parent regclass)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_run_maintenance');
    settings record;
    catchall regclass;
    found_rows bigint := 0;
    moved bigint := 0;
    quarantined bigint := 0;
    created text[] := '{}';
    slot record;
    n bigint;
BEGIN
    catchall := (@extschema@._hb_parent(cfg.parent)).catchall;
    IF catchall IS NULL THEN
        RETURN jsonb_build_object('catchall_rows', 0);
    END IF;
    -- Locks in the order every creation takes them: the parent (SHARE
    -- UPDATE EXCLUSIVE; inserts do not wait for it) before the catch-all is
    -- touched at all, then, when there is work, the catch-all (ACCESS
    -- EXCLUSIVE) for the whole triage, so that no row arrives between the
    -- quarantine and the creation of partitions.
    PERFORM @extschema@._hb_ddl(format('locking %s to empty its catch-all', cfg.parent),
                                ARRAY[format('LOCK TABLE ONLY %s IN SHARE UPDATE EXCLUSIVE MODE', cfg.parent)]);
    EXECUTE format('SELECT count(*) FROM ONLY %s', catchall) INTO found_rows;
    IF found_rows = 0 THEN
        RETURN jsonb_build_object('catchall_rows', 0);
    END IF;
    PERFORM @extschema@._hb_lock_for_create(cfg.parent);
    EXECUTE format('SELECT count(*) FROM ONLY %s', catchall) INTO found_rows;
    SELECT * INTO settings FROM @extschema@.hb_settings();
    quarantined := @extschema@.hb_take_catchall_rows(catchall, cfg.parent, cfg.time_column,
                       NULL, now() - cfg.retention, NULL,
                       format('older than the retention of %s (%s)', cfg.parent, cfg.retention))
                 + @extschema@.hb_take_catchall_rows(catchall, cfg.parent, cfg.time_column,
                       now() + settings.max_future, NULL, NULL,
                       format('more than hb_lifecycle.max_future (%s) in the future', justify_hours(settings.max_future)));
    FOR slot IN EXECUTE format(
        'SELECT DISTINCT s.partition_name, s.range_start, s.range_end '
        'FROM ONLY %s h, @extschema@.hb_partition_slot(%L, %L, h.%I) s '
        'WHERE h.%I >= $1 AND h.%I < $2 ORDER BY s.range_start',
        catchall, cfg.granularity, cfg.partition_prefix, cfg.time_column, cfg.time_column, cfg.time_column)
        USING now() - cfg.retention, now() + settings.max_future
    LOOP
        IF (SELECT p.state = 'dropped' AND p.archived_at IS NOT NULL FROM @extschema@.hb_partitions p
            WHERE p.parent = cfg.parent AND p.range_start = slot.range_start
            ORDER BY p.state = 'dropped' LIMIT 1) THEN
            quarantined := quarantined + @extschema@.hb_take_catchall_rows(catchall, cfg.parent,
                cfg.time_column, slot.range_start, slot.range_end, NULL,
                format('partition %s was archived and dropped', slot.partition_name));
        ELSE
            n := @extschema@._hb_create_missing(cfg.parent, slot.partition_name,
                                                slot.range_start, slot.range_end, true, true);
            IF n IS NOT NULL THEN
                moved := moved + n;
                created := created || slot.partition_name;
            END IF;
        END IF;
    END LOOP;
    IF quarantined > 0 THEN
        PERFORM @extschema@._hb_event(cfg.parent, 'quarantine', NULL,
            jsonb_build_object('rows', quarantined));
    END IF;
    RETURN jsonb_build_object('catchall_rows', found_rows, 'moved', moved,
                              'quarantined', quarantined, 'created', to_jsonb(created));
END
$$;
COMMENT ON FUNCTION @extschema@._hb_triage_catchall(regclass) IS
    'Internal: moves catch-all rows into their partitions, quarantines the implausible ones.';
REVOKE ALL ON FUNCTION @extschema@._hb_triage_catchall(regclass) FROM PUBLIC;
-- hb_drop_partition: drops one partition that hb_partitions lists, only
-- when that is safe: it is closed, past its parent's retention, and
-- archived (unless archiving is off for the parent). DROP needs ACCESS
-- EXCLUSIVE on the parent: it runs under hb_lifecycle.ddl_lock_timeout and
-- is retried with backoff; a drop that cannot get the lock changes nothing
-- and says so. device_last_status is not touched. Returns true when it
-- dropped the partition, false when it was already dropped.
-- (_hb_drop_partition is the same with the lock wait and retries as
-- arguments, for maintenance.)
CREATE FUNCTION @extschema@._hb_drop_partition(partition text, lock_wait interval,
                                               retries integer DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    part @extschema@.hb_partitions;
    cfg @extschema@.hb_config;
    rel regclass;
BEGIN
    IF partition IS NULL THEN
        RAISE EXCEPTION 'hb_drop_partition: partition must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a name that hb_partitions lists, e.g. hb_drop_partition(''hb_2026_11_02'').';
    END IF;
    SELECT * INTO part FROM @extschema@.hb_partitions p WHERE p.partition_name = partition;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM pg_class WHERE relname = partition AND relkind IN ('r', 'p', 'f')) THEN
            RAISE EXCEPTION 'hb_drop_partition: "%" is not a partition managed by hb_lifecycle', partition
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Only partitions listed in hb_partitions are dropped here; others are yours to DROP.';
        END IF;
        RAISE EXCEPTION 'hb_drop_partition: partition "%" does not exist', partition
            USING ERRCODE = 'undefined_table',
                  HINT = 'Give the name as hb_partitions.partition_name lists it, without schema or quotes.';
    END IF;
    cfg := @extschema@._hb_managed(part.parent, 'hb_drop_partition');
    IF part.state = 'dropped' THEN
        RAISE NOTICE 'partition % was already dropped at %', partition, part.dropped_at;
        RETURN false;
    END IF;
    -- The partition is the parent's child of that name in the parent's
    -- schema (where hb_lifecycle creates them), bounds as recorded.
    SELECT k.oid::regclass INTO rel
    FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
    JOIN pg_class pc ON pc.oid = i.inhparent
    WHERE i.inhparent = cfg.parent AND k.relname = partition AND k.relnamespace = pc.relnamespace;
    IF rel IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM @extschema@.hb_partition_bounds(rel) b
            WHERE b.range_start = part.range_start AND b.range_end = part.range_end) THEN
        RAISE EXCEPTION 'hb_drop_partition: the bounds of partition % are not the ones hb_partitions records', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Recorded: %s to %s.', part.range_start, part.range_end),
                  HINT = 'It was detached and attached again with other bounds: drop it yourself if that is safe.';
    END IF;
    IF rel IS NULL AND to_regclass(format('%I.%I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n
                                                    ON n.oid = c.relnamespace WHERE c.oid = cfg.parent),
                                          partition)) IS NOT NULL THEN
        RAISE EXCEPTION 'hb_drop_partition: partition % is no longer attached to %', partition, cfg.parent
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'It was detached by hand: attach it again, or drop the table yourself.';
    END IF;
    IF part.range_end > now() THEN
        RAISE EXCEPTION 'hb_drop_partition: partition % is the current one or in the future', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('It holds heartbeats up to %s.', part.range_end),
                  HINT = 'Only closed partitions past the retention are dropped.';
    END IF;
    IF part.range_end > now() - cfg.retention THEN
        RAISE EXCEPTION 'hb_drop_partition: partition % is not past the retention of %', partition, cfg.parent
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('The retention is %s: it may be dropped from %s.', cfg.retention,
                                  part.range_end + cfg.retention),
                  HINT = format('Wait, or shorten the retention: SELECT hb_configure(%L, retention => ...).',
                                cfg.parent::text);
    END IF;
    IF cfg.archive AND part.state <> 'archived' THEN
        RAISE EXCEPTION 'hb_drop_partition: partition % is not archived', partition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Its state is %s; %s keeps its partitions until they are archived.',
                                  part.state, cfg.parent),
                  HINT = format('Run SELECT hb_archive_partition(%L) first, or turn archiving off for its '
                                'table: SELECT hb_configure(%L, archive => false).', partition, cfg.parent::text);
    END IF;
    UPDATE @extschema@.hb_partitions p SET state = 'dropped', dropped_at = now()
    WHERE p.partition_name = partition;
    IF rel IS NOT NULL THEN
        PERFORM @extschema@._hb_ddl(format('dropping partition %s', rel), ARRAY[format('DROP TABLE %s', rel)],
                                    lock_wait, retries);
    END IF;
    PERFORM @extschema@._hb_event(cfg.parent, 'drop', partition,
        jsonb_build_object('rows', part.row_count, 'bytes', part.bytes, 'archived', part.state = 'archived',
                           'range_start', part.range_start, 'range_end', part.range_end,
                           'table_found', rel IS NOT NULL));
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_drop_partition(text, interval, integer) IS
    'Internal: hb_drop_partition with a lock wait of its own.';
REVOKE ALL ON FUNCTION @extschema@._hb_drop_partition(text, interval, integer) FROM PUBLIC;

CREATE FUNCTION @extschema@.hb_drop_partition(partition text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Ownership first: a role granted this function alone gets that error,
    -- not one about the internal function.
    PERFORM @extschema@._hb_managed(p.parent, 'hb_drop_partition')
    FROM @extschema@.hb_partitions p WHERE p.partition_name = partition;
    RETURN @extschema@._hb_drop_partition(partition, NULL);
END
$$;
COMMENT ON FUNCTION @extschema@.hb_drop_partition(text) IS
    'Drops a closed partition past retention, only once it is archived (unless archiving is off).';
REVOKE ALL ON FUNCTION @extschema@.hb_drop_partition(text) FROM PUBLIC;
-- hb_configure: changes premake, retention or archive of a managed table
-- (NULL keeps the current value) and returns its hb_config row. Shortening
-- the retention drops nothing by itself: the next hb_run_maintenance() drops
-- what is then past it, and only once archived (when archive is on).
CREATE FUNCTION @extschema@.hb_configure(
    parent regclass, premake integer DEFAULT NULL, retention interval DEFAULT NULL,
    archive boolean DEFAULT NULL)
RETURNS @extschema@.hb_config
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_configure');
    due bigint;
BEGIN
    IF premake IS NOT NULL AND (premake < 0 OR premake > 1000) THEN
        RAISE EXCEPTION 'hb_configure: premake must be between 0 and 1000, not %', premake
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retention IS NOT NULL AND retention <= interval '0' THEN
        RAISE EXCEPTION 'hb_configure: retention must be a positive interval, not %', retention
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example retention => ''90 days''.';
    END IF;
    UPDATE @extschema@.hb_config c
    SET premake = coalesce(hb_configure.premake, c.premake),
        retention = coalesce(hb_configure.retention, c.retention),
        archive = coalesce(hb_configure.archive, c.archive)
    WHERE c.parent = cfg.parent
    RETURNING * INTO cfg;
    SELECT count(*) INTO due FROM @extschema@.hb_partitions p
    WHERE p.parent = cfg.parent AND p.state <> 'dropped' AND p.range_end <= now() - cfg.retention;
    IF due > 0 THEN
        RAISE NOTICE '% partition(s) of % are now past the retention of %', due, cfg.parent, cfg.retention
            USING DETAIL = CASE WHEN cfg.archive
                                THEN 'hb_run_maintenance() drops each of them once it is archived.'
                                ELSE 'Archiving is off: the next hb_run_maintenance() drops them.' END;
    END IF;
    RETURN cfg;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_configure(regclass, integer, interval, boolean) IS
    'Changes premake, retention or archive of a managed table.';
REVOKE ALL ON FUNCTION @extschema@.hb_configure(regclass, integer, interval, boolean) FROM PUBLIC;
-- _hb_refresh_stats: row_count and bytes of the closed, undropped
-- partitions of a parent that were not counted since a day after they
-- closed (late heartbeats arrive in that day): each partition is counted
-- about twice in its life, so a run with nothing new reads nothing.
-- Returns how many partitions it counted.
CREATE FUNCTION @extschema@._hb_refresh_stats(parent regclass)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg @extschema@.hb_config := @extschema@._hb_managed(parent, 'hb_run_maintenance');
    part record;
    counted integer := 0;
    n bigint;
BEGIN
    FOR part IN
        SELECT p.partition_name, kid.relid AS rel, p.range_start, p.range_end
        FROM @extschema@.hb_partitions p
        JOIN @extschema@._hb_children(cfg.parent) kid ON kid.name = p.partition_name
        WHERE p.parent = cfg.parent AND p.state IN ('active', 'archive_failed')
          AND p.range_end <= now()
          AND (p.stats_at IS NULL OR p.stats_at < p.range_end + interval '1 day')
    LOOP
        -- Through the parent (pruned to this partition): its owner may read
        -- it even where the partition itself belongs to someone else.
        EXECUTE format('SELECT count(*) FROM %s WHERE %I >= $1 AND %I < $2',
                       cfg.parent, cfg.time_column, cfg.time_column)
            INTO n USING part.range_start, part.range_end;
        UPDATE @extschema@.hb_partitions p
        SET row_count = n, bytes = pg_total_relation_size(part.rel), stats_at = now()
        WHERE p.partition_name = part.partition_name;
        counted := counted + 1;
    END LOOP;
    RETURN counted;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_refresh_stats(regclass) IS
    'Internal: refreshes row_count and bytes of recently closed partitions.';
REVOKE ALL ON FUNCTION @extschema@._hb_refresh_stats(regclass) FROM PUBLIC;
-- hb_run_maintenance: the nightly job, for every managed table the current
-- role owns (every one, for a superuser):
--   1. give the table its catch-all partition if it has none; adopt
--      partitions made by hand that fit the scheme, report the others;
--   2. create partitions ahead (premake);
--   3. empty the catch-all partition (move rows into their partitions,
--      quarantine the implausible ones);
--   4. count the rows and bytes of partitions that closed;
--   5. list the closed partitions that are due for archiving;
--   6. drop the partitions past retention that are archived (or all of them
--      where archiving is off), last, so that the ACCESS EXCLUSIVE lock each
--      drop takes on its parent is held for as short a time as possible;
--      and no longer than half of ddl_lock_timeout, with each drop waiting
--      at most the other half for its lock, once (a drop that cannot get it
--      ends this run's drops): the application's inserts never wait much
--      longer than ddl_lock_timeout. What does not fit is in
--      "drops_deferred", for the next run;
--   7. delete hb_events older than hb_lifecycle.events_retention;
--   8. VACUUM (ANALYZE) the hot partitions (the current and the one that
--      closed last) from a background worker, since VACUUM cannot run in a
--      function; ANALYZE them here when no worker slot is free.
-- One table that fails does not stop the others: each failure is in the
-- summary's "errors". Reentrant: under a transaction-level advisory lock
-- (one per role), a second call by the same role while one runs returns
-- {"skipped": "already running"} at once; a cancelled or failing run
-- releases the lock with its transaction.
CREATE FUNCTION @extschema@.hb_run_maintenance()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    settings record;
    cfg @extschema@.hb_config;
    part record;
    r jsonb;
    t0 timestamptz := clock_timestamp();
    parents integer := 0;
    created text[] := '{}';
    dropped text[] := '{}';
    adopted text[] := '{}';
    unmatched text[] := '{}';
    detached text[] := '{}';
    archive_due text[] := '{}';
    waiting text[] := '{}';
    deferred text[] := '{}';
    first_drop timestamptz;
    drops_stopped boolean := false;
    saved_timeout text := current_setting('lock_timeout');
    hot regclass[] := '{}';
    catchall_rows bigint := 0;
    moved bigint := 0;
    quarantined bigint := 0;
    counted integer := 0;
    pruned bigint := 0;
    vacuum_queued integer := 0;
    analyzed integer := 0;
    errors jsonb := '[]';
    rel regclass;
    msg text;
    code text;
BEGIN
    -- A key of our own in the database's advisory lock space ('hb_l'), one
    -- per role: a run covers the tables its role owns, and two owners'
    -- nightly jobs must not skip each other.
    IF NOT pg_try_advisory_xact_lock(1751326572, (current_user::regrole::oid::bigint % 2147483647)::int) THEN
        RETURN jsonb_build_object('skipped', 'already running');
    END IF;
    SELECT * INTO settings FROM @extschema@.hb_settings();
    -- Every lock the run waits for, it waits for no longer than
    -- ddl_lock_timeout: it may hold locks the application's inserts need
    -- (a catch-all, a drop's) while it waits.
    PERFORM set_config('lock_timeout', (extract(epoch FROM settings.ddl_lock_timeout) * 1000)::bigint || 'ms', true);
    -- And it tries each lock once: a table it cannot lock in time is an
    -- error of that table's, retried by the next run, while the locks this
    -- run already holds (a catch-all, a drop's) would make a retry's
    -- backoff sleep an insert's wait.
    PERFORM set_config('hb_lifecycle_run.ddl_lock_retries', '0', true);

    FOR cfg IN SELECT * FROM @extschema@.hb_config c WHERE @extschema@._hb_owns(c.parent)
               ORDER BY c.parent::text
    LOOP
        parents := parents + 1;
        BEGIN
            PERFORM @extschema@._hb_ensure_catchall(cfg.parent);
            r := @extschema@._hb_sync_partitions(cfg.parent);
            adopted := adopted || ARRAY(SELECT jsonb_array_elements_text(r->'adopted'));
            unmatched := unmatched || ARRAY(SELECT jsonb_array_elements_text(r->'unmatched'));
            detached := detached || ARRAY(SELECT jsonb_array_elements_text(r->'detached'));
            created := created || ARRAY(SELECT @extschema@._hb_create_range(cfg.parent, now(),
                now() + cfg.premake * (CASE cfg.granularity WHEN 'day' THEN interval '1 day'
                                                            ELSE interval '1 month' END)));
            r := @extschema@._hb_triage_catchall(cfg.parent);
            catchall_rows := catchall_rows + (r->>'catchall_rows')::bigint;
            moved := moved + coalesce((r->>'moved')::bigint, 0);
            quarantined := quarantined + coalesce((r->>'quarantined')::bigint, 0);
            created := created || ARRAY(SELECT jsonb_array_elements_text(coalesce(r->'created', '[]')));
            counted := counted + @extschema@._hb_refresh_stats(cfg.parent);
            IF cfg.archive THEN
                archive_due := archive_due || ARRAY(
                    SELECT p.partition_name FROM @extschema@.hb_partitions p
                    WHERE p.parent = cfg.parent AND p.state IN ('active', 'archive_failed')
                      AND p.range_end <= now() ORDER BY p.range_start);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
            errors := errors || jsonb_build_object('parent', cfg.parent::text, 'step', 'prepare',
                                                   'sqlstate', code, 'error', msg);
        END;
    END LOOP;

    FOR part IN
        SELECT p.partition_name, p.state, c.archive, c.parent
        FROM @extschema@.hb_partitions p
        JOIN @extschema@.hb_config c ON c.parent = p.parent
        WHERE p.state <> 'dropped' AND p.range_end <= now() - c.retention
          AND @extschema@._hb_owns(c.parent)
        ORDER BY p.range_start, p.partition_name
    LOOP
        IF part.archive AND part.state <> 'archived' THEN
            waiting := waiting || part.partition_name;
            CONTINUE;
        END IF;
        -- Each drop's ACCESS EXCLUSIVE lock on its table stays until this
        -- run commits: once the first has been held for half of
        -- ddl_lock_timeout (each drop waits at most the other half for its
        -- lock), or hb_lifecycle.max_drops_per_run drops are done, the rest
        -- waits for the next run.
        IF drops_stopped OR cardinality(dropped) >= settings.max_drops_per_run
           OR clock_timestamp() - first_drop > settings.ddl_lock_timeout / 2 THEN
            deferred := deferred || part.partition_name;
            CONTINUE;
        END IF;
        BEGIN
            -- One attempt, no retries: a run may hold locks inserts wait for
            -- (this run's drops, a catch-all), so it does not sleep and try
            -- again; a drop that cannot get its lock in time stops the drops
            -- of this run, and the next run does them.
            IF @extschema@._hb_drop_partition(part.partition_name, settings.ddl_lock_timeout / 2, 0) THEN
                dropped := dropped || part.partition_name;
                first_drop := coalesce(first_drop, clock_timestamp());
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
            IF code = '55P03' THEN
                drops_stopped := true;
                deferred := deferred || part.partition_name;
                errors := errors || jsonb_build_object('parent', part.parent::text, 'step', 'drop',
                                                       'partition', part.partition_name,
                                                       'sqlstate', code, 'error', msg);
            ELSE
                errors := errors || jsonb_build_object('parent', part.parent::text, 'step', 'drop',
                                                       'partition', part.partition_name,
                                                       'sqlstate', code, 'error', msg);
            END IF;
        END;
    END LOOP;

    -- The hot partitions, once the drops are done (a dropped one is not
    -- handed to the vacuum worker).
    hot := ARRAY(
        SELECT h.relid
        FROM @extschema@.hb_config c
        CROSS JOIN LATERAL (
            SELECT kid.relid
            FROM @extschema@.hb_partitions p
            JOIN @extschema@._hb_children(c.parent) kid ON kid.name = p.partition_name
            WHERE p.parent = c.parent AND p.state = 'active' AND p.range_start <= now()
            ORDER BY p.range_start DESC LIMIT 2) h
        WHERE @extschema@._hb_owns(c.parent));

    -- The last steps fail on their own: a lock they cannot get in time
    -- (another pruner, a VACUUM) must not undo the run's work.
    BEGIN
        DELETE FROM @extschema@.hb_events e WHERE e.at < now() - settings.events_retention;
        GET DIAGNOSTICS pruned = ROW_COUNT;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
        errors := errors || jsonb_build_object('step', 'prune events', 'sqlstate', code, 'error', msg);
    END;

    IF cardinality(hot) > 0 THEN
        vacuum_queued := @extschema@.hb_vacuum_later(hot);
        IF vacuum_queued = 0 THEN
            FOREACH rel IN ARRAY hot LOOP
                CONTINUE WHEN NOT @extschema@._hb_owns(rel);  -- as VACUUM would skip it
                BEGIN
                    EXECUTE format('ANALYZE %s', rel);
                    analyzed := analyzed + 1;
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
                    errors := errors || jsonb_build_object('step', 'analyze', 'relation', rel::text,
                                                           'sqlstate', code, 'error', msg);
                END;
            END LOOP;
        END IF;
    END IF;

    PERFORM set_config('lock_timeout', saved_timeout, true);
    PERFORM set_config('hb_lifecycle_run.ddl_lock_retries', '', true);
    RETURN jsonb_build_object(
        'parents', parents,
        'created', to_jsonb(created),
        'dropped', to_jsonb(dropped),
        'adopted', to_jsonb(adopted),
        'unmatched', to_jsonb(unmatched),
        'detached', to_jsonb(detached),
        'archive_due', to_jsonb(archive_due),
        'waiting_for_archive', to_jsonb(waiting),
        'drops_deferred', to_jsonb(deferred),
        'catchall_rows', catchall_rows,
        'moved', moved,
        'quarantined', quarantined,
        'counted', counted,
        'events_pruned', pruned,
        'vacuum_queued', vacuum_queued,
        'analyzed', analyzed,
        'errors', errors,
        'ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1));
END
$$;
COMMENT ON FUNCTION @extschema@.hb_run_maintenance() IS
    'The nightly job: create ahead, empty the catch-all, drop what is archived and past retention, vacuum.';
REVOKE ALL ON FUNCTION @extschema@.hb_run_maintenance() FROM PUBLIC;
-- _hb_require_cron: a clear error unless pg_cron is installed in this
-- database (the one cron.database_name names), where hb_schedule() puts
-- its jobs.
CREATE FUNCTION @extschema@._hb_require_cron(caller text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF cron_db IS NOT NULL AND cron_db <> current_database() THEN
        RAISE EXCEPTION '%: pg_cron runs its jobs from database "%", not from "%"', caller, cron_db, current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Connect to %I and run: SELECT cron.schedule_in_database(''hb_lifecycle_maintenance'', '
                                '''15 3 * * *'', ''SELECT @extschema@.hb_run_maintenance()'', %L);',
                                cron_db, current_database());
    END IF;
    RAISE EXCEPTION '%: pg_cron is not installed in database "%"', caller, current_database()
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = format('Install postgresql-15-cron, set shared_preload_libraries = ''pg_cron,hb_lifecycle'' and '
                            'cron.database_name = %L, restart the server, then run CREATE EXTENSION pg_cron.',
                            current_database());
END
$$;
COMMENT ON FUNCTION @extschema@._hb_require_cron(text) IS
    'Internal: an error unless pg_cron is installed in this database.';
REVOKE ALL ON FUNCTION @extschema@._hb_require_cron(text) FROM PUBLIC;
-- hb_schedule: installs (or updates, when they exist) the pg_cron jobs
-- hb_lifecycle_maintenance (SELECT hb_run_maintenance(), nightly) and
-- hb_lifecycle_reconcile (SELECT hb_reconcile(), hourly; once this version
-- has hb_reconcile), in this database, run as the calling role: the jobs
-- maintain the managed tables that role owns (every one, for a superuser).
-- Idempotent. Returns the jobs as pg_cron lists them.
CREATE FUNCTION @extschema@.hb_schedule(nightly text DEFAULT '15 3 * * *', hourly text DEFAULT '7 * * * *')
RETURNS TABLE (jobname text, jobid bigint, schedule text, command text, username text)
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._hb_require_cron('hb_schedule');
    IF nightly IS NULL OR hourly IS NULL THEN
        RAISE EXCEPTION 'hb_schedule: the schedules must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass cron expressions, e.g. hb_schedule(''15 3 * * *'', ''7 * * * *''); hb_unschedule() removes the jobs.';
    END IF;
    PERFORM cron.schedule('hb_lifecycle_maintenance', nightly, 'SELECT @extschema@.hb_run_maintenance()');
    IF to_regprocedure('@extschema@.hb_reconcile(interval, integer)') IS NOT NULL THEN
        PERFORM cron.schedule('hb_lifecycle_reconcile', hourly, 'SELECT @extschema@.hb_reconcile()');
    ELSE
        RAISE NOTICE 'hb_reconcile() is not part of this version of hb_lifecycle; the hourly job is not installed';
    END IF;
    RETURN QUERY
        SELECT j.jobname::text, j.jobid, j.schedule, j.command, j.username::text
        FROM cron.job j
        WHERE j.jobname IN ('hb_lifecycle_maintenance', 'hb_lifecycle_reconcile')
          AND j.username = current_user
        ORDER BY j.jobname;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_schedule(text, text) IS
    'Installs the nightly maintenance (and hourly reconcile) pg_cron jobs, idempotently.';
REVOKE ALL ON FUNCTION @extschema@.hb_schedule(text, text) FROM PUBLIC;
-- hb_unschedule: removes the calling role's hb_lifecycle pg_cron jobs;
-- returns how many it removed (0 the second time).
CREATE FUNCTION @extschema@.hb_unschedule()
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed integer;
BEGIN
    PERFORM @extschema@._hb_require_cron('hb_unschedule');
    SELECT count(cron.unschedule(j.jobid)) INTO removed
    FROM cron.job j
    WHERE j.jobname IN ('hb_lifecycle_maintenance', 'hb_lifecycle_reconcile')
      AND j.username = current_user;
    RETURN removed;
END
$$;
COMMENT ON FUNCTION @extschema@.hb_unschedule() IS
    'Removes the pg_cron jobs hb_schedule() installed.';
REVOKE ALL ON FUNCTION @extschema@.hb_unschedule() FROM PUBLIC;
-- _hb_lifecycle_functions: the functions a managed table's owner may run
-- (the lifecycle and the internal functions it calls as its caller), none
-- of them executable by PUBLIC. hb_manage() grants EXECUTE on them to the
-- owner of the table it registers.
CREATE FUNCTION @extschema@._hb_lifecycle_functions()
RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f::regprocedure FROM unnest(ARRAY[
        '@extschema@.hb_create_ahead(regclass, integer)',
        '@extschema@.hb_create_partitions(regclass, timestamptz, timestamptz)',
        '@extschema@.hb_drop_partition(text)',
        '@extschema@._hb_drop_partition(text, interval, integer)',
        '@extschema@.hb_run_maintenance()',
        '@extschema@.hb_configure(regclass, integer, interval, boolean)',
        '@extschema@._hb_event(regclass, text, text, jsonb)',
        '@extschema@._hb_ddl(text, text[], interval, integer)',
        '@extschema@._hb_sync_partitions(regclass)',
        '@extschema@._hb_create_slot(regclass, text, timestamptz, timestamptz, boolean)',
        '@extschema@._hb_create_missing(regclass, text, timestamptz, timestamptz, boolean, boolean)',
        '@extschema@._hb_lock_for_create(regclass)',
        '@extschema@._hb_create_range(regclass, timestamptz, timestamptz)',
        '@extschema@._hb_triage_catchall(regclass)',
        '@extschema@._hb_refresh_stats(regclass)',
        '@extschema@._hb_ensure_catchall(regclass)',
        '@extschema@.hb_take_catchall_rows(regclass, regclass, name, timestamptz, timestamptz, regclass, text)',
        '@extschema@.hb_vacuum_later(regclass[])',
        '@extschema@.hb_count_event(text)'
    ]) AS f
$$;
COMMENT ON FUNCTION @extschema@._hb_lifecycle_functions() IS
    'Internal: the functions hb_manage() lets a managed table''s owner run.';
REVOKE ALL ON FUNCTION @extschema@._hb_lifecycle_functions() FROM PUBLIC;
