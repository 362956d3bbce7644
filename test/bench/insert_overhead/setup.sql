-- Three heartbeats tables of the same shape (8 columns, jsonb payload,
-- daily partitions, unique (device_id, ts)), differing only in what keeps
-- their last-status table:
--   hb_none      nothing (the limit)
--   hb_plpgsql   the PL/pgSQL row trigger users write today
--   hb_ext       hb_lifecycle
SET client_min_messages = warning;
SET TimeZone = 'UTC';
CREATE EXTENSION IF NOT EXISTS hb_lifecycle;

CREATE FUNCTION bench_make(t text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE d date;
BEGIN
    EXECUTE format($f$
        CREATE TABLE %I (
            device_id   bigint      NOT NULL,
            ts          timestamptz NOT NULL,
            status      text        NOT NULL,
            battery_pct smallint,
            rssi_dbm    smallint,
            firmware    text,
            seq         bigint,
            payload     jsonb
        ) PARTITION BY RANGE (ts)$f$, t);
    FOR d IN SELECT generate_series(current_date - 2, current_date + 3, interval '1 day')::date LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       t || to_char(d, '_YYYY_MM_DD'), t, d::timestamptz, (d + 1)::timestamptz);
    END LOOP;
    EXECUTE format('CREATE UNIQUE INDEX ON %I (device_id, ts)', t);
END $$;

SELECT bench_make('hb_none'), bench_make('hb_plpgsql'), bench_make('hb_ext');

CREATE TABLE plpgsql_last_status (LIKE hb_plpgsql) WITH (fillfactor = 50);
ALTER TABLE plpgsql_last_status ADD PRIMARY KEY (device_id);
CREATE FUNCTION plpgsql_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO plpgsql_last_status VALUES (NEW.*)
    ON CONFLICT (device_id) DO UPDATE
       SET ts = EXCLUDED.ts, status = EXCLUDED.status, battery_pct = EXCLUDED.battery_pct,
           rssi_dbm = EXCLUDED.rssi_dbm, firmware = EXCLUDED.firmware, seq = EXCLUDED.seq,
           payload = EXCLUDED.payload
     WHERE plpgsql_last_status.ts < EXCLUDED.ts;
    RETURN NULL;
END $$;
CREATE TRIGGER plpgsql_sync AFTER INSERT ON hb_plpgsql FOR EACH ROW EXECUTE FUNCTION plpgsql_sync();

SELECT hb_manage('hb_ext', last_status_table => 'ext_last_status', partition_prefix => 'hb_ext');

CREATE SEQUENCE batch_seq;

-- A batch as a client library sends it: one INSERT with 2,000 literal rows,
-- one per device, all at the transaction's now().
CREATE FUNCTION bench_values_sql(t text) RETURNS text LANGUAGE sql AS $$
    SELECT format('INSERT INTO %I (device_id, ts, status, battery_pct, rssi_dbm, firmware, seq, payload) VALUES ', t)
        || string_agg(format('(%s, now(), %L, %s, %s, %L, %s, %L)', g, 'ok', g % 100, -50 - g % 40,
                             'fw-1.4.2', g, format('{"temp_c": %s, "uptime_s": %s, "net": "lte", "errors": []}',
                                                   20 + g % 15, g * 60)), ', ')
      FROM generate_series(1, 2000) g
$$;

-- One row per device, at the batch's own second of today (ts never repeats).
CREATE FUNCTION bench_batch_sql(t text) RETURNS text LANGUAGE sql AS $$
    SELECT format($f$INSERT INTO %I SELECT g, current_date::timestamptz + s.n * interval '1 second', 'ok',
       (g %% 100)::smallint, (-50 - g %% 40)::smallint, 'fw-1.4.2', s.n,
       ('{"temp_c":' || (20 + g %% 15) || ',"uptime_s":' || s.n * 60 || ',"net":"lte","errors":[]}')::jsonb
  FROM (SELECT nextval('batch_seq') AS n) s, generate_series(1, 2000) g$f$, t)
$$;
