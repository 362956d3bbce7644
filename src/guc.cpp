// guc.cpp — definitions of the settings declared in guc.hpp.
#include "pg.hpp"

extern "C" {
#include "utils/guc.h"
}

#include "guc.hpp"

namespace hb::guc {

bool skip_duplicate_heartbeats = true;

void define() {
    DefineCustomBoolVariable(
        "hb_lifecycle.skip_duplicate_heartbeats",
        "Skips a heartbeat whose device and time are already stored.",
        "A device or an application that retries after a timeout sends the same heartbeat "
        "twice; it is stored once and counted as a dedupe hit. Turn it off in a session "
        "that relies on INSERT ... ON CONFLICT DO UPDATE on a managed table.",
        &skip_duplicate_heartbeats, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);

    MarkGUCPrefixReserved("hb_lifecycle");
}

}  // namespace hb::guc
