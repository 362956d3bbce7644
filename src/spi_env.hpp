// spi_env.hpp — running hb_lifecycle's own SQL safely through SPI.
//
// Every statement hb_lifecycle runs on behalf of a trigger or a function runs
// with search_path = pg_catalog, pg_temp (so that no object of the caller's
// search path can stand in for an operator or function we use) and, when
// asked, as another role with SECURITY_RESTRICTED_OPERATION (the way
// PostgreSQL runs index expressions as the table owner). Both are undone by
// spi_env_end(), and by transaction or subtransaction abort if an error
// intervenes, so these are plain C-style functions with no C++ state.
#pragma once

#include "pg.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace hb {

struct SpiEnv {
    MemoryContext caller_cxt = nullptr;  // where our own allocations stay
    int guc_nest_level = 0;
    Oid saved_user = InvalidOid;
    int saved_sec_context = 0;
    bool switched_user = false;
};

// SPI_connect, safe search_path, and (if run_as is valid) SetUserIdAndSecContext.
// The caller's memory context stays current: what it pallocs survives
// spi_env_end (SPI would otherwise leave its own, shorter-lived context
// current after every call).
void spi_env_begin(SpiEnv *env, Oid run_as);
// The reverse of spi_env_begin, then SPI_finish.
void spi_env_end(SpiEnv *env);

// SPI_execute / SPI_execute_with_args (never read-only:
// each statement takes a new snapshot) that leave the caller's context
// current. Error unless the result code is `expected`. Results stay in
// SPI_tuptable / SPI_processed until the next call.
void spi_run(SpiEnv *env, const char *sql, int expected, long count = 0);
void spi_run_args(SpiEnv *env, const char *sql, int nargs, Oid *types, Datum *values,
                  const char *nulls, int expected, long count = 0);

// The same for a prepared (kept) plan without parameters; what names it in
// errors is `what`.
void spi_run_plan(SpiEnv *env, SPIPlanPtr plan, const char *what, int expected);

// The schema hb_lifecycle was installed in (its OID, or its name quoted for
// SQL, palloc'd). Errors if the extension is not installed.
Oid extension_schema_oid();
char *extension_schema_quoted();

// schema.name of relation relid, quoted for SQL (palloc'd).
char *qualified_relation_name(Oid relid);

// The owner of relation relid, or InvalidOid when there is no such relation.
Oid relation_owner(Oid relid);

// An error unless the current role owns relation relid (PostgreSQL's own
// message), or when there is no such relation; takes no lock.
void require_owner_of(Oid relid);

// The role that owns hb_config: the one that may write it.
Oid config_table_owner();

}  // namespace hb
