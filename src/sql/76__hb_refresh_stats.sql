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
