// last_status_trigger.hpp — registration of the last-status triggers' hooks.
#pragma once

#include "pg.hpp"

namespace hb::sync {

// Transaction and subtransaction callbacks that own the per-statement
// buffer's lifetime. Called once from _PG_init.
void install_callbacks();

// While set, a DELETE from relation relid recomputes no device: the rows
// are being moved to another partition of the same table in the same
// transaction (see partitions.cpp), so no device's newest heartbeat
// changes, and a recomputation before the move ends would see the rows in
// neither place. InvalidOid ends it; so does the end of the transaction.
void set_moving_rows(Oid relid);

}  // namespace hb::sync
