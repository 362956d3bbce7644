// partitions.cpp — the C parts of the partition lifecycle.
//
// The lifecycle itself (hb_create_ahead, hb_drop_partition,
// hb_run_maintenance, ...) is PL/pgSQL under src/sql: it is DDL
// orchestration, run a few times a day. What lives here is what SQL cannot
// do well or safely:
//
//  * hb_partition_slot(): the name and UTC bounds of the partition holding
//    an instant (core/partition_scheme, pure C++, unit-tested);
//  * hb_partition_bounds(): a partition's exact bounds, read from the
//    catalog's node tree rather than parsed from text;
//  * hb_take_catchall_rows(): moves or quarantines rows of a catch-all
//    partition as the table's owner, in a security-restricted operation (the
//    way PostgreSQL runs VACUUM and index builds), so that no trigger or
//    constraint of the table ever runs with the rights of whoever runs
//    maintenance (often a superuser, through pg_cron);
//  * hb_vacuum_later(): VACUUM cannot run inside a function or transaction,
//    so maintenance hands the hot partitions (those the caller owns) to a
//    short-lived background worker that runs VACUUM (ANALYZE) at top level,
//    once per relation, each in its own transactions; VACUUM runs each
//    table's index functions as the table's owner, as it always does.
//
// Locks: none of our own; the statements run take what PostgreSQL's DDL
// and DML take. Threads: none.
#include "pg.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/vacuum.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include "core/partition_scheme.hpp"
#include "guard.hpp"
#include "last_status_trigger.hpp"
#include "shmem.hpp"
#include "spi_env.hpp"

#include <stdexcept>
#include <string>

namespace hb {
namespace {

core::Granularity granularity_arg(text *t) {
    char *s = text_to_cstring(t);
    std::optional<core::Granularity> g = core::parse_granularity(s);
    if (!g)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("granularity must be 'day' or 'month', not '%s'", s)));
    return *g;
}

// "a", "b", ... : the parent's stored columns (not dropped, not generated),
// the list both sides of a move name explicitly so that partitions whose
// columns sit in another physical order still line up.
char *stored_columns(Oid parent) {
    Relation rel = relation_open(parent, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    StringInfoData cols;
    initStringInfo(&cols);
    for (int i = 0; i < desc->natts; ++i) {
        Form_pg_attribute a = TupleDescAttr(desc, i);
        if (a->attisdropped || a->attgenerated)
            continue;
        if (cols.len > 0)
            appendStringInfoString(&cols, ", ");
        appendStringInfoString(&cols, quote_identifier(NameStr(a->attname)));
    }
    relation_close(rel, AccessShareLock);
    return cols.data;
}

// bgw_extra of a vacuum worker: who it runs as, and what it vacuums.
struct VacuumOrder {
    Oid role;
    int32 n;
    Oid rels[(BGW_EXTRALEN - 2 * sizeof(int32)) / sizeof(Oid)];
};
static_assert(sizeof(VacuumOrder) <= BGW_EXTRALEN, "a vacuum order fits in bgw_extra");
constexpr int kRelsPerWorker = lengthof(VacuumOrder{}.rels);

bool launch_vacuum_worker(const VacuumOrder &order) {
    BackgroundWorker w;
    memset(&w, 0, sizeof w);
    w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w.bgw_start_time = BgWorkerStart_RecoveryFinished;
    w.bgw_restart_time = BGW_NEVER_RESTART;
    strlcpy(w.bgw_library_name, "hb_lifecycle", sizeof w.bgw_library_name);
    strlcpy(w.bgw_function_name, "hb_vacuum_worker_main", sizeof w.bgw_function_name);
    strlcpy(w.bgw_name, "hb_lifecycle vacuum", sizeof w.bgw_name);
    strlcpy(w.bgw_type, "hb_lifecycle vacuum", sizeof w.bgw_type);
    w.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
    memcpy(w.bgw_extra, &order, sizeof order);
    w.bgw_notify_pid = 0;
    BackgroundWorkerHandle *handle = nullptr;
    return RegisterDynamicBackgroundWorker(&w, &handle);
}

// VACUUM (ANALYZE) of one relation, at top level, in the worker. The
// statement outlives the transaction it starts in (VACUUM commits that one,
// runs its own, and keeps using the relation list): it is built in
// PortalContext, as a client's statement would be.
void vacuum_one(Oid relid) {
    StartTransactionCommand();
    MemoryContextSwitchTo(PortalContext);
    char *nsp = get_namespace_name(get_rel_namespace(relid));
    char *rel = get_rel_name(relid);
    if (nsp == nullptr || rel == nullptr) {  // dropped since maintenance chose it
        CommitTransactionCommand();
        return;
    }
    char *activity = psprintf("VACUUM (ANALYZE) %s", quote_qualified_identifier(nsp, rel));
    pgstat_report_activity(STATE_RUNNING, activity);
    VacuumStmt *stmt = makeNode(VacuumStmt);
    stmt->options = list_make1(makeDefElem(pstrdup("analyze"), nullptr, -1));
    stmt->rels = list_make1(makeVacuumRelation(makeRangeVar(nsp, rel, -1), relid, NIL));
    stmt->is_vacuumcmd = true;
    ParseState *pstate = make_parsestate(nullptr);
    pstate->p_sourcetext = activity;
    ExecVacuum(pstate, stmt, true);
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
}

}  // namespace
}  // namespace hb

extern "C" {
PG_FUNCTION_INFO_V1(hb_partition_slot);
PG_FUNCTION_INFO_V1(hb_partition_bounds);
PG_FUNCTION_INFO_V1(hb_take_catchall_rows);
PG_FUNCTION_INFO_V1(hb_vacuum_later);
PG_FUNCTION_INFO_V1(hb_count_event);
PGDLLEXPORT void hb_vacuum_worker_main(Datum arg);
}

using namespace hb;

// hb_partition_slot(granularity text, prefix text, at timestamptz,
//   OUT partition_name text, OUT range_start timestamptz, OUT range_end timestamptz)
extern "C" Datum hb_partition_slot(PG_FUNCTION_ARGS) {
    return guarded([&]() -> Datum {
        core::Granularity g = granularity_arg(PG_GETARG_TEXT_PP(0));
        char *prefix = text_to_cstring(PG_GETARG_TEXT_PP(1));
        TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
        std::optional<core::Slot> slot;
        if (!TIMESTAMP_NOT_FINITE(at))
            slot = core::slot_for(g, at);
        if (!slot)
            ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
                            errmsg("no partition can hold %s", timestamptz_to_str(at)),
                            errdetail("Partitions cover the years %d to %d.", core::kMinYear,
                                      core::kMaxYear)));
        char name[NAMEDATALEN];
        {
            std::string s = core::slot_name(g, prefix, *slot);
            if (s.size() >= NAMEDATALEN)
                throw std::length_error("partition name too long for prefix");
            strlcpy(name, s.c_str(), sizeof name);
        }
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "hb_partition_slot: return type must be a row type");
        Datum values[3] = {CStringGetTextDatum(name), TimestampTzGetDatum(slot->start),
                           TimestampTzGetDatum(slot->end)};
        bool nulls[3] = {false, false, false};
        return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
    });
}

// hb_partition_bounds(partition regclass, OUT range_start timestamptz,
//   OUT range_end timestamptz, OUT is_default boolean): NULL bounds stand for
// MINVALUE / MAXVALUE; no row for a relation that is not a partition.
extern "C" Datum hb_partition_bounds(PG_FUNCTION_ARGS) {
    return guarded([&]() -> Datum {
        Oid relid = PG_GETARG_OID(0);
        HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
        if (!HeapTupleIsValid(tup))
            PG_RETURN_NULL();
        bool isnull = true;
        Datum bound = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
        bool is_partition = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relispartition;
        char *bound_text = (!isnull && is_partition) ? TextDatumGetCString(bound) : nullptr;
        ReleaseSysCache(tup);
        if (bound_text == nullptr)
            PG_RETURN_NULL();
        auto *spec = static_cast<PartitionBoundSpec *>(stringToNode(bound_text));
        Datum values[3] = {0, 0, BoolGetDatum(spec->is_default)};
        bool nulls[3] = {true, true, false};
        if (!spec->is_default) {
            if (spec->strategy != PARTITION_STRATEGY_RANGE || list_length(spec->lowerdatums) != 1 ||
                list_length(spec->upperdatums) != 1)
                PG_RETURN_NULL();
            List *sides[2] = {spec->lowerdatums, spec->upperdatums};
            for (int i = 0; i < 2; ++i) {
                auto *d = static_cast<PartitionRangeDatum *>(linitial(sides[i]));
                if (d->kind != PARTITION_RANGE_DATUM_VALUE)
                    continue;
                auto *c = castNode(Const, d->value);
                if (c->consttype != TIMESTAMPTZOID || c->constisnull)
                    PG_RETURN_NULL();
                values[i] = c->constvalue;
                nulls[i] = false;
            }
        }
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "hb_partition_bounds: return type must be a row type");
        return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
    });
}

// hb_take_catchall_rows(catchall regclass, parent regclass, time_column name,
//   lo timestamptz, hi timestamptz, target regclass, reason text) RETURNS bigint
//
// Deletes the rows of catchall with lo <= time < hi (a NULL bound is open)
// and inserts them into target, a table about to be attached as the
// partition that holds them; or, with target NULL, into hb_quarantine with
// reason. Runs as the catch-all's owner (the caller must own it).
extern "C" Datum hb_take_catchall_rows(PG_FUNCTION_ARGS) {
    return guarded([&]() -> Datum {
        for (int i : {0, 1, 2})
            if (PG_ARGISNULL(i))
                ereport(ERROR,
                        (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                         errmsg("hb_take_catchall_rows: argument %d must not be NULL", i + 1)));
        Oid catchall = PG_GETARG_OID(0);
        Oid parent = PG_GETARG_OID(1);
        const char *tscol = quote_identifier(NameStr(*PG_GETARG_NAME(2)));
        bool quarantine = PG_ARGISNULL(5);
        if (quarantine && PG_ARGISNULL(6))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("hb_take_catchall_rows: a quarantine needs a reason")));
        require_owner_of(catchall);
        if (!quarantine)
            require_owner_of(PG_GETARG_OID(5));
        Oid owner = relation_owner(catchall);  // exists: require_owner_of checked it
        // An empty catch-all (the usual case) has no pages: nothing to take,
        // and no statement to plan.
        {
            Relation rel = relation_open(catchall, AccessShareLock);
            BlockNumber pages = RelationGetNumberOfBlocks(rel);
            relation_close(rel, AccessShareLock);
            if (pages == 0)
                PG_RETURN_INT64(0);
        }
        const char *cols = stored_columns(parent);
        StringInfoData sql;
        initStringInfo(&sql);
        appendStringInfo(&sql, "WITH hb__moved AS (DELETE FROM ONLY %s WHERE true",
                         qualified_relation_name(catchall));
        if (!PG_ARGISNULL(3))
            appendStringInfo(&sql, " AND %s OPERATOR(pg_catalog.>=) $1", tscol);
        if (!PG_ARGISNULL(4))
            appendStringInfo(&sql, " AND %s OPERATOR(pg_catalog.<) $2", tscol);
        if (quarantine)
            appendStringInfo(
                &sql,
                " RETURNING *) INSERT INTO %s.hb_quarantine (parent, reason, "
                "heartbeat) SELECT $3, $4, pg_catalog.to_jsonb(hb__moved.*) FROM hb__moved",
                extension_schema_quoted());
        else
            appendStringInfo(&sql, " RETURNING %s) INSERT INTO %s (%s) SELECT %s FROM hb__moved",
                             cols, qualified_relation_name(PG_GETARG_OID(5)), cols, cols);
        Oid types[4] = {TIMESTAMPTZOID, TIMESTAMPTZOID, REGCLASSOID, TEXTOID};
        Datum args[4] = {PG_ARGISNULL(3) ? 0 : PG_GETARG_DATUM(3),
                         PG_ARGISNULL(4) ? 0 : PG_GETARG_DATUM(4), ObjectIdGetDatum(parent),
                         PG_ARGISNULL(6) ? 0 : PG_GETARG_DATUM(6)};
        char nulls[4] = {PG_ARGISNULL(3) ? 'n' : ' ', PG_ARGISNULL(4) ? 'n' : ' ', ' ',
                         PG_ARGISNULL(6) ? 'n' : ' '};
        SpiEnv env;
        spi_env_begin(&env, owner);
        // A move changes no device's newest heartbeat (see set_moving_rows),
        // and rows quarantined for being old leave the last-status table as
        // a dropped partition does. Rows quarantined for being ahead of now
        // (no upper bound) are recomputed: a wrong clock must not pin a
        // device's status in the future.
        bool recompute = quarantine && PG_ARGISNULL(4);
        if (!recompute)
            sync::set_moving_rows(catchall);
        PG_TRY();
        { spi_run_args(&env, sql.data, 4, types, args, nulls, SPI_OK_INSERT); }
        PG_FINALLY();
        { sync::set_moving_rows(InvalidOid); }
        PG_END_TRY();
        uint64 n = SPI_processed;
        spi_env_end(&env);
        PG_RETURN_INT64(static_cast<int64>(n));
    });
}

// hb_vacuum_later(relations regclass[]) RETURNS integer: how many of the
// relations a background worker will VACUUM (ANALYZE) once this
// transaction's locks allow; 0 when no worker slot is free.
extern "C" Datum hb_vacuum_later(PG_FUNCTION_ARGS) {
    return guarded([&]() -> Datum {
        ArrayType *arr = PG_GETARG_ARRAYTYPE_P(0);
        Datum *elems;
        bool *nulls;
        int n;
        deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
        int queued = 0;
        VacuumOrder order;
        memset(&order, 0, sizeof order);
        // The worker connects as the bootstrap superuser (a table owner may
        // be a role that cannot log in, which a worker cannot connect as on
        // PostgreSQL 15) and VACUUM runs each table's code as its owner:
        // only the caller's own tables are handed over.
        order.role = BOOTSTRAP_SUPERUSERID;
        for (int i = 0; i <= n; ++i) {
            if (i < n && !nulls[i] && pg_class_ownercheck(DatumGetObjectId(elems[i]), GetUserId()))
                order.rels[order.n++] = DatumGetObjectId(elems[i]);
            if (order.n > 0 && (order.n == kRelsPerWorker || i == n)) {
                if (launch_vacuum_worker(order))
                    queued += order.n;
                order.n = 0;
            }
        }
        PG_RETURN_INT32(queued);
    });
}

// hb_count_event(event text) RETURNS void: counts a lifecycle event in
// shared memory (a no-op when the library was not preloaded).
extern "C" Datum hb_count_event(PG_FUNCTION_ARGS) {
    return guarded([&]() -> Datum {
        shmem::count_event(text_to_cstring(PG_GETARG_TEXT_PP(0)));
        PG_RETURN_VOID();
    });
}

// The vacuum worker: connects (as the bootstrap superuser) and vacuums each
// relation of its order; an error on one is logged and the next goes on.
// SIGTERM ends it (die() is the default handler).
extern "C" void hb_vacuum_worker_main(Datum arg) {
    VacuumOrder order;
    memcpy(&order, MyBgworkerEntry->bgw_extra, sizeof order);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), order.role, 0);
    // VACUUM keeps its working memory under PortalContext, which only a
    // backend running a statement (or autovacuum) has.
    MemoryContext cxt =
        AllocSetContextCreate(TopMemoryContext, "hb_lifecycle vacuum", ALLOCSET_DEFAULT_SIZES);
    PortalContext =
        AllocSetContextCreate(cxt, "hb_lifecycle vacuum portal", ALLOCSET_DEFAULT_SIZES);
    for (int i = 0; i < order.n && i < kRelsPerWorker; ++i) {
        MemoryContextSwitchTo(cxt);
        PG_TRY();
        { vacuum_one(order.rels[i]); }
        PG_CATCH();
        {
            HOLD_INTERRUPTS();
            MemoryContextSwitchTo(cxt);
            EmitErrorReport();
            AbortOutOfAnyTransaction();
            FlushErrorState();
            RESUME_INTERRUPTS();
        }
        PG_END_TRY();
        MemoryContextResetAndDeleteChildren(PortalContext);
    }
    proc_exit(0);
}
