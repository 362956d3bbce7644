// guc.hpp — hb_lifecycle's settings (GUCs, prefix "hb_lifecycle.").
//
// Defined once from _PG_init, in every process that loads the library.
#pragma once

namespace hb::guc {

// hb_lifecycle.skip_duplicate_heartbeats: a heartbeat whose (device, time)
// is already stored is a retry; skip it silently (and count it) instead of
// raising unique_violation.
extern bool skip_duplicate_heartbeats;

// hb_lifecycle.read_from_last_status: hb_device_status() and
// hb_fleet_status() read the last-status table (once its backfill is
// complete); off, they run the legacy query on the heartbeats (the kill
// switch, per session or for the whole server).
extern bool read_from_last_status;

// The partition lifecycle's settings (read by the PL/pgSQL lifecycle
// through hb_settings(); superuser-only, since they decide how long the
// application's inserts may wait).
extern int ddl_lock_timeout_ms;  // lock_timeout of DDL that locks a managed parent
extern int ddl_lock_retries;     // attempts after the first, with backoff
extern int events_retention_s;   // hb_events older than this are pruned
extern int max_future_s;         // catch-all rows further ahead are quarantined

// The worker and archives (see docs/archive.md). All but `database` take
// effect on a reload; the worker reads them at the start of each job.
extern char *database;             // PGC_POSTMASTER: the worker's database
extern char *archive_url;          // file:///dir or s3://bucket/prefix; "" = file under PGDATA
extern char *archive_compression;  // gzip | none
extern int archive_gzip_level;     // 1..9
extern char *s3_endpoint;          // "" = https://s3.<region>.amazonaws.com
extern char *s3_region;
extern char *s3_credentials_file;  // AWS credentials file; "" = none
extern char *s3_profile;           // its section
extern char *s3_sse;               // AES256 | aws:kms | none
extern int s3_part_size_kb;        // multipart part size
extern char *alert_webhook_url;    // file:///path of a file holding the webhook URL; "" = none
extern char *spool_directory;      // "" = PGDATA/hb_lifecycle_spool
extern int alert_min_interval_s;   // per partition
extern int archive_retry_base_s;   // maintenance's backoff for archive_failed

void define();

}  // namespace hb::guc
