-- hb_backfill_last_status: fills the last-status table of a managed table
-- (parent, or every one the caller owns) from its history since now() -
-- since (NULL: all of it), newest partitions first, batch_size devices per
-- transaction: a procedure, so that it commits after every batch (CALL it
-- on its own, not inside BEGIN ... COMMIT or a function). Inserts go on
-- meanwhile: a batch holds the rows it writes only until it commits, and
-- newest wins both ways. A backfill that stops (cancelled, a crash) is
-- resumed by the next call. Once it completes, the table's reads may use
-- the last-status table (hb_device_status, hb_fleet_status). rows returns
-- the last-status rows written (devices added or moved forward).
--
-- A procedure cannot have a SET clause and commit, so this body runs with
-- the caller's search_path: it only calls the extension's own functions,
-- schema-qualified, which do the work with a safe search_path.
CREATE PROCEDURE @extschema@.hb_backfill_last_status(
    since interval DEFAULT '7 days', parent regclass DEFAULT NULL,
    batch_size integer DEFAULT 5000, INOUT rows bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    tables regclass[];
    t regclass;
    step record;
    total bigint := 0;
BEGIN
    PERFORM @extschema@._hb_require_nonatomic('hb_backfill_last_status');
    tables := @extschema@._hb_backfill_begin(since, parent, batch_size);
    COMMIT;
    FOREACH t IN ARRAY tables LOOP
        LOOP
            SELECT * INTO step FROM @extschema@._hb_backfill_step(t, batch_size);
            total := total OPERATOR(pg_catalog.+) step.written;
            COMMIT;
            EXIT WHEN step.done;
        END LOOP;
    END LOOP;
    rows := total;
END
$$;
COMMENT ON PROCEDURE @extschema@.hb_backfill_last_status(interval, regclass, integer, bigint) IS
    'Fills device_last_status from the history in batches, one transaction each (CALL it on its own).';
REVOKE ALL ON PROCEDURE @extschema@.hb_backfill_last_status(interval, regclass, integer, bigint) FROM PUBLIC;

-- _hb_require_nonatomic: an error unless the procedure calling it may
-- commit (it was CALLed on its own, not inside a transaction block).
CREATE FUNCTION @extschema@._hb_require_nonatomic(what text)
RETURNS void
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'hb_require_nonatomic';
COMMENT ON FUNCTION @extschema@._hb_require_nonatomic(text) IS
    'Internal: an error when called inside a transaction block (procedures that commit).';
REVOKE ALL ON FUNCTION @extschema@._hb_require_nonatomic(text) FROM PUBLIC;
