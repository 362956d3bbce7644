// shmem.cpp — the counters of shmem.hpp and the SQL function hb_counters().
//
// Locking: the segment is created once under AddinShmemInitLock by the
// postmaster (or the first backend on EXEC_BACKEND builds); afterwards every
// access is a lock-free 64-bit atomic.
#include "pg.hpp"

extern "C" {
#include "funcapi.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
}

#include "guard.hpp"
#include "shmem.hpp"

namespace hb::shmem {
namespace {

struct Segment {
    pg_atomic_uint64 counters[kCounterCount];
};

Segment *segment = nullptr;
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

const char *const kNames[kCounterCount] = {
    "dedupe_hits",
    "last_status_writes",
    "last_status_stale_skips",
    "last_status_recomputes",
    "events_partition_create",
    "events_archive_start",
    "events_archive_end",
    "events_archive_failed",
    "events_drop",
    "events_restore",
    "events_reconcile",
    "events_quarantine",
    "events_archive_stale",
    "events_backfill",
};

// hb_events names, in the order of the event counters.
const char *const kEventNames[] = {
    "partition.create", "archive.start", "archive.end", "archive.failed", "drop",
    "restore",          "reconcile",     "quarantine",  "archive.stale",  "backfill",
};
static_assert(kEventPartitionCreate + lengthof(kEventNames) == kCounterCount,
              "one counter per event");

void request_shmem() {
    if (prev_shmem_request_hook)
        prev_shmem_request_hook();
    RequestAddinShmemSpace(MAXALIGN(sizeof(Segment)));
}

void startup_shmem() {
    if (prev_shmem_startup_hook)
        prev_shmem_startup_hook();
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    segment = static_cast<Segment *>(ShmemInitStruct("hb_lifecycle", sizeof(Segment), &found));
    if (!found)
        for (auto &c : segment->counters)
            pg_atomic_init_u64(&c, 0);
    LWLockRelease(AddinShmemInitLock);
}

}  // namespace

const char *counter_name(Counter c) {
    return kNames[c];
}

void install_hooks() {
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

bool attached() {
    return segment != nullptr;
}

void add(Counter c, std::uint64_t n) {
    if (segment != nullptr && n > 0)
        pg_atomic_fetch_add_u64(&segment->counters[c], n);
}

void count_event(const char *event) {
    for (size_t i = 0; i < lengthof(kEventNames); ++i)
        if (strcmp(event, kEventNames[i]) == 0)
            add(static_cast<Counter>(kEventPartitionCreate + i));
}

std::uint64_t read(Counter c) {
    return segment != nullptr ? pg_atomic_read_u64(&segment->counters[c]) : 0;
}

}  // namespace hb::shmem

extern "C" {
PG_FUNCTION_INFO_V1(hb_counters);
}

// hb_counters() RETURNS TABLE (counter text, value bigint)
extern "C" Datum hb_counters(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        using namespace hb::shmem;
        if (!attached())
            ereport(ERROR,
                    (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                     errmsg("hb_lifecycle's shared counters are not available"),
                     errdetail("The library was not loaded at server start."),
                     errhint("Add hb_lifecycle to shared_preload_libraries in postgresql.conf "
                             "and restart the server.")));
        ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
        InitMaterializedSRF(fcinfo, 0);
        for (int i = 0; i < kCounterCount; ++i) {
            Datum values[2];
            bool nulls[2] = {false, false};
            values[0] = CStringGetTextDatum(counter_name(static_cast<Counter>(i)));
            values[1] = Int64GetDatum(static_cast<int64>(read(static_cast<Counter>(i))));
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
        }
        return (Datum)0;
    });
}
