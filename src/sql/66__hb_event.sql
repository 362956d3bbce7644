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
