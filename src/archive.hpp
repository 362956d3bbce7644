// archive.hpp — the worker's jobs: archive a partition, restore one.
//
// Runs in the worker only (worker.cpp calls run_job between its waits).
// Each job is a few short transactions (archive_steps in SQL) around the
// export, which reads the partition in one REPEATABLE READ snapshot, and
// the upload, which runs outside any transaction.
#pragma once

#include "worker.hpp"

#include <cstdint>
#include <string>

namespace hb::archive {

struct Outcome {
    std::string state;     // the partition's state after the job, or "failed", "cancelled"
    std::string sqlstate;  // when the job raised
    std::string message;   // why it failed (never a secret)
    std::int64_t rows = 0;
};

// At the worker's start: the jobs a dead worker was running are queued
// again, their unfinished uploads aborted, the spool emptied. True when
// done (false: try again later).
bool recover_after_restart();

Outcome run_job(std::int64_t job_id, worker::JobKind kind);

}  // namespace hb::archive
