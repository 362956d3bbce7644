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

namespace hb::guc {

bool skip_duplicate_heartbeats = true;
int ddl_lock_timeout_ms = 2000;
int ddl_lock_retries = 3;
int events_retention_s = 30 * 86400;
int max_future_s = 7 * 86400;
int max_drops_per_run = 100;

void define() {
    DefineCustomBoolVariable(
        "hb_lifecycle.skip_duplicate_heartbeats",
        "Skips a heartbeat whose device and time are already stored.",
        "A device or an application that retries after a timeout sends the same heartbeat "
        "twice; it is stored once and counted as a dedupe hit. Turn it off in a session "
        "that relies on INSERT ... ON CONFLICT DO UPDATE on a managed table.",
        &skip_duplicate_heartbeats, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);

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
//   OUT max_drops_per_run integer): the lifecycle's
// settings, typed (current_setting() gives text with units, and fails in a
// session that has not loaded the library yet).
extern "C" Datum hb_settings(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        using namespace hb::guc;
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "hb_settings: return type must be a row type");
        Datum values[5] = {seconds_interval(int64{ddl_lock_timeout_ms} * 1000),
                           Int32GetDatum(ddl_lock_retries),
                           seconds_interval(int64{events_retention_s} * USECS_PER_SEC),
                           seconds_interval(int64{max_future_s} * USECS_PER_SEC),
                           Int32GetDatum(max_drops_per_run)};
        bool nulls[5] = {false, false, false, false, false};
        return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
    });
}
