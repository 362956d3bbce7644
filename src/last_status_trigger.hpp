// last_status_trigger.hpp — registration of the last-status triggers' hooks.
#pragma once

namespace hb::sync {

// Transaction and subtransaction callbacks that own the per-statement
// buffer's lifetime. Called once from _PG_init.
void install_callbacks();

}  // namespace hb::sync
