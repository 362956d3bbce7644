// guc.hpp — hb_lifecycle's settings (GUCs, prefix "hb_lifecycle.").
//
// Defined once from _PG_init, in every process that loads the library.
#pragma once

namespace hb::guc {

// hb_lifecycle.skip_duplicate_heartbeats: a heartbeat whose (device, time)
// is already stored is a retry; skip it silently (and count it) instead of
// raising unique_violation.
extern bool skip_duplicate_heartbeats;

// The partition lifecycle's settings (read by the PL/pgSQL lifecycle
// through hb_settings(); superuser-only, since they decide how long the
// application's inserts may wait).
extern int ddl_lock_timeout_ms;  // lock_timeout of DDL that locks a managed parent
extern int ddl_lock_retries;     // attempts after the first, with backoff
extern int events_retention_s;   // hb_events older than this are pruned
extern int max_future_s;         // catch-all rows further ahead are quarantined

void define();

}  // namespace hb::guc
