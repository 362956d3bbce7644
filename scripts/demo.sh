#!/usr/bin/env bash
# The main job of hb_lifecycle, end to end, on a scratch PostgreSQL 15
# cluster: install what is missing, build and install the extension, start
# a cluster with shared_preload_libraries = 'pg_cron,hb_lifecycle', create a
# heartbeats table, register it, insert heartbeats for a few hundred devices
# the way devices send them (late, out of order, retried), show their last
# status (and the read functions: both paths compared, the kill switch,
# drift healed by hb_reconcile), run the nightly maintenance (partitions ahead, the catch-all
# emptied, a wrong clock quarantined, yesterday's partition archived by the
# background worker to the default target), show the archive and its
# manifest and check its SHA-256, check the last status against the
# heartbeats, and stop the cluster.
#
#   scripts/demo.sh        (as root on a fresh Debian 12 machine)
#
# HB_DEMO_DIR (default /tmp/hb_lifecycle_demo) and HB_DEMO_PORT (54330)
# choose where the scratch cluster lives.
set -euo pipefail
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"

DIR="${HB_DEMO_DIR:-/tmp/hb_lifecycle_demo}"
PORT="${HB_DEMO_PORT:-54330}"
DEVICES="${HB_DEMO_DEVICES:-300}"

ensure_packages
build_and_install
stop_cluster "$DIR"
rm -rf "$DIR"
log "starting a scratch cluster in $DIR (port $PORT, socket only)"
start_cluster "$DIR" "$PORT" "hb_lifecycle.database = 'fleet'"
trap 'log "stopping the cluster"; stop_cluster "$DIR"' EXIT
as_pg createdb -h "$DIR" -p "$PORT" fleet
run() { pg_psql "$DIR" "$PORT" fleet "$@"; }

log "creating the heartbeats table and registering it"
run <<'SQL'
CREATE EXTENSION hb_lifecycle;
SET TimeZone = 'UTC';
CREATE TABLE heartbeats (
    device_id   bigint      NOT NULL,
    ts          timestamptz NOT NULL,
    status      text        NOT NULL,
    battery_pct smallint,
    rssi_dbm    smallint,
    firmware    text,
    seq         bigint,
    payload     jsonb
) PARTITION BY RANGE (ts);
-- Registers the table: last-status table, triggers, a catch-all partition,
-- and daily partitions from today to today + premake (UTC days).
SELECT hb_manage('heartbeats', premake => 3);
SELECT parent, device_column, time_column, last_status_table, partition_prefix, premake, retention
  FROM hb_config;
SELECT partition_name, range_start, range_end, state FROM hb_partitions ORDER BY range_start;
SQL

log "inserting heartbeats for $DEVICES devices: batches, single rows, late and retried ones"
run -v devices="$DEVICES" <<'SQL'
SET TimeZone = 'UTC';
SET demo.devices = :devices;
-- Ten rounds of heartbeats, one per device per round, sent in batches of 100
-- devices, each heartbeat jittered by up to 15 s around its round.
DO $$
DECLARE r int; b int;
BEGIN
    FOR r IN 1..10 LOOP
        FOR b IN 0..(current_setting('demo.devices')::int - 1) / 100 LOOP
            INSERT INTO heartbeats
            SELECT d, date_trunc('hour', now()) - interval '2 hours' + r * interval '1 minute'
                      + (random() * 30 - 15) * interval '1 second',
                   (ARRAY['ok', 'ok', 'ok', 'degraded', 'low_battery'])[1 + (d + r) % 5],
                   (100 - r * 3 - d % 20)::smallint, (-55 - d % 30)::smallint, 'fw-2.4.' || (d % 3),
                   r, jsonb_build_object('temp_c', 18 + d % 12, 'uptime_s', r * 60)
              FROM generate_series(b * 100 + 1, least((b + 1) * 100, current_setting('demo.devices')::int)) d;
        END LOOP;
    END LOOP;
END $$;
-- Yesterday's last round, sent late (its partition did not exist: the
-- catch-all partition takes it until maintenance gives it one).
INSERT INTO heartbeats
SELECT d, date_trunc('day', now()) - interval '1 hour' + (d % 60) * interval '1 second', 'ok',
       90::smallint, -60::smallint, 'fw-2.4.0', 0, '{"yesterday": true}'
  FROM generate_series(1, current_setting('demo.devices')::int) d;
-- A device whose clock is years ahead: kept (the catch-all partition takes
-- it) until maintenance quarantines it.
INSERT INTO heartbeats VALUES (3, now() + interval '3 years', 'ok', 80, -60, 'fw-2.4.0', 99, '{"clock": "wrong"}');
-- A device whose heartbeats arrive late and out of order.
INSERT INTO heartbeats VALUES (1, now() - interval '3 hours', 'ok', 99, -50, 'fw-2.4.0', 0, '{"late": true}');
-- An application retrying a single-row insert after a timeout.
INSERT INTO heartbeats SELECT device_id, ts, status, battery_pct, rssi_dbm, firmware, seq, payload
  FROM device_last_status WHERE device_id = 2;
SQL

log "last status of a few devices (one primary-key read each)"
run <<'SQL'
SET TimeZone = 'UTC';
SELECT device_id, ts, status, battery_pct, payload FROM device_last_status
 WHERE device_id IN (1, 2, 42, 150) ORDER BY device_id;
SELECT status, count(*) AS devices FROM device_last_status GROUP BY status ORDER BY devices DESC;
SELECT count(*) AS heartbeats, count(DISTINCT device_id) AS devices FROM heartbeats;
SELECT * FROM hb_counters();
SQL

log "the read path: hb_device_status(), hb_fleet_status(), both paths compared, drift healed"
run <<'SQL'
SET TimeZone = 'UTC';
SELECT * FROM hb_device_status(42);
SELECT count(*) AS devices FROM hb_fleet_status();
SELECT path, reads, round(p50_ms::numeric, 3) AS p50_ms, round(p99_ms::numeric, 3) AS p99_ms,
       round(buffers_per_read::numeric, 1) AS buffers_per_read, mismatches
  FROM hb_compare_read_paths(200);
-- The kill switch: the legacy query on the heartbeats (a NOTICE says so).
SET hb_lifecycle.read_from_last_status = off;
SELECT device_id, ts FROM hb_device_status(42);
RESET hb_lifecycle.read_from_last_status;
-- Drift (rows deleted by hand), healed by what pg_cron runs hourly.
DELETE FROM device_last_status WHERE device_id <= 5;
SELECT hb_reconcile() AS repaired;
SQL

log "nightly maintenance (what pg_cron runs once hb_schedule() installs it)"
run <<'SQL'
SET TimeZone = 'UTC';
SELECT jsonb_pretty(hb_run_maintenance() - 'ms') AS summary;
SELECT reason, heartbeat->>'device_id' AS device_id, heartbeat->>'ts' AS ts FROM hb_quarantine;
SELECT partition_name, state, row_count, pg_size_pretty(bytes) AS size FROM hb_partitions
 ORDER BY range_start;
SELECT at, event, partition_name, detail FROM hb_events ORDER BY id DESC LIMIT 5;
SQL

log "the archive of yesterday's partition (maintenance queued it; the background worker wrote it)"
YESTERDAY=$(run -At -c "SELECT to_char((now() AT TIME ZONE 'UTC')::date - 1, '\"hb_\"YYYY_MM_DD')")
for _ in $(seq 1 100); do
    [ "$(run -At -c "SELECT count(*) FROM hb_jobs WHERE state IN ('queued', 'running')")" = 0 ] && break
    sleep 0.2
done
run <<SQL
SELECT id, kind, partition_name, state, rows, bytes, result FROM hb_jobs ORDER BY id;
SELECT partition_name, state, row_count, sha256, checksum_manifest_url FROM hb_partitions
 WHERE partition_name = '$YESTERDAY';
-- A second archive of an archived partition checks it against its manifest
-- and uploads nothing.
SELECT hb_archive_partition('$YESTERDAY') AS state;
SQL
ARCHIVE="$DIR/data/hb_archive/public.heartbeats/$YESTERDAY"
log "its manifest ($ARCHIVE/manifest.json)"
as_pg cat "$ARCHIVE/manifest.json"
log "its data file, read with standard tools"
as_pg sha256sum "$ARCHIVE/part-00000.csv.gz"
as_pg sh -c "zcat '$ARCHIVE/part-00000.csv.gz' | head -3"
recorded=$(run -At -c "SELECT sha256 FROM hb_partitions WHERE partition_name = '$YESTERDAY'")
[ "$(as_pg sha256sum "$ARCHIVE/part-00000.csv.gz" | cut -d' ' -f1)" = "$recorded" ] ||
    die "the archive's SHA-256 is not the one hb_partitions records"
log "the archive's SHA-256 is the one hb_partitions records"

log "checking device_last_status against the heartbeats"
mismatches=$(run -At -c "
    SELECT count(*) FROM (SELECT DISTINCT ON (device_id) * FROM heartbeats
                          ORDER BY device_id, ts DESC) h
    FULL JOIN device_last_status l USING (device_id)
    WHERE h.device_id IS NULL OR l.device_id IS NULL OR (h.*)::text <> (l.*)::text")
[ "$mismatches" = 0 ] || die "$mismatches devices whose last status is not their newest heartbeat"
log "every device's last status is its newest heartbeat"
