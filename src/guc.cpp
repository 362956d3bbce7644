// guc.cpp — definitions of the settings declared in guc.hpp.
#include "pg.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

#include "guard.hpp"

#include "guc.hpp"
#include "worker.hpp"

#include <initializer_list>

namespace hb::guc {

bool skip_duplicate_heartbeats = true;
bool read_from_last_status = true;
int ddl_lock_timeout_ms = 2000;
int ddl_lock_retries = 3;
int events_retention_s = 30 * 86400;
int max_future_s = 7 * 86400;
int max_drops_per_run = 100;
char *database = nullptr;
char *archive_url = nullptr;
char *archive_compression = nullptr;
int archive_gzip_level = 1;
char *s3_endpoint = nullptr;
char *s3_region = nullptr;
char *s3_credentials_file = nullptr;
char *s3_profile = nullptr;
char *s3_sse = nullptr;
int s3_part_size_kb = 16 * 1024;
char *alert_webhook_url = nullptr;
char *spool_directory = nullptr;
int alert_min_interval_s = 3600;
int archive_retry_base_s = 300;

namespace {

bool check_one_of(char **newval, const char *name, std::initializer_list<const char *> allowed) {
    for (const char *a : allowed)
        if (strcmp(*newval, a) == 0)
            return true;
    GUC_check_errdetail("%s must be one of the documented values.", name);
    return false;
}

bool check_compression(char **newval, void **, GucSource) {
    return check_one_of(newval, "hb_lifecycle.archive_compression", {"gzip", "none"});
}

bool check_sse(char **newval, void **, GucSource) {
    return check_one_of(newval, "hb_lifecycle.s3_sse", {"AES256", "aws:kms", "none"});
}

// The URL may be file:///dir (an absolute directory) or s3://bucket/prefix;
// what is wrong with it is said without repeating it.
bool check_archive_url(char **newval, void **, GucSource) {
    if (**newval == '\0')
        return true;
    if (strncmp(*newval, "file:///", 8) == 0 || strncmp(*newval, "s3://", 5) == 0)
        return true;
    GUC_check_errdetail("hb_lifecycle.archive_url must start with file:/// or s3://.");
    return false;
}

// A webhook's URL carries its token, and every value of a setting is in
// pg_settings (reset_val) and in the log of the reload that changed it:
// the setting names a file that holds the URL.
bool check_webhook(char **newval, void **, GucSource) {
    if (**newval == '\0' || strncmp(*newval, "file:///", 8) == 0)
        return true;
    GUC_check_errdetail(
        "hb_lifecycle.alert_webhook_url must be file:///path of a file (chmod 600) "
        "that holds the webhook's URL, which carries its token.");
    return false;
}

}  // namespace

void define() {
    DefineCustomBoolVariable(
        "hb_lifecycle.skip_duplicate_heartbeats",
        "Skips a heartbeat whose device and time are already stored.",
        "A device or an application that retries after a timeout sends the same heartbeat "
        "twice; it is stored once and counted as a dedupe hit. Turn it off in a session "
        "that relies on INSERT ... ON CONFLICT DO UPDATE on a managed table.",
        &skip_duplicate_heartbeats, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "hb_lifecycle.read_from_last_status",
        "hb_device_status() and hb_fleet_status() read the last-status table.",
        "They do once the table's backfill is complete (CALL hb_backfill_last_status()). Off, "
        "they run the legacy query on the heartbeats table instead: the kill switch, for a "
        "session (SET) or the whole server (ALTER SYSTEM SET and a reload).",
        &read_from_last_status, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);

    DefineCustomIntVariable(
        "hb_lifecycle.ddl_lock_timeout",
        "Longest wait for a lock on a managed table by hb_lifecycle's DDL.",
        "Creating, attaching and dropping partitions runs under this lock_timeout, so the "
        "application's inserts, which queue behind a waiting lock, never wait longer. A "
        "step that times out is retried (hb_lifecycle.ddl_lock_retries) with backoff, then "
        "given up with everything left as it was.",
        &ddl_lock_timeout_ms, 2000, 1, 600000, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("hb_lifecycle.ddl_lock_retries",
                            "How many times a DDL step that timed out on its lock is tried again.",
                            nullptr, &ddl_lock_retries, 3, 0, 100, PGC_SUSET, 0, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("hb_lifecycle.events_retention",
                            "hb_events rows older than this are deleted by hb_run_maintenance().",
                            nullptr, &events_retention_s, 30 * 86400, 3600, INT_MAX, PGC_SUSET,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "hb_lifecycle.max_future",
        "A heartbeat in the catch-all partition further ahead of now is quarantined.",
        "Rows whose partition does not exist land in the catch-all partition; maintenance "
        "moves them into their partition, except those too far in the future (a device with "
        "a wrong clock) or older than the retention, which it moves to hb_quarantine.",
        &max_future_s, 7 * 86400, 3600, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);

    DefineCustomIntVariable(
        "hb_lifecycle.max_drops_per_run",
        "Most partitions one hb_run_maintenance() drops; the rest wait for the next run.",
        "Each drop keeps an ACCESS EXCLUSIVE lock on its table until the run commits, and "
        "takes locks of its own: this bounds both (so does half of ddl_lock_timeout).",
        &max_drops_per_run, 100, 1, 100000, PGC_SUSET, 0, nullptr, nullptr, nullptr);

    // A PGC_POSTMASTER setting can only be defined while preloading (a
    // backend that loads the library later would fail); without preloading
    // there is no worker for it to name.
    if (process_shared_preload_libraries_in_progress)
        DefineCustomStringVariable(
            "hb_lifecycle.database", "The database hb_lifecycle's background worker connects to.",
            "Archive and restore jobs run there; the extension must be installed in it.", &database,
            "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("hb_lifecycle.archive_url",
                               "Where partitions are archived: file:///dir or s3://bucket/prefix.",
                               "Empty means the directory hb_archive under the data directory.",
                               &archive_url, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, check_archive_url,
                               nullptr, nullptr);
    DefineCustomStringVariable(
        "hb_lifecycle.archive_compression", "Compression of archive files: gzip or none.", nullptr,
        &archive_compression, "gzip", PGC_SIGHUP, 0, check_compression, nullptr, nullptr);
    DefineCustomIntVariable("hb_lifecycle.archive_gzip_level",
                            "gzip level of archive files (1 fastest, 9 smallest).", nullptr,
                            &archive_gzip_level, 1, 1, 9, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("hb_lifecycle.s3_endpoint",
                               "S3 endpoint URL (path-style), for S3-compatible servers.",
                               "Empty means https://s3.<s3_region>.amazonaws.com.", &s3_endpoint,
                               "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("hb_lifecycle.s3_region", "S3 region that requests are signed for.",
                               nullptr, &s3_region, "us-east-1", PGC_SIGHUP, 0, nullptr, nullptr,
                               nullptr);
    DefineCustomStringVariable(
        "hb_lifecycle.s3_credentials_file", "AWS credentials file the worker reads S3 keys from.",
        "It must be readable by the server's OS user only (chmod 600). The keys never appear "
        "in settings, logs, events or errors.",
        &s3_credentials_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("hb_lifecycle.s3_profile", "Section of the credentials file to use.",
                               nullptr, &s3_profile, "default", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
                               nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "hb_lifecycle.s3_sse",
        "Server-side encryption of archive objects: AES256, aws:kms or none.", nullptr, &s3_sse,
        "AES256", PGC_SIGHUP, 0, check_sse, nullptr, nullptr);
    DefineCustomIntVariable("hb_lifecycle.s3_part_size",
                            "Size of a multipart upload's parts (S3's minimum, 5 MB, is kept).",
                            "Objects smaller than this are sent in one request.", &s3_part_size_kb,
                            16 * 1024, 5 * 1024, 5 * 1024 * 1024, PGC_SIGHUP, GUC_UNIT_KB, nullptr,
                            nullptr, nullptr);
    DefineCustomStringVariable(
        "hb_lifecycle.alert_webhook_url",
        "Webhook (Discord-compatible JSON) that gets an alert when an archive fails.",
        "file:///path of a file (chmod 600) that holds the URL, so that its token is never in "
        "pg_settings nor the server log. Empty means no alerts.",
        &alert_webhook_url, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, check_webhook, nullptr, nullptr);
    DefineCustomStringVariable(
        "hb_lifecycle.spool_directory",
        "Where the worker keeps an S3 archive's compressed file until it is uploaded.",
        "Empty means hb_lifecycle_spool in the data directory. An archive is refused when the "
        "directory's file system has less free space than the partition's size.",
        &spool_directory, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("hb_lifecycle.alert_min_interval",
                            "Least time between two alerts about the same partition.", nullptr,
                            &alert_min_interval_s, 3600, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "hb_lifecycle.archive_retry_interval",
        "First wait before maintenance tries a failed archive again; it doubles per attempt.",
        "Capped at 24 hours.", &archive_retry_base_s, 300, 0, 86400, PGC_SIGHUP, GUC_UNIT_S,
        nullptr, nullptr, nullptr);

    MarkGUCPrefixReserved("hb_lifecycle");
}

}  // namespace hb::guc

namespace {
Datum seconds_interval(int64 micros) {
    auto *iv = static_cast<Interval *>(palloc0(sizeof(Interval)));
    iv->time = micros;
    return IntervalPGetDatum(iv);
}
}  // namespace

extern "C" {
PG_FUNCTION_INFO_V1(hb_settings);
}

// hb_settings(OUT ddl_lock_timeout interval, OUT ddl_lock_retries integer,
//   OUT events_retention interval, OUT max_future interval,
//   OUT max_drops_per_run integer, OUT archive_retry_interval interval,
//   OUT worker_available boolean): the lifecycle's
// settings, typed (current_setting() gives text with units, and fails in a
// session that has not loaded the library yet).
extern "C" Datum hb_settings(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        using namespace hb::guc;
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "hb_settings: return type must be a row type");
        Datum values[7] = {seconds_interval(int64{ddl_lock_timeout_ms} * 1000),
                           Int32GetDatum(ddl_lock_retries),
                           seconds_interval(int64{events_retention_s} * USECS_PER_SEC),
                           seconds_interval(int64{max_future_s} * USECS_PER_SEC),
                           Int32GetDatum(max_drops_per_run),
                           seconds_interval(int64{archive_retry_base_s} * USECS_PER_SEC),
                           BoolGetDatum(hb::worker::available())};
        bool nulls[7] = {false, false, false, false, false, false, false};
        // A database still at 0.2 declares the first five columns only:
        // its row type decides how many are returned.
        if (desc->natts > 7)
            elog(ERROR, "hb_settings: the function's row type has %d columns", desc->natts);
        return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
    });
}
