// shmem.hpp — hb_lifecycle's shared-memory counters.
//
// The segment exists only when the library is in shared_preload_libraries;
// without it add() does nothing and attached() is false. Counters are
// monotonic, updated with atomics, never reset (a restart resets them, as
// for pg_stat_* counters), and deliberately not transactional: a rolled-back
// insert that was deduplicated still counts as a dedupe hit.
#pragma once

#include <cstdint>

namespace hb::shmem {

enum Counter : int {
    kDedupeHits = 0,        // retried heartbeats skipped
    kLastStatusWrites,      // rows written to a last-status table
    kLastStatusStaleSkips,  // heartbeats older than the device's current row
    kLastStatusRecomputes,  // devices recomputed after UPDATE/DELETE
    // Lifecycle events (hb_events rows), one counter per kind.
    kEventPartitionCreate,
    kEventArchiveStart,
    kEventArchiveEnd,
    kEventArchiveFailed,
    kEventDrop,
    kEventRestore,
    kEventReconcile,
    kEventQuarantine,
    kEventArchiveStale,
    kEventBackfill,
    kCounterCount
};

const char *counter_name(Counter c);

// Called from _PG_init while preloading: installs the shmem hooks.
void install_hooks();

bool attached();
void add(Counter c, std::uint64_t n = 1);
std::uint64_t read(Counter c);

// Counts one lifecycle event by its hb_events name ("partition.create",
// "drop", ...); unknown names are ignored.
void count_event(const char *event);

}  // namespace hb::shmem
