// sync_config.hpp — what the last-status triggers know about a relation.
//
// A backend-local cache, filled on first use from hb_config and the system
// catalogs, of (a) each managed parent ("target": its last-status table,
// device and time columns, how to write to it) and (b) each relation the
// triggers fire on (the parent or one of its partitions: where the device and
// time are, which unique index dedupes, how its columns map to the
// last-status table).
//
// Lifetime: a relcache invalidation of any relation involved marks the cache
// stale; the next lookup starts a new generation. A retired generation is
// freed only at the end of the transaction, so a pointer handed out stays
// valid until then, even if a nested trigger rebuilds the cache under it.
// Single-threaded, backend-local; no locks.
#pragma once

#include "pg.hpp"

extern "C" {
#include "executor/spi.h"
#include "utils/rel.h"
}

#include "core/tid_cache.hpp"

namespace hb::sync {

// The AFTER INSERT statement trigger hb_manage puts on a managed table and
// its partitions (build_rel_info looks for it by this name).
inline constexpr const char *kInsertStatementTrigger = "hb_lifecycle_sync_insert";

enum class DeviceKind : uint8 { Int2, Int4, Int8, Text, Uuid };

// The key encoding of a device column of type `type` (domains resolve to
// their base type). False if hb_lifecycle does not support the type.
bool device_kind_of(Oid type, DeviceKind *kind);

// The statements a target's writes may need, prepared lazily and kept.
enum class SyncPlan : int {
    NewestWins = 0,  // INSERT ... ON CONFLICT DO UPDATE ... WHERE stored time is older
    Overwrite,       // the same, unconditional (the row is locked and recomputed)
    Newest,          // SELECT the device's newest heartbeat
    Remove,          // DELETE the device's row
    Count
};

struct Target {
    Oid parent = InvalidOid;    // the managed partitioned table
    Oid ls = InvalidOid;        // its last-status table
    Oid ls_pkey = InvalidOid;   // primary key of ls, on the device column
    Oid ls_owner = InvalidOid;  // role that writes ls through SPI
    DeviceKind kind = DeviceKind::Int8;
    RegProcedure ls_dev_eq = InvalidOid;  // equality of the pkey's opclass
    Oid ls_dev_collation = InvalidOid;
    Oid ls_dev_type = InvalidOid;  // type of the device column (a statement parameter)
    AttrNumber ls_dev_attno = 0;
    AttrNumber ls_ts_attno = 0;
    int ls_natts = 0;
    bool fast_path = false;      // ls can be written with the table AM directly
    char *parent_sql = nullptr;  // quoted, schema-qualified names
    char *ls_sql = nullptr;
    char *dev_sql = nullptr;  // quoted column names
    char *ts_sql = nullptr;
    char *col_list_sql = nullptr;  // "a", "b", ... : ls columns that exist in the parent
    // The same without the device column (what an update sets):
    char *set_list_sql = nullptr;         // "b", ...
    char *set_excluded_sql = nullptr;     // EXCLUDED."b", ...
    int n_cols = 0;                       // how many columns the lists name
    AttrNumber *col_ls_attnos = nullptr;  // ls attno of each listed column
    Oid *col_types = nullptr;             // and its type
    SPIPlanPtr plans[static_cast<int>(SyncPlan::Count)] = {};
    // The read path's statements (read_path.cpp), kept the same way.
    SPIPlanPtr read_plans[4] = {};
    core::TidCache *tids = nullptr;  // where each device's row was last seen
    bool retired = false;            // its generation was retired (see the file comment)
};

struct RelInfo {
    Oid relid = InvalidOid;  // the relation the trigger fires on
    Target *target = nullptr;
    AttrNumber dev_attno = 0;
    AttrNumber ts_attno = 0;
    // Unique index on (device, time) of this relation; InvalidOid when it
    // has none (a partitioned table holds no rows, so it needs none).
    Oid dedupe_index = InvalidOid;
    AttrNumber dedupe_heap_attno[2] = {0, 0};  // heap column of index key 1 and 2
    RegProcedure dedupe_eq[2] = {InvalidOid, InvalidOid};
    Oid dedupe_collation[2] = {InvalidOid, InvalidOid};
    // The relation carries hb_lifecycle_sync_insert (so a statement that
    // inserts into it always ends with hb_sync_insert()).
    bool has_insert_statement_trigger = false;
    AttrNumber *to_ls = nullptr;  // per ls attno-1: the column of this relation, or 0
    // Rows of this relation are laid out exactly like rows of the
    // last-status table (same columns, order, types): a heartbeat's tuple
    // can be written there as it is, without being deformed and re-formed.
    bool same_layout_as_ls = false;
};

// Frees the generations retired during the transaction (commit or abort).
void end_of_transaction();

// A plan prepared for a target of a retired generation: freed with it.
void free_with_retired(SPIPlanPtr plan);

// Prepares sql (SPI connected, with SPI_prepare_cursor's cursor_options)
// and keeps the plan for target t's entry (it is freed with t's
// generation); caller_cxt is made current again, which SPI_prepare leaves
// otherwise. Errors if sql does not prepare.
SPIPlanPtr prepare_kept(Target *t, const char *sql, int nargs, Oid *types, MemoryContext caller_cxt,
                        int cursor_options = 0);

// The cached description of rel. Errors with a clear message if rel carries
// hb_lifecycle triggers but is not managed, or if its shape no longer fits.
RelInfo *rel_info(Relation rel);
// The same, or NULL (no error) when rel is not managed any more, e.g. a
// detached partition that kept its statement triggers.
RelInfo *rel_info_if_managed(Relation rel);

// Raises the error a trigger would raise if managed table relid (a row of
// hb_config) no longer has the shape its registration needs; does nothing
// for a relation that is not a managed table.
void check_managed_shape(Oid relid);

// Registers the relcache callback (once, from _PG_init).
void install_invalidation();

// Encodes a device value into key bytes (see core/key_codec.hpp). For text
// and uuid the returned pointer aims into the (detoasted) datum.
struct KeyBytes {
    char int_buf[8];
    const char *data;
    uint32 len;
};
void encode_device(DeviceKind kind, Datum value, KeyBytes *out);
// Rebuilds a device Datum from key bytes (palloc'd for by-reference types).
Datum decode_device(DeviceKind kind, const char *key, uint32 len);

}  // namespace hb::sync
