// last_status_writer.hpp — writes to a last-status table.
//
// Called from the AFTER STATEMENT triggers (and the pre-commit safety net),
// inside the transaction of the heartbeats, so every write commits or rolls
// back with them. Locks: RowExclusiveLock on the last-status table; row
// locks on its rows are always taken in key order (see core/key_codec.hpp).
// C-style code (errors longjmp through it).
#pragma once

#include "pg.hpp"

extern "C" {
#include "commands/trigger.h"
}

#include "core/latest_buffer.hpp"
#include "sync_config.hpp"

namespace hb::sync {

// Applies the newest heartbeat of each device in rows[0..n) (one row per
// device, sorted by key, all of target t): a device's row in the last-status
// table is replaced only by a strictly newer heartbeat.
void apply_newest(Target *t, const core::DrainedRow *rows, std::size_t n);

// After an UPDATE or DELETE of heartbeats: every device whose current
// last-status row may be among the removed or changed rows, or is bettered
// by an updated one, is set to its newest remaining heartbeat, or removed
// when none remains. td carries the transition tables (hb_old, and hb_new
// for an UPDATE); extra[0..nextra) are the statement's buffered inserts of
// the same target (rows an UPDATE moved to another partition), handled in
// the same pass so that the statement locks devices in one order.
void recompute_after_change(Target *t, TriggerData *td, bool is_update,
                            const core::DrainedRow *extra, std::size_t nextra);

// Takes every change lock of last-status table ls (all buckets, in
// ascending order, until the transaction ends): a statement that writes
// device rows from its own snapshot (hb_reconcile, the backfill) takes them
// before that snapshot, so that no UPDATE or DELETE of heartbeats is in
// flight while it reads, and none it waited for is undone by its write.
void lock_all_changes(Oid ls);

}  // namespace hb::sync
