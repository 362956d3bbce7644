// dedupe.hpp — the checks made on every heartbeat before it is stored.
#pragma once

#include "pg.hpp"

extern "C" {
#include "executor/tuptable.h"
#include "utils/rel.h"
}

#include "sync_config.hpp"

namespace hb::sync {

// Raises a clear error for a NULL device or time. Returns false when the
// heartbeat is a retry of one already stored (same device and time), which
// the caller then skips; counts it as a dedupe hit.
bool check_heartbeat(Relation rel, RelInfo *ri, TupleTableSlot *slot);

// Releases per-transaction state (called at commit and abort).
void dedupe_end_of_transaction();

}  // namespace hb::sync
