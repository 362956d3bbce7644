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

// The NULL checks alone (for the new version of an updated heartbeat).
void check_not_null_key(Relation rel, RelInfo *ri, TupleTableSlot *slot);

// An UPDATE is changing a heartbeat into newrow: if it moves it to another
// partition, its arrival there is not a retry. Dropped by
// forget_updated_rows() when the UPDATE's statement trigger runs.
void note_updated_row(RelInfo *ri, TupleTableSlot *newrow);
void forget_updated_rows();

// Closes the index scans kept open between probes: every hb_lifecycle
// statement trigger does, and so does the pre-commit callback.
void dedupe_close_scans();
// A subtransaction aborted: forget the scans its resource owner released.
void dedupe_subxact_abort(SubTransactionId subid);
// The transaction ended: forget every scan (the pre-commit callback closed
// them on commit; abort released them).
void dedupe_end_of_transaction();

}  // namespace hb::sync
