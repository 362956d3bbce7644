// guc.hpp — hb_lifecycle's settings (GUCs, prefix "hb_lifecycle.").
//
// Defined once from _PG_init, in every process that loads the library.
#pragma once

namespace hb::guc {

// hb_lifecycle.skip_duplicate_heartbeats: a heartbeat whose (device, time)
// is already stored is a retry; skip it silently (and count it) instead of
// raising unique_violation.
extern bool skip_duplicate_heartbeats;

void define();

}  // namespace hb::guc
