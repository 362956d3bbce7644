-- _hb_ls_columns: what hb_reconcile() and the backfill need to write a
-- managed table's last-status table from its heartbeats: the columns both
-- tables have (the last-status table may keep fewer, or have columns of
-- its own; generated ones are not written), quoted, as a list, prefixed
-- with l. and n., and as "c = excluded.c" for ON CONFLICT DO UPDATE (all
-- but the device column); the device column's type, and the COLLATE
-- clause that orders its writes as the triggers lock devices (memcmp
-- order: COLLATE "C" for text).
CREATE FUNCTION @extschema@._hb_ls_columns(parent regclass,
    OUT cols text, OUT lcols text, OUT ncols text, OUT sets text,
    OUT key_type text, OUT write_order text)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
           string_agg('l.' || quote_ident(a.attname), ', ' ORDER BY a.attnum),
           string_agg('n.' || quote_ident(a.attname), ', ' ORDER BY a.attnum),
           coalesce(string_agg(format('%I = excluded.%I', a.attname, a.attname), ', ' ORDER BY a.attnum)
                    FILTER (WHERE a.attname <> c.device_column),
                    format('%I = excluded.%I', c.device_column, c.device_column)),
           format_type(d.atttypid, d.atttypmod),
           CASE WHEN b.typcategory = 'S' THEN ' COLLATE "C"' ELSE '' END
    FROM @extschema@.hb_config c
    JOIN pg_attribute d ON d.attrelid = c.parent AND d.attname = c.device_column
    JOIN pg_type t ON t.oid = d.atttypid
    JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    JOIN pg_attribute a ON a.attrelid = c.last_status_table
    WHERE c.parent = _hb_ls_columns.parent
      AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      AND EXISTS (SELECT 1 FROM pg_attribute p
                  WHERE p.attrelid = c.parent AND p.attname = a.attname
                    AND p.attnum > 0 AND NOT p.attisdropped)
    GROUP BY c.device_column, d.atttypid, d.atttypmod, b.typcategory
$$;
COMMENT ON FUNCTION @extschema@._hb_ls_columns(regclass) IS
    'Internal: the column lists hb_reconcile() and the backfill write a last-status table with.';
REVOKE ALL ON FUNCTION @extschema@._hb_ls_columns(regclass) FROM PUBLIC;
