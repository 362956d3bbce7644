-- _hb_archivable: the hb_partitions row of a partition the current role
-- may archive or restore, or a clear error (NULL, unknown or qualified
-- name, table not managed or not owned).
CREATE FUNCTION @extschema@._hb_archivable(partition text, caller text)
RETURNS @extschema@.hb_partitions
LANGUAGE plpgsql STABLE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part @extschema@.hb_partitions;
BEGIN
    IF partition IS NULL THEN
        RAISE EXCEPTION '%: partition must not be NULL', caller
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = format('Pass a name that hb_partitions lists, e.g. %s(''hb_2026_11_02'').', caller);
    END IF;
    SELECT * INTO part FROM @extschema@.hb_partitions p WHERE p.partition_name = partition;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM pg_class WHERE relname = partition AND relkind IN ('r', 'p', 'f')) THEN
            RAISE EXCEPTION '%: "%" is not a partition managed by hb_lifecycle', caller, partition
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Only partitions listed in hb_partitions are archived and restored here.';
        END IF;
        RAISE EXCEPTION '%: partition "%" does not exist', caller, partition
            USING ERRCODE = 'undefined_table',
                  HINT = 'Give the name as hb_partitions.partition_name lists it, without schema or quotes.';
    END IF;
    PERFORM @extschema@._hb_managed(part.parent, caller);
    RETURN part;
END
$$;
COMMENT ON FUNCTION @extschema@._hb_archivable(text, text) IS
    'Internal: the hb_partitions row of a partition the current role may archive or restore.';
