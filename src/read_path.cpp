// read_path.cpp — the guarded read path: hb_device_status(),
// hb_fleet_status() and hb_compare_read_paths(), and the check procedures
// that commit use (_hb_require_nonatomic).
//
// A read goes to the last-status table (one primary-key probe, or one scan
// of one row per device) when hb_lifecycle.read_from_last_status is on and
// the table's backfill is complete (hb_config.backfill_done_at), and to the
// legacy query on the heartbeats otherwise (the device's newest heartbeat,
// ORDER BY time DESC LIMIT 1; the whole fleet, DISTINCT ON), with a NOTICE
// once per session that says why. Both return the same rows: (device_id
// text, ts timestamptz, heartbeat json), the heartbeat being the columns
// the two tables share, as a JSON object in column order (json, not jsonb:
// row_to_json costs half of to_jsonb, and a whole fleet is 20,000 of them).
//
// Everything runs as the caller, read-only, through plans kept with the
// table's cache entry (sync_config.hpp), so the reader needs SELECT on the
// table it reads and nothing else. C-style code: errors longjmp through it.
#include "pg.hpp"

extern "C" {
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/instrument.h"
#include "executor/spi.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

#include "guard.hpp"
#include "guc.hpp"
#include "spi_env.hpp"
#include "sync_config.hpp"

#include <cmath>

namespace hb::read_path {
namespace {

using sync::Target;

enum ReadPlan : int { kDeviceFast = 0, kDeviceLegacy, kFleetFast, kFleetLegacy };
static_assert(kFleetLegacy < static_cast<int>(lengthof(Target{}.read_plans)), "a slot per plan");

// The plan that finds a managed table's row of hb_config (parent, or the
// only managed table), kept for the extension's schema it names.
SPIPlanPtr config_plan = nullptr;
Oid config_plan_schema = InvalidOid;

// What the reader was told already this session (once per reason).
bool told_switch_off = false;
List *told_not_backfilled = NIL;  // parents (Oid), in TopMemoryContext

struct Resolved {
    Oid parent;
    bool backfilled;
    Target *target;  // its cache entry
};

// The cache entry of a managed table.
Target *target_of(Oid parent) {
    Relation rel = relation_open(parent, AccessShareLock);
    sync::RelInfo *ri = sync::rel_info(rel);
    relation_close(rel, NoLock);
    return ri->target;
}

// The managed table to read: the one argument parent_arg names, or the
// only one there is. Reads hb_config (readable by everyone) through a kept
// plan.
Resolved resolve(FunctionCallInfo fcinfo, int parent_arg, const char *fn) {
    bool parent_given = !PG_ARGISNULL(parent_arg);
    Oid parent = parent_given ? PG_GETARG_OID(parent_arg) : InvalidOid;
    Oid schema = extension_schema_oid();
    if (config_plan == nullptr || config_plan_schema != schema) {
        if (config_plan != nullptr)
            SPI_freeplan(config_plan);
        config_plan = nullptr;
        char *sql = psprintf(
            "SELECT parent::pg_catalog.oid, backfill_done_at IS NOT NULL FROM %s.hb_config "
            "WHERE $1 IS NULL OR parent OPERATOR(pg_catalog.=) $1 ORDER BY parent LIMIT 2",
            extension_schema_quoted());
        Oid types[1] = {REGCLASSOID};
        SPIPlanPtr plan = SPI_prepare(sql, 1, types);
        if (plan == nullptr || SPI_keepplan(plan) != 0)
            elog(ERROR, "hb_lifecycle: preparing the read path's configuration query failed");
        config_plan = plan;
        config_plan_schema = schema;
    }
    Datum values[1] = {ObjectIdGetDatum(parent)};
    char nulls[1] = {parent_given ? ' ' : 'n'};
    if (SPI_execute_plan(config_plan, values, nulls, true, 2) != SPI_OK_SELECT)
        elog(ERROR, "hb_lifecycle: reading hb_config failed");
    if (SPI_processed == 0) {
        if (parent_given)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                            errmsg("%s: table %s is not managed by hb_lifecycle", fn,
                                   qualified_relation_name(parent)),
                            errhint("SELECT parent FROM hb_config lists the managed tables.")));
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("%s: no table is managed by hb_lifecycle in this database", fn),
                        errhint("Run SELECT hb_manage('heartbeats') first.")));
    }
    if (SPI_processed > 1)
        ereport(ERROR,
                (errcode(ERRCODE_AMBIGUOUS_PARAMETER),
                 errmsg("%s: several tables are managed by hb_lifecycle; name the one to read", fn),
                 errhint("Pass the table, for example %s(..., parent => 'heartbeats').", fn)));
    bool isnull = false;
    Resolved r;
    r.parent =
        DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    r.backfilled =
        DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
    r.target = target_of(r.parent);
    return r;
}

// Whether to read the last-status table; if not, says why (once per
// session and reason).
bool use_last_status(const Resolved &r, const char *fn) {
    const Target *t = r.target;
    if (!guc::read_from_last_status) {
        if (!told_switch_off)
            ereport(NOTICE,
                    (errmsg("%s reads %s with the legacy query: hb_lifecycle.read_from_last_status "
                            "is off",
                            fn, t->parent_sql),
                     errhint("SET hb_lifecycle.read_from_last_status = on reads %s instead. This "
                             "notice is given once per session.",
                             t->ls_sql)));
        told_switch_off = true;
        return false;
    }
    if (!r.backfilled) {
        if (!list_member_oid(told_not_backfilled, r.parent)) {
            ereport(NOTICE,
                    (errmsg("%s reads %s with the legacy query: the backfill of %s is not complete",
                            fn, t->parent_sql, t->ls_sql),
                     errdetail("%s holds the devices heard from since the table was managed, not "
                               "yet those of its older history.",
                               t->ls_sql),
                     errhint("CALL hb_backfill_last_status() fills it; reads switch once it "
                             "completes. This notice is given once per session.")));
            MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
            told_not_backfilled = lappend_oid(told_not_backfilled, r.parent);
            MemoryContextSwitchTo(old);
        }
        return false;
    }
    return true;
}

// A read statement of table t, prepared once and kept with its entry:
// (device_id text, ts timestamptz, heartbeat json) from either table. The
// legacy reads may run in parallel, as they would outside the function.
SPIPlanPtr plan_for(Target *t, ReadPlan which, MemoryContext keep_cxt) {
    SPIPlanPtr &plan = t->read_plans[which];
    if (plan != nullptr)
        return plan;
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql, "SELECT r.%s::pg_catalog.text, r.%s, pg_catalog.row_to_json(r) FROM (",
                     t->dev_sql, t->ts_sql);
    switch (which) {
        case kDeviceFast:
            appendStringInfo(&sql, "SELECT %s FROM %s WHERE %s OPERATOR(pg_catalog.=) $1",
                             t->col_list_sql, t->ls_sql, t->dev_sql);
            break;
        case kDeviceLegacy:
            appendStringInfo(&sql,
                             "SELECT %s FROM %s WHERE %s OPERATOR(pg_catalog.=) $1 AND %s IS NOT "
                             "NULL ORDER BY %s DESC LIMIT 1",
                             t->col_list_sql, t->parent_sql, t->dev_sql, t->ts_sql, t->ts_sql);
            break;
        case kFleetFast:
            appendStringInfo(&sql, "SELECT %s FROM %s", t->col_list_sql, t->ls_sql);
            break;
        case kFleetLegacy:
            // (Rows stored before the table was managed may have a NULL
            // device or time; the last-status table has neither.)
            appendStringInfo(
                &sql,
                "SELECT DISTINCT ON (%s) %s FROM %s WHERE %s IS NOT NULL AND %s IS NOT "
                "NULL ORDER BY %s, %s DESC",
                t->dev_sql, t->col_list_sql, t->parent_sql, t->dev_sql, t->ts_sql, t->dev_sql,
                t->ts_sql);
            break;
    }
    appendStringInfoString(&sql, ") r");
    bool by_device = which == kDeviceFast || which == kDeviceLegacy;
    plan = sync::prepare_kept(t, sql.data, by_device ? 1 : 0, &t->ls_dev_type, keep_cxt,
                              CURSOR_OPT_PARALLEL_OK);
    return plan;
}

// The device argument (of any type) as a value of the device column's type.
Datum device_value(FunctionCallInfo fcinfo, int argno, Oid column_type) {
    Oid arg_type = get_fn_expr_argtype(fcinfo->flinfo, argno);
    Datum arg = PG_GETARG_DATUM(argno);
    if (arg_type == column_type)
        return arg;
    if (!OidIsValid(arg_type) || arg_type == UNKNOWNOID)
        arg_type = TEXTOID;
    Oid out_fn = InvalidOid, in_fn = InvalidOid, io_param = InvalidOid;
    bool varlena = false;
    getTypeOutputInfo(arg_type, &out_fn, &varlena);
    getTypeInputInfo(column_type, &in_fn, &io_param);
    char *text = OidOutputFunctionCall(out_fn, arg);
    return OidInputFunctionCall(in_fn, text, io_param, -1);
}

// Runs plan into the SRF's tuplestore (no copy in between).
void run_into(FunctionCallInfo fcinfo, SPIPlanPtr plan, Datum *args, const char *nulls) {
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    DestReceiver *dest = CreateDestReceiver(DestTuplestore);
    SetTuplestoreDestReceiverParams(dest, rsinfo->setResult,
                                    rsinfo->econtext->ecxt_per_query_memory, true, rsinfo->setDesc,
                                    "hb_lifecycle: the read path's row does not match its result");
    ParamListInfo params = nullptr;
    int nargs = SPI_getargcount(plan);
    if (nargs > 0) {
        params = makeParamList(nargs);
        for (int i = 0; i < nargs; i++) {
            params->params[i].value = args[i];
            params->params[i].isnull = nulls != nullptr && nulls[i] == 'n';
            params->params[i].pflags = PARAM_FLAG_CONST;
            params->params[i].ptype = SPI_getargtypeid(plan, i);
        }
    }
    SPIExecuteOptions options;
    memset(&options, 0, sizeof options);
    options.params = params;
    options.read_only = true;
    options.dest = dest;
    if (SPI_execute_plan_extended(plan, &options) != SPI_OK_SELECT)
        elog(ERROR, "hb_lifecycle: the read path's query failed");
    dest->rDestroy(dest);
}

// The body of hb_device_status and hb_fleet_status: the table named by
// argument parent_arg (or the only one), read through plan fast or legacy
// into the SRF's tuplestore; a device argument, if any, is argument 0.
void read_into(FunctionCallInfo fcinfo, int parent_arg, const char *fn, ReadPlan fast,
               ReadPlan legacy) {
    SpiEnv env;
    spi_env_begin(&env, InvalidOid);
    Resolved r = resolve(fcinfo, parent_arg, fn);
    Target *t = r.target;
    ReadPlan which = use_last_status(r, fn) ? fast : legacy;
    Datum device = parent_arg > 0 ? device_value(fcinfo, 0, t->ls_dev_type) : (Datum)0;
    run_into(fcinfo, plan_for(t, which, env.caller_cxt), &device, nullptr);
    spi_env_end(&env);
}

// One read of one device through plan, timed, with the shared buffers it
// touched; *found and *heartbeat (copied into cxt) tell what it returned.
struct Timed {
    double ms;
    int64 buffers;
};
Timed read_one(SPIPlanPtr plan, Datum device, MemoryContext cxt, bool *found, Datum *heartbeat) {
    BufferUsage before = pgBufferUsage;
    instr_time start, end;
    INSTR_TIME_SET_CURRENT(start);
    if (SPI_execute_plan(plan, &device, nullptr, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "hb_lifecycle: the read path's query failed");
    INSTR_TIME_SET_CURRENT(end);
    INSTR_TIME_SUBTRACT(end, start);
    Timed t;
    t.ms = INSTR_TIME_GET_MILLISEC(end);
    t.buffers = (pgBufferUsage.shared_blks_hit - before.shared_blks_hit) +
                (pgBufferUsage.shared_blks_read - before.shared_blks_read) +
                (pgBufferUsage.local_blks_hit - before.local_blks_hit) +
                (pgBufferUsage.local_blks_read - before.local_blks_read);
    *found = SPI_processed > 0;
    *heartbeat = (Datum)0;
    if (*found) {
        bool isnull = false;
        Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
        MemoryContext old = MemoryContextSwitchTo(cxt);
        *heartbeat = isnull ? (Datum)0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
        MemoryContextSwitchTo(old);
    }
    SPI_freetuptable(SPI_tuptable);
    return t;
}

int compare_doubles(const void *a, const void *b) {
    double x = *static_cast<const double *>(a), y = *static_cast<const double *>(b);
    return x < y ? -1 : x > y ? 1 : 0;
}

// The q-th percentile (nearest rank) of n sorted values.
double percentile(const double *sorted, int n, double q) {
    if (n == 0)
        return 0;
    int rank = static_cast<int>(ceil(q * n));
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

}  // namespace
}  // namespace hb::read_path

using namespace hb::read_path;

extern "C" {
PG_FUNCTION_INFO_V1(hb_device_status);
PG_FUNCTION_INFO_V1(hb_fleet_status);
PG_FUNCTION_INFO_V1(hb_compare_read_paths);
PG_FUNCTION_INFO_V1(hb_require_nonatomic);
}

// hb_device_status(device anyelement, parent regclass DEFAULT NULL)
// RETURNS TABLE (device_id text, ts timestamptz, heartbeat json): the
// device's newest heartbeat (no row for a device never heard from). Also
// hb_device_status(device text, parent) for a quoted literal.
extern "C" Datum hb_device_status(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        InitMaterializedSRF(fcinfo, 0);
        if (!PG_ARGISNULL(0))
            read_into(fcinfo, 1, "hb_device_status", kDeviceFast, kDeviceLegacy);
        return (Datum)0;
    });
}

// hb_fleet_status(parent regclass DEFAULT NULL) RETURNS TABLE (device_id
// text, ts timestamptz, heartbeat json): every device's newest heartbeat,
// in no particular order.
extern "C" Datum hb_fleet_status(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        InitMaterializedSRF(fcinfo, 0);
        read_into(fcinfo, 0, "hb_fleet_status", kFleetFast, kFleetLegacy);
        return (Datum)0;
    });
}

// hb_compare_read_paths(sample integer DEFAULT 100, parent regclass
// DEFAULT NULL) RETURNS TABLE (path text, reads integer, p50_ms float8,
// p95_ms float8, p99_ms float8, max_ms float8, buffers_per_read float8,
// mismatches integer): reads each of `sample` devices of the last-status
// table (chosen at random) through both paths, alternating which goes
// first, and compares what they return. mismatches (the same on both rows)
// counts the devices on which they disagree; a NOTICE names up to ten.
extern "C" Datum hb_compare_read_paths(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        int sample = PG_ARGISNULL(0) ? 100 : PG_GETARG_INT32(0);
        if (sample < 1 || sample > 100000)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("hb_compare_read_paths: sample must be between 1 and 100000"),
                            errhint("It is how many devices are read through both paths.")));
        ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
        InitMaterializedSRF(fcinfo, 0);
        hb::SpiEnv env;
        hb::spi_env_begin(&env, InvalidOid);
        Target *t = resolve(fcinfo, 1, "hb_compare_read_paths").target;
        MemoryContext cxt = env.caller_cxt;

        // The sample.
        char *sql = psprintf("SELECT %s FROM %s ORDER BY pg_catalog.random() LIMIT $1", t->dev_sql,
                             t->ls_sql);
        Oid types[1] = {INT4OID};
        Datum values[1] = {Int32GetDatum(sample)};
        if (SPI_execute_with_args(sql, 1, types, values, nullptr, true, 0) != SPI_OK_SELECT)
            elog(ERROR, "hb_lifecycle: sampling devices failed");
        int n = static_cast<int>(SPI_processed);
        int16 typlen = 0;
        bool typbyval = false;
        get_typlenbyval(t->ls_dev_type, &typlen, &typbyval);
        Datum *devices = static_cast<Datum *>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
        for (int i = 0; i < n; i++) {
            bool isnull = false;
            Datum d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
            MemoryContext old = MemoryContextSwitchTo(cxt);
            devices[i] = datumCopy(d, typbyval, typlen);
            MemoryContextSwitchTo(old);
        }
        SPI_freetuptable(SPI_tuptable);

        SPIPlanPtr plans[2] = {plan_for(t, kDeviceFast, cxt), plan_for(t, kDeviceLegacy, cxt)};
        double *ms[2] = {static_cast<double *>(palloc0(sizeof(double) * (n > 0 ? n : 1))),
                         static_cast<double *>(palloc0(sizeof(double) * (n > 0 ? n : 1)))};
        int64 buffers[2] = {0, 0};
        int mismatches = 0;
        StringInfoData which;
        initStringInfo(&which);
        MemoryContext per_device =
            AllocSetContextCreate(cxt, "hb_compare_read_paths", ALLOCSET_SMALL_SIZES);
        for (int i = 0; i < n; i++) {
            bool found[2] = {false, false};
            Datum heartbeat[2] = {(Datum)0, (Datum)0};
            for (int k = 0; k < 2; k++) {
                int p = (i % 2 == 0) ? k : 1 - k;  // alternate which path goes first
                Timed tm = read_one(plans[p], devices[i], per_device, &found[p], &heartbeat[p]);
                ms[p][i] = tm.ms;
                buffers[p] += tm.buffers;
            }
            bool agree = found[0] == found[1];
            if (agree && found[0])
                agree = heartbeat[0] != (Datum)0 && heartbeat[1] != (Datum)0 &&
                        datumIsEqual(heartbeat[0], heartbeat[1], false, -1);
            if (!agree) {
                if (mismatches < 10) {
                    Oid out_fn = InvalidOid;
                    bool varlena = false;
                    getTypeOutputInfo(t->ls_dev_type, &out_fn, &varlena);
                    appendStringInfo(&which, "%s%s", mismatches ? ", " : "",
                                     OidOutputFunctionCall(out_fn, devices[i]));
                }
                mismatches++;
            }
            MemoryContextReset(per_device);
        }
        MemoryContextDelete(per_device);
        if (mismatches > 0)
            ereport(NOTICE,
                    (errmsg("hb_compare_read_paths: the two paths disagree on %d of %d devices of "
                            "%s",
                            mismatches, n, t->parent_sql),
                     errdetail("Devices: %s%s.", which.data, mismatches > 10 ? ", ..." : ""),
                     errhint("SELECT hb_reconcile() repairs what the recent heartbeats show; a "
                             "device whose heartbeats were all dropped is only in %s.",
                             t->ls_sql)));

        const char *names[2] = {"last_status", "legacy"};
        for (int p = 0; p < 2; p++) {
            double total_max = 0;
            qsort(ms[p], n, sizeof(double), compare_doubles);
            if (n > 0)
                total_max = ms[p][n - 1];
            Datum row[8] = {CStringGetTextDatum(names[p]),
                            Int32GetDatum(n),
                            Float8GetDatum(percentile(ms[p], n, 0.50)),
                            Float8GetDatum(percentile(ms[p], n, 0.95)),
                            Float8GetDatum(percentile(ms[p], n, 0.99)),
                            Float8GetDatum(total_max),
                            Float8GetDatum(n > 0 ? double(buffers[p]) / n : 0.0),
                            Int32GetDatum(mismatches)};
            bool row_nulls[8] = {false, false, false, false, false, false, false, false};
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, row_nulls);
        }
        hb::spi_env_end(&env);
        return (Datum)0;
    });
}

// _hb_require_nonatomic(what text): an error unless the procedure that
// calls it may commit, i.e. it was CALLed on its own (not inside BEGIN ...
// COMMIT, a function, or a query string of several statements).
extern "C" Datum hb_require_nonatomic(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        if (!SPI_inside_nonatomic_context()) {
            char *what = text_to_cstring(PG_GETARG_TEXT_PP(0));
            ereport(ERROR,
                    (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                     errmsg("%s cannot run inside a transaction block", what),
                     errdetail("It commits after every batch, so that it never holds the rows "
                               "it writes for long."),
                     errhint("CALL %s(...) on its own: not inside BEGIN ... COMMIT, a function, "
                             "or a query string of several statements.",
                             what)));
        }
        return (Datum)0;
    });
}
