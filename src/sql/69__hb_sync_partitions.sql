-- _hb_sync_partitions: makes hb_partitions agree with the catalog for one
-- parent. A partition made outside hb_lifecycle whose bounds are exactly a
-- slot of the scheme is adopted under its own name (a partition.create
-- event with "adopted": true); one whose bounds are not, one that is not a
-- plain table (partitioned, foreign), and one that takes the name of a
-- partition archived and dropped (restore that one instead) are reported
-- in "unmatched" and left alone. A recorded partition whose table is gone is
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
    -- Statement triggers the DDL event trigger did not create (a partition
    -- made in single-user mode or under session_replication_role = replica).
    PERFORM @extschema@._hb_partition_triggers(cfg.parent);
    FOR part IN
        SELECT u.name, u.relid, b.range_start, b.range_end
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
           AND NOT @extschema@._hb_others_name(cfg.parent, part.name)
           -- nor a day that was archived and dropped: archiving the new
           -- table would replace the only archive of the old one's rows
           AND NOT EXISTS (SELECT 1 FROM @extschema@.hb_partitions p
                           WHERE p.partition_name = part.name AND p.state = 'dropped'
                             AND p.checksum_manifest_url IS NOT NULL)
           -- and a plain table (what an archive exports and counts)
           AND (SELECT c.relkind FROM pg_class c WHERE c.oid = part.relid) = 'r' THEN
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
