// worker.hpp — hb_lifecycle's background worker ("hb_lifecycle worker")
// and the mailbox through which backends hand it jobs.
//
// The worker exists only when the library is in shared_preload_libraries;
// it connects to hb_lifecycle.database as the bootstrap superuser and runs
// the jobs of hb_jobs one at a time (archive, restore). A backend cannot
// queue a job by inserting a row: the worker would not see the row before
// the backend commits, and hb_archive_partition(..., wait => true) must
// wait for the result inside its own transaction. So a backend puts the
// request into a shared-memory slot and sets the worker's latch; the worker
// records the job in hb_jobs in a transaction of its own (from then on the
// job survives a crash or a restart), runs it, and posts the result back
// into the slot. A backend that stops waiting (cancel) leaves the job
// running; hb_cancel_job() stops it.
//
// Locking: one spinlock guards the slots and the worker's identity; the
// backends sleep on a condition variable that the worker broadcasts on.
#pragma once

#include "pg.hpp"

#include <cstdint>
#include <string>
#include <type_traits>

namespace hb::worker {

enum class JobKind : int { Archive = 1, Restore = 2 };

// Registers the static worker; from _PG_init while preloading.
void register_worker();
// Shared memory for the mailbox; from _PG_init while preloading.
void install_hooks();

// Whether the library was preloaded (so the worker and its mailbox exist).
bool available();

// Live progress of the job the worker runs (shown by hb_jobs).
void report_progress(std::int64_t job_id, const char *phase, std::uint64_t rows,
                     std::uint64_t bytes);
// Whether someone asked for the running job to stop (hb_cancel_job).
bool cancel_requested(std::int64_t job_id);

// Runs body(arg) in a transaction of its own (REPEATABLE READ, READ ONLY
// when asked) with SPI connected and a snapshot; false, with the error's
// message and SQLSTATE, when it raised (the transaction is then aborted
// and the error logged). body must hold no C++ objects with destructors
// across PostgreSQL calls (guard.hpp).
bool run_in_transaction(const char *activity, void (*body)(void *), void *arg, std::string *error,
                        std::string *sqlstate, bool repeatable_read);

template <typename F>
bool in_transaction(const char *activity, F &&f, std::string *error = nullptr,
                    std::string *sqlstate = nullptr, bool repeatable_read = false) {
    using Fn = std::remove_reference_t<F>;
    return run_in_transaction(
        activity, [](void *p) { (*static_cast<Fn *>(p))(); }, &f, error, sqlstate, repeatable_read);
}

}  // namespace hb::worker
