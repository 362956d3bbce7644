// hb_lifecycle.cpp — the module's entry: PG_MODULE_MAGIC and _PG_init.
//
// _PG_init runs in every process that loads the library: the postmaster
// (when preloaded; it requests shared memory), each backend that uses a
// trigger or function, and later the background worker. It only registers
// settings, hooks and callbacks; it never touches a database.
#include "pg.hpp"

#include "guard.hpp"
#include "guc.hpp"
#include "last_status_trigger.hpp"
#include "shmem.hpp"
#include "sync_config.hpp"
#include "worker.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

extern "C" void _PG_init(void) {
    hb::guarded([] {
        hb::guc::define();
        if (process_shared_preload_libraries_in_progress) {
            hb::shmem::install_hooks();
            hb::worker::install_hooks();
            hb::worker::register_worker();
        }
        hb::sync::install_invalidation();
        hb::sync::install_callbacks();
    });
}
