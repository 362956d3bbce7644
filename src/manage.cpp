// manage.cpp — hb_manage(), hb_unmanage() and the DDL event trigger.
//
// hb_manage validates a heartbeats table, then (as the calling role, so
// that every object it creates belongs to the table's owner and no
// privilege is borrowed) creates the unique (device, time) index if needed,
// the last-status table and the triggers, and finally records the table in
// hb_config as the extension's owner: hb_config is writable by no one else,
// which is what stops a role from registering a table it does not own.
//
// Locks: ShareRowExclusiveLock on the parent for the whole call (what CREATE
// TRIGGER needs anyway, taken first so it is never upgraded); it blocks the
// application's inserts until the call commits. Everything runs in the
// caller's transaction: an error leaves nothing behind. C-style code.
#include "pg.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "partitioning/partdefs.h"
#include "tcop/deparse_utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include "guard.hpp"
#include "spi_env.hpp"
#include "sync_config.hpp"

namespace hb {
namespace {

// The triggers hb_manage creates: CREATE TRIGGER <name> <when> ON <table>
// <level> EXECUTE FUNCTION <extension schema>.<function>().
struct TriggerSpec {
    const char *name;
    const char *when;
    const char *level;
    const char *function;
};

// Row triggers, on the parent (PostgreSQL clones them to every partition).
// The BEFORE triggers sort last so that they check the row other BEFORE
// triggers (which fire in name order) have finished.
constexpr TriggerSpec kRowTriggers[] = {
    {"zz_hb_lifecycle_dedupe", "BEFORE INSERT", "FOR EACH ROW", "hb_before_insert"},
    {"zz_hb_lifecycle_update", "BEFORE UPDATE", "FOR EACH ROW", "hb_before_update"},
    {"hb_lifecycle_sync_row", "AFTER INSERT", "FOR EACH ROW", "hb_sync_row"},
};

// Statement triggers, on the parent and on every partition.
constexpr TriggerSpec kStatementTriggers[] = {
    {sync::kInsertStatementTrigger, "AFTER INSERT", "FOR EACH STATEMENT", "hb_sync_insert"},
    {"hb_lifecycle_sync_update", "AFTER UPDATE",
     "REFERENCING OLD TABLE AS hb_old NEW TABLE AS hb_new FOR EACH STATEMENT", "hb_sync_update"},
    {"hb_lifecycle_sync_delete", "AFTER DELETE",
     "REFERENCING OLD TABLE AS hb_old FOR EACH STATEMENT", "hb_sync_delete"},
};

// Whether a query with one parameter returns a row (its first row stays in
// SPI_tuptable).
bool query_exists(SpiEnv *env, const char *sql, Oid argtype, Datum arg) {
    Oid types[1] = {argtype};
    Datum args[1] = {arg};
    spi_run_args(env, sql, 1, types, args, nullptr, SPI_OK_SELECT, 1);
    return SPI_processed > 0;
}

// Whether relation relid has a trigger of that name: one look-up in
// pg_trigger's (tgrelid, tgname) index, without opening (locking) the
// relation. Maintenance checks every partition of a managed table this way,
// and must not wait for one that a concurrent creation holds (the catch-all,
// while a partition is attached).
bool trigger_exists(Oid relid, const char *name) {
    Relation tgrel = table_open(TriggerRelationId, AccessShareLock);
    ScanKeyData key[2];
    ScanKeyInit(&key[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(relid));
    ScanKeyInit(&key[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber, F_NAMEEQ,
                CStringGetDatum(name));
    SysScanDesc scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, nullptr, 2, key);
    bool found = HeapTupleIsValid(systable_getnext(scan));
    systable_endscan(scan);
    table_close(tgrel, AccessShareLock);
    return found;
}

void create_trigger(SpiEnv *env, const TriggerSpec &trig, const char *rel, const char *ext) {
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql, "CREATE TRIGGER %s %s ON %s %s EXECUTE FUNCTION %s.%s()", trig.name,
                     trig.when, rel, trig.level, ext, trig.function);
    spi_run(env, sql.data, SPI_OK_UTILITY);
    pfree(sql.data);
}

void drop_triggers(SpiEnv *env, const TriggerSpec *triggers, size_t n, const char *rel) {
    StringInfoData sql;
    initStringInfo(&sql);
    for (size_t i = 0; i < n; ++i) {
        resetStringInfo(&sql);
        appendStringInfo(&sql, "DROP TRIGGER IF EXISTS %s ON %s", triggers[i].name, rel);
        spi_run(env, sql.data, SPI_OK_UTILITY);
    }
    pfree(sql.data);
}

// The statement triggers a relation of a managed tree needs (SPI
// connected); returns how many it created.
int install_statement_triggers(SpiEnv *env, Oid relid, const char *ext) {
    char kind = get_rel_relkind(relid);
    if (kind == RELKIND_FOREIGN_TABLE || kind == '\0')  // ('\0': dropped meanwhile)
        return 0;
    const char *rel = qualified_relation_name(relid);
    int created = 0;
    for (const TriggerSpec &trig : kStatementTriggers)
        if (!trigger_exists(relid, trig.name)) {
            create_trigger(env, trig, rel, ext);
            created++;
        }
    return created;
}

// relid and every partition below it.
List *tree_of(Oid relid) {
    List *out = list_make1_oid(relid);
    List *parts = find_all_inheritors(relid, NoLock, nullptr);
    ListCell *lc;
    foreach (lc, parts)
        if (lfirst_oid(lc) != relid)
            out = lappend_oid(out, lfirst_oid(lc));
    return out;
}

// The statement triggers every relation of root's tree lacks (with
// only_owned, of the relations the current user owns); an index look-up per
// relation and trigger, and no lock on a relation that lacks none.
int install_tree_triggers(SpiEnv *env, Oid root, const char *ext, bool only_owned = false) {
    List *tree = tree_of(root);
    ListCell *lc;
    int created = 0;
    foreach (lc, tree)
        if (!only_owned || pg_class_ownercheck(lfirst_oid(lc), GetUserId()))
            created += install_statement_triggers(env, lfirst_oid(lc), ext);
    return created;
}

[[noreturn]] void bad_argument(const char *message, const char *hint) {
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg_internal("%s", message),
                    hint ? errhint("%s", hint) : 0));
    pg_unreachable();
}

void require_not_null(FunctionCallInfo fcinfo, int arg, const char *name) {
    if (PG_ARGISNULL(arg))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                 errmsg("hb_manage: %s must not be NULL", name),
                 arg == 0 ? errhint("Pass the heartbeats table, e.g. hb_manage('heartbeats').")
                          : errhint("Omit the argument to use its default.")));
}

void require_owner(Relation rel) {
    if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
        aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(rel->rd_rel->relkind),
                       RelationGetRelationName(rel));
}

// Checks ownership before any lock is taken (so that a role cannot queue a
// lock on a table it does not own), then locks, then checks again (the
// owner may have changed while we waited).
Relation open_owned(Oid relid, LOCKMODE mode) {
    require_owner_of(relid);
    Relation rel = try_relation_open(relid, mode);
    if (rel == nullptr)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("relation with OID %u does not exist", relid)));
    require_owner(rel);
    return rel;
}

bool valid_prefix(const char *p) {
    size_t n = strlen(p);
    // The longest name is <prefix>_yyyy_mm_dd.
    if (n == 0 || n > NAMEDATALEN - 1 - 11)
        return false;
    if (!(p[0] == '_' || (p[0] >= 'a' && p[0] <= 'z')))
        return false;
    for (size_t i = 1; i < n; ++i)
        if (!(p[i] == '_' || (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')))
            return false;
    return true;
}

// A valid unique index of rel whose keys are exactly {a, b}, or InvalidOid.
// Sets *invalid when such an index exists but is not (yet) valid.
Oid find_unique_index(Relation rel, AttrNumber a, AttrNumber b, bool *invalid) {
    *invalid = false;
    Oid found = InvalidOid;
    List *indexes = RelationGetIndexList(rel);
    ListCell *lc;
    foreach (lc, indexes) {
        Relation idx = index_open(lfirst_oid(lc), AccessShareLock);
        Form_pg_index form = idx->rd_index;
        if (form->indisunique && IndexRelationGetNumberOfKeyAttributes(idx) == 2 &&
            RelationGetIndexExpressions(idx) == NIL && RelationGetIndexPredicate(idx) == NIL) {
            // (device, time) in that order: the recomputation after an UPDATE
            // or DELETE reads a device's newest heartbeat through it.
            AttrNumber k0 = form->indkey.values[0], k1 = form->indkey.values[1];
            if (k0 == a && k1 == b) {
                if (form->indisvalid)
                    found = RelationGetRelid(idx);
                else
                    *invalid = true;
            }
        }
        index_close(idx, AccessShareLock);
        if (OidIsValid(found))
            break;
    }
    list_free(indexes);
    return found;
}

// Lets role run the lifecycle functions (none is executable by PUBLIC), as
// the owner of hb_config (SPI connected as that role). A superuser needs no
// grant.
void grant_lifecycle(SpiEnv *env, Oid role, const char *ext) {
    if (superuser_arg(role))
        return;
    char *sql = psprintf(
        "SELECT pg_catalog.format('GRANT EXECUTE ON ROUTINE %%s TO %%I', "
        "pg_catalog.string_agg(f::pg_catalog.text, ', '), $1) "
        "FROM %s._hb_lifecycle_functions() f",
        ext);
    Oid types[1] = {TEXTOID};
    Datum values[1] = {CStringGetTextDatum(GetUserNameFromId(role, false))};
    spi_run_args(env, sql, 1, types, values, nullptr, SPI_OK_SELECT, 1);
    char *grant = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    spi_run(env, grant, SPI_OK_UTILITY);
    pfree(sql);
}

// Whether the extension's SQL objects are at 0.2 or later (the partition
// lifecycle): a database still at 0.1 after the library was upgraded keeps
// 0.1's behaviour until ALTER EXTENSION hb_lifecycle UPDATE.
bool lifecycle_installed() {
    return OidIsValid(get_relname_relid("hb_partitions", extension_schema_oid()));
}

// Whether role may already run hb_run_maintenance() (the grants come together).
bool has_lifecycle_grant(SpiEnv *env, Oid role, const char *ext) {
    char *sql = psprintf(
        "SELECT pg_catalog.has_function_privilege($1, '%s.hb_run_maintenance()', "
        "'EXECUTE')",
        ext);
    Oid types[1] = {OIDOID};
    Datum values[1] = {ObjectIdGetDatum(role)};
    spi_run_args(env, sql, 1, types, values, nullptr, SPI_OK_SELECT, 1);
    bool isnull;
    bool yes =
        DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    pfree(sql);
    return yes;
}

// Refuses a direct call; false while the extension itself is being dropped.
bool event_trigger_applies(FunctionCallInfo fcinfo, const char *fn) {
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s() must be called as an event trigger", fn)));
    return OidIsValid(get_extension_oid("hb_lifecycle", true));
}

}  // namespace
}  // namespace hb

extern "C" {
PG_FUNCTION_INFO_V1(hb_manage);
PG_FUNCTION_INFO_V1(hb_unmanage);
PG_FUNCTION_INFO_V1(hb_on_ddl_end);
PG_FUNCTION_INFO_V1(hb_on_sql_drop);
PG_FUNCTION_INFO_V1(hb_partition_triggers);
}

using namespace hb;

extern "C" Datum hb_manage(PG_FUNCTION_ARGS) {
    return guarded([&]() -> Datum {
        require_not_null(fcinfo, 0, "parent");
        require_not_null(fcinfo, 1, "device_column");
        require_not_null(fcinfo, 2, "time_column");
        require_not_null(fcinfo, 3, "granularity");
        require_not_null(fcinfo, 4, "premake");
        require_not_null(fcinfo, 5, "retention");
        require_not_null(fcinfo, 6, "last_status_table");
        Oid parent = PG_GETARG_OID(0);
        const char *devcol = NameStr(*PG_GETARG_NAME(1));
        const char *tscol = NameStr(*PG_GETARG_NAME(2));
        const char *granularity = text_to_cstring(PG_GETARG_TEXT_PP(3));
        int32 premake = PG_GETARG_INT32(4);
        Interval *retention = PG_GETARG_INTERVAL_P(5);
        const char *lsname = NameStr(*PG_GETARG_NAME(6));
        const char *prefix = PG_ARGISNULL(7) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(7));

        Relation prel = open_owned(parent, ShareRowExclusiveLock);
        const char *pname = pstrdup(RelationGetRelationName(prel));
        const char *ext = extension_schema_quoted();

        SpiEnv env;
        spi_env_begin(&env, InvalidOid);
        StringInfoData sql;
        initStringInfo(&sql);

        appendStringInfo(&sql, "SELECT 1 FROM %s.hb_config WHERE parent = $1", ext);
        if (query_exists(&env, sql.data, REGCLASSOID, ObjectIdGetDatum(parent))) {
            ereport(NOTICE,
                    (errmsg("\"%s\" is already managed by hb_lifecycle; nothing changed", pname),
                     errhint("Its settings are in hb_config. To register it anew, run "
                             "SELECT hb_unmanage(%s) first.",
                             quote_literal_cstr(qualified_relation_name(parent)))));
            spi_env_end(&env);
            relation_close(prel, NoLock);
            PG_RETURN_VOID();
        }

        // The table's shape.
        if (prel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
            ereport(ERROR,
                    (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                     errmsg("\"%s\" is not a partitioned table", pname),
                     errdetail("hb_lifecycle manages tables partitioned by range of their time "
                               "column."),
                     errhint("Create the table with PARTITION BY RANGE (%s) and move the rows "
                             "into it.",
                             quote_identifier(tscol))));
        AttrNumber ts_att = get_attnum(parent, tscol);
        if (ts_att == InvalidAttrNumber)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                            errmsg("column \"%s\" of \"%s\" does not exist", tscol, pname),
                            errhint("Pass the name of the time column: time_column => '...'.")));
        AttrNumber dev_att = get_attnum(parent, devcol);
        if (dev_att == InvalidAttrNumber)
            ereport(ERROR,
                    (errcode(ERRCODE_UNDEFINED_COLUMN),
                     errmsg("column \"%s\" of \"%s\" does not exist", devcol, pname),
                     errhint("Pass the name of the device column: device_column => '...'.")));
        if (dev_att == ts_att)
            bad_argument("hb_manage: device_column and time_column must be different columns",
                         nullptr);
        PartitionKey key = RelationGetPartitionKey(prel);
        if (key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
            key->partattrs[0] != ts_att)
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
                     errmsg("\"%s\" must be partitioned by range of \"%s\" alone", pname, tscol),
                     errhint("Create the table with PARTITION BY RANGE (%s).",
                             quote_identifier(tscol))));
        Oid ts_type = get_atttype(parent, ts_att);
        if (ts_type == TIMESTAMPOID)
            ereport(ERROR,
                    (errcode(ERRCODE_DATATYPE_MISMATCH),
                     errmsg("time column \"%s\" of \"%s\" is timestamp without time zone", tscol,
                            pname),
                     errdetail("A heartbeat's time must be an instant: partition bounds, "
                               "retention and \"newest\" are computed in UTC."),
                     errhint("Use timestamptz. A partition key cannot change type in place: "
                             "create the table with \"%s timestamptz\" and copy the rows with "
                             "%s AT TIME ZONE 'UTC'.",
                             tscol, quote_identifier(tscol))));
        if (ts_type != TIMESTAMPTZOID)
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("time column \"%s\" of \"%s\" has type %s", tscol, pname,
                                   format_type_be(ts_type)),
                            errhint("The time column must be timestamptz.")));
        Oid dev_type = get_atttype(parent, dev_att);
        sync::DeviceKind dev_kind;
        if (!sync::device_kind_of(dev_type, &dev_kind))
            ereport(ERROR,
                    (errcode(ERRCODE_DATATYPE_MISMATCH),
                     errmsg("device column \"%s\" of \"%s\" has type %s, which hb_lifecycle does "
                            "not support",
                            devcol, pname, format_type_be(dev_type)),
                     errhint("Use smallint, integer, bigint, text, varchar or uuid.")));
        Oid dev_typ_unused, dev_coll;
        int32 dev_typmod_unused;
        get_atttypetypmodcoll(parent, dev_att, &dev_typ_unused, &dev_typmod_unused, &dev_coll);
        if (OidIsValid(dev_coll) && !get_collation_isdeterministic(dev_coll))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("device column \"%s\" of \"%s\" uses a nondeterministic "
                                   "collation",
                                   devcol, pname),
                            errhint("Give the column a deterministic collation, such as \"C\".")));

        // The other arguments.
        if (strcmp(granularity, "day") != 0 && strcmp(granularity, "month") != 0)
            bad_argument(
                psprintf("hb_manage: granularity must be 'day' or 'month', not '%s'", granularity),
                "Daily partitions suit most fleets; monthly ones small fleets with long "
                "retention.");
        if (premake < 0 || premake > 1000)
            bad_argument(psprintf("hb_manage: premake must be between 0 and 1000, not %d", premake),
                         "premake is how many partitions to create ahead of today.");
        Interval zero;
        memset(&zero, 0, sizeof zero);
        if (DatumGetBool(DirectFunctionCall2(interval_le, IntervalPGetDatum(retention),
                                             IntervalPGetDatum(&zero))))
            bad_argument("hb_manage: retention must be a positive interval",
                         "For example retention => '90 days'.");
        if (lsname[0] == '\0')
            bad_argument("hb_manage: last_status_table must not be empty", nullptr);

        // Not part of another managed tree, and none of its partitions managed.
        List *ancestors = get_partition_ancestors(parent);
        List *tree = tree_of(parent);
        resetStringInfo(&sql);
        appendStringInfo(&sql,
                         "SELECT 1 FROM %s.hb_config WHERE parent::pg_catalog.oid "
                         "OPERATOR(pg_catalog.=) $1",
                         ext);
        ListCell *lc;
        foreach (lc, ancestors)
            if (query_exists(&env, sql.data, OIDOID, ObjectIdGetDatum(lfirst_oid(lc))))
                ereport(ERROR,
                        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                         errmsg("\"%s\" is a partition of managed table \"%s\"", pname,
                                get_rel_name(lfirst_oid(lc))),
                         errhint("Its rows are already kept by that table's registration.")));
        foreach (lc, tree) {
            Oid part = lfirst_oid(lc);
            if (part != parent && query_exists(&env, sql.data, OIDOID, ObjectIdGetDatum(part)))
                ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                errmsg("partition \"%s\" of \"%s\" is itself managed",
                                       get_rel_name(part), pname),
                                errhint("Run SELECT hb_unmanage(%s) first.",
                                        quote_literal_cstr(qualified_relation_name(part)))));
            if (get_rel_relkind(part) == RELKIND_FOREIGN_TABLE)
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("partition \"%s\" of \"%s\" is a foreign table",
                                       get_rel_name(part), pname),
                                errhint("hb_lifecycle manages partitions stored in this server.")));
        }

        // The partition prefix.
        char *use_prefix;
        if (prefix != nullptr) {
            use_prefix = pstrdup(prefix);
        } else {
            resetStringInfo(&sql);
            appendStringInfo(&sql, "SELECT 1 FROM %s.hb_config LIMIT 1", ext);
            spi_run(&env, sql.data, SPI_OK_SELECT);
            use_prefix = SPI_processed == 0 ? pstrdup("hb") : pstrdup(pname);
        }
        if (!valid_prefix(use_prefix))
            bad_argument(psprintf("hb_manage: partition prefix \"%s\" is not usable", use_prefix),
                         "A prefix is 1 to 52 characters: lower-case letters, digits and "
                         "underscores, not starting with a digit. Pass partition_prefix => '...'.");
        resetStringInfo(&sql);
        appendStringInfo(&sql,
                         "SELECT parent::pg_catalog.text FROM %s.hb_config WHERE "
                         "partition_prefix OPERATOR(pg_catalog.=) $1",
                         ext);
        if (query_exists(&env, sql.data, TEXTOID, CStringGetTextDatum(use_prefix)))
            ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
                            errmsg("partition prefix \"%s\" is already used by \"%s\"", use_prefix,
                                   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
                            errhint("Pass another one: partition_prefix => '...'.")));

        // Facts of the parent; then let go of our reference (the lock stays
        // until commit): DDL on a relation refuses while we hold it open.
        Oid nsp = RelationGetNamespace(prel);
        Oid owner = prel->rd_rel->relowner;
        bool invalid = false;
        Oid unique_index = find_unique_index(prel, dev_att, ts_att, &invalid);
        relation_close(prel, NoLock);

        // The last-status table must be new.
        const char *nspname = get_namespace_name(nsp);
        if (OidIsValid(get_relname_relid(lsname, nsp)))
            ereport(ERROR, (errcode(ERRCODE_DUPLICATE_TABLE),
                            errmsg("relation \"%s.%s\" already exists", nspname, lsname),
                            errdetail("hb_manage creates the last-status table itself."),
                            errhint("Pass another name: last_status_table => '...'.")));

        const char *parent_sql = qualified_relation_name(parent);
        const char *dev_sql = quote_identifier(devcol);
        const char *ts_sql = quote_identifier(tscol);

        // Retries are recognised through a unique (device, time) index.
        if (!OidIsValid(unique_index)) {
            if (invalid)
                ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                errmsg("the unique index on (%s, %s) of \"%s\" is not valid",
                                       devcol, tscol, pname),
                                errhint("Attach the index of every partition to it (ALTER INDEX "
                                        "... ATTACH PARTITION), then call hb_manage again.")));
            resetStringInfo(&sql);
            appendStringInfo(&sql,
                             "SELECT count(*) OVER (), d::pg_catalog.text, t::pg_catalog.text, n "
                             "FROM (SELECT %s AS d, %s AS t, count(*) AS n FROM %s "
                             "GROUP BY 1, 2 HAVING count(*) > 1) x ORDER BY n DESC LIMIT 1",
                             dev_sql, ts_sql, parent_sql);
            spi_run(&env, sql.data, SPI_OK_SELECT);
            if (SPI_processed > 0) {
                HeapTuple row = SPI_tuptable->vals[0];
                TupleDesc desc = SPI_tuptable->tupdesc;
                long pairs = atol(SPI_getvalue(row, desc, 1));
                ereport(ERROR,
                        (errcode(ERRCODE_UNIQUE_VIOLATION),
                         errmsg_plural("cannot make (%s, %s) unique on \"%s\": %ld (device, time) "
                                       "pair is stored more than once",
                                       "cannot make (%s, %s) unique on \"%s\": %ld (device, time) "
                                       "pairs are stored more than once",
                                       pairs, devcol, tscol, pname, pairs),
                         errdetail("For example device %s at %s is stored %s times.",
                                   SPI_getvalue(row, desc, 2), SPI_getvalue(row, desc, 3),
                                   SPI_getvalue(row, desc, 4)),
                         errhint("Delete the extra copies (keep one row per device and time), "
                                 "then call hb_manage again.")));
            }
            resetStringInfo(&sql);
            appendStringInfo(&sql, "CREATE UNIQUE INDEX ON %s (%s, %s)", parent_sql, dev_sql,
                             ts_sql);
            spi_run(&env, sql.data, SPI_OK_UTILITY);
        }

        // The last-status table: the parent's columns, one row per device,
        // half-empty pages so that an update finds room on its own page and
        // stays HOT (no index entry per heartbeat).
        const char *ls_sql = quote_qualified_identifier(nspname, lsname);
        resetStringInfo(&sql);
        appendStringInfo(&sql, "CREATE TABLE %s (LIKE %s) WITH (fillfactor = 50)", ls_sql,
                         parent_sql);
        spi_run(&env, sql.data, SPI_OK_UTILITY);
        resetStringInfo(&sql);
        appendStringInfo(&sql, "ALTER TABLE %s ADD PRIMARY KEY (%s)", ls_sql, dev_sql);
        spi_run(&env, sql.data, SPI_OK_UTILITY);
        resetStringInfo(&sql);
        appendStringInfo(&sql, "ALTER TABLE %s OWNER TO %s", ls_sql,
                         quote_identifier(GetUserNameFromId(owner, false)));
        spi_run(&env, sql.data, SPI_OK_UTILITY);
        resetStringInfo(&sql);
        appendStringInfo(&sql, "COMMENT ON TABLE %s IS %s", ls_sql,
                         quote_literal_cstr(psprintf("Newest heartbeat of each device of %s, kept "
                                                     "by hb_lifecycle.",
                                                     parent_sql)));
        spi_run(&env, sql.data, SPI_OK_UTILITY);
        CommandCounterIncrement();
        Oid ls = get_relname_relid(lsname, nsp);

        // The triggers.
        for (const TriggerSpec &trig : kRowTriggers)
            create_trigger(&env, trig, parent_sql, ext);
        install_tree_triggers(&env, parent, ext);

        bool has_rows = false;
        resetStringInfo(&sql);
        appendStringInfo(&sql, "SELECT 1 FROM %s LIMIT 1", parent_sql);
        spi_run(&env, sql.data, SPI_OK_SELECT);
        has_rows = SPI_processed > 0;
        spi_env_end(&env);

        // The registration, as the owner of hb_config.
        spi_env_begin(&env, config_table_owner());
        resetStringInfo(&sql);
        appendStringInfo(&sql,
                         "INSERT INTO %s.hb_config (parent, device_column, time_column, "
                         "granularity, premake, retention, last_status_table, partition_prefix) "
                         "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                         ext);
        Oid types[8] = {REGCLASSOID, NAMEOID,     NAMEOID,     TEXTOID,
                        INT4OID,     INTERVALOID, REGCLASSOID, TEXTOID};
        Datum values[8] = {ObjectIdGetDatum(parent), PG_GETARG_DATUM(1),
                           PG_GETARG_DATUM(2),       CStringGetTextDatum(granularity),
                           Int32GetDatum(premake),   IntervalPGetDatum(retention),
                           ObjectIdGetDatum(ls),     CStringGetTextDatum(use_prefix)};
        spi_run_args(&env, sql.data, 8, types, values, nullptr, SPI_OK_INSERT);
        // A table that starts empty has no history to backfill: its reads
        // may use the last-status table at once (0.3 and later).
        Oid config_rel = get_relname_relid("hb_config", extension_schema_oid());
        if (!has_rows && get_attnum(config_rel, "backfill_done_at") != InvalidAttrNumber) {
            resetStringInfo(&sql);
            appendStringInfo(&sql,
                             "UPDATE %s.hb_config SET backfill_done_at = pg_catalog.now() "
                             "WHERE parent OPERATOR(pg_catalog.=) $1",
                             ext);
            spi_run_args(&env, sql.data, 1, types, values, nullptr, SPI_OK_UPDATE);
        }
        bool lifecycle = lifecycle_installed();
        if (lifecycle)
            grant_lifecycle(&env, owner, ext);
        spi_env_end(&env);

        // The catch-all partition, adoption of what is there, and the
        // partitions ahead: as the caller, like the rest of the DDL.
        if (lifecycle) {
            spi_env_begin(&env, InvalidOid);
            resetStringInfo(&sql);
            appendStringInfo(&sql, "SELECT %s.hb_create_ahead($1)", ext);
            Oid stypes[1] = {REGCLASSOID};
            Datum svalues[1] = {ObjectIdGetDatum(parent)};
            spi_run_args(&env, sql.data, 1, stypes, svalues, nullptr, SPI_OK_SELECT);
            spi_env_end(&env);
        }

        if (has_rows)
            ereport(NOTICE,
                    (errmsg("\"%s\" already holds heartbeats; %s starts empty", pname, lsname),
                     errdetail("A device appears in %s with its first heartbeat inserted from now "
                               "on; until a backfill completes, hb_device_status() and "
                               "hb_fleet_status() read \"%s\" itself.",
                               lsname, pname),
                     errhint("CALL hb_backfill_last_status(since => '30 days') fills it from the "
                             "history, in batches, while inserts go on.")));
        PG_RETURN_VOID();
    });
}

extern "C" Datum hb_unmanage(PG_FUNCTION_ARGS) {
    return guarded([&]() -> Datum {
        Oid parent = PG_GETARG_OID(0);
        Relation prel = open_owned(parent, ShareRowExclusiveLock);
        const char *pname = pstrdup(RelationGetRelationName(prel));
        relation_close(prel, NoLock);  // DROP TRIGGER refuses while we hold it open
        const char *ext = extension_schema_quoted();
        const char *parent_sql = qualified_relation_name(parent);

        SpiEnv env;
        spi_env_begin(&env, InvalidOid);
        StringInfoData sql;
        initStringInfo(&sql);
        appendStringInfo(&sql,
                         "SELECT last_status_table::pg_catalog.text FROM %s.hb_config "
                         "WHERE parent = $1",
                         ext);
        if (!query_exists(&env, sql.data, REGCLASSOID, ObjectIdGetDatum(parent)))
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("\"%s\" is not managed by hb_lifecycle", pname)));
        char *ls = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));

        // Row triggers of the parent take their clones with them.
        drop_triggers(&env, kRowTriggers, lengthof(kRowTriggers), parent_sql);
        List *tree = tree_of(parent);
        ListCell *lc;
        foreach (lc, tree)
            drop_triggers(&env, kStatementTriggers, lengthof(kStatementTriggers),
                          qualified_relation_name(lfirst_oid(lc)));
        spi_env_end(&env);

        spi_env_begin(&env, config_table_owner());
        resetStringInfo(&sql);
        appendStringInfo(&sql, "DELETE FROM %s.hb_config WHERE parent = $1", ext);
        Oid types[1] = {REGCLASSOID};
        Datum values[1] = {ObjectIdGetDatum(parent)};
        spi_run_args(&env, sql.data, 1, types, values, nullptr, SPI_OK_DELETE);
        spi_env_end(&env);

        ereport(NOTICE, (errmsg("\"%s\" is no longer managed; %s and every heartbeat are kept",
                                pname, ls)));
        PG_RETURN_VOID();
    });
}

// ddl_command_end for CREATE TABLE / ALTER TABLE: a new or attached
// partition of a managed table gets its statement triggers, and a change
// that would break the sync (a key column renamed or retyped, a column type
// that no longer matches, the last-status table's primary key dropped) is
// refused, with the error the next heartbeat would otherwise get.
extern "C" Datum hb_on_ddl_end(PG_FUNCTION_ARGS) {
    return guarded([&]() -> Datum {
        if (!event_trigger_applies(fcinfo, "hb_on_ddl_end"))
            PG_RETURN_VOID();
        const char *ext = extension_schema_quoted();
        StringInfoData sql;
        initStringInfo(&sql);
        // Read hb_config as its owner: the user running the DDL may have no
        // privilege on the extension's schema, and this runs for every
        // CREATE TABLE and ALTER TABLE in the database.
        SpiEnv env;
        spi_env_begin(&env, config_table_owner());
        // Managed tables the command touched: the table itself, one of its
        // partitions (ATTACH reports the parent), or its last-status table.
        // It runs after every CREATE TABLE and ALTER TABLE (a range of new
        // partitions is two of them each): the plan is kept.
        // (The query names the extension's schema: a renamed schema gets a
        // new plan.)
        static SPIPlanPtr commands_plan = nullptr;
        static char *commands_plan_schema = nullptr;
        if (commands_plan != nullptr && strcmp(commands_plan_schema, ext) != 0) {
            SPI_freeplan(commands_plan);
            commands_plan = nullptr;
            pfree(commands_plan_schema);
            commands_plan_schema = nullptr;
        }
        if (commands_plan == nullptr) {
            appendStringInfo(
                &sql,
                "SELECT c.parent::pg_catalog.oid, d.objid, d.command_tag, d.command "
                "FROM pg_catalog.pg_event_trigger_ddl_commands() d "
                // pg_partition_ancestors() is empty for a plain table
                "CROSS JOIN LATERAL (SELECT d.objid AS relid UNION "
                "SELECT relid FROM pg_catalog.pg_partition_ancestors(d.objid)) a "
                "JOIN %s.hb_config c ON c.parent::pg_catalog.oid OPERATOR(pg_catalog.=) "
                "a.relid OR c.last_status_table::pg_catalog.oid OPERATOR(pg_catalog.=) "
                "d.objid "
                "WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
                "AND d.object_type IN ('table', 'table column')",
                ext);
            SPIPlanPtr prepared = SPI_prepare(sql.data, 0, nullptr);
            MemoryContextSwitchTo(env.caller_cxt);
            if (prepared == nullptr || SPI_keepplan(prepared) != 0)
                elog(ERROR, "hb_lifecycle: cannot prepare the DDL event trigger's query");
            commands_plan = prepared;
            commands_plan_schema = MemoryContextStrdup(TopMemoryContext, ext);
        }
        spi_run_plan(&env, commands_plan, "the DDL event trigger's query", SPI_OK_SELECT);
        int n = static_cast<int>(SPI_processed);
        // The relations that joined a managed tree: a table CREATEd as a
        // partition, or one an ALTER TABLE ... ATTACH PARTITION attached
        // (the command reports the parent; its subcommand names the
        // partition, resolved below with the caller's search_path).
        List *joined = NIL;
        List *attached = NIL;     // RangeVar *
        List *shape_roots = NIL;  // roots whose shape a command may have changed
        for (int i = 0; i < n; ++i) {
            HeapTuple row = SPI_tuptable->vals[i];
            TupleDesc desc = SPI_tuptable->tupdesc;
            bool isnull;
            Oid root = DatumGetObjectId(SPI_getbinval(row, desc, 1, &isnull));
            Oid objid = DatumGetObjectId(SPI_getbinval(row, desc, 2, &isnull));
            char *tag = SPI_getvalue(row, desc, 3);
            auto *cmd = reinterpret_cast<CollectedCommand *>(
                DatumGetPointer(SPI_getbinval(row, desc, 4, &isnull)));
            // A partition created or attached cannot change the managed
            // table's shape (PostgreSQL makes its columns match): only
            // other commands need the shape checked again.
            bool only_joins = false;
            if (strcmp(tag, "CREATE TABLE") == 0) {
                joined = list_append_unique_oid(joined, objid);
                only_joins = objid != root;
            } else if (!isnull && cmd != nullptr && cmd->type == SCT_AlterTable) {
                only_joins = cmd->d.alterTable.subcmds != NIL;
                ListCell *lc;
                foreach (lc, cmd->d.alterTable.subcmds) {
                    auto *sub = static_cast<CollectedATSubcmd *>(lfirst(lc));
                    auto *at = reinterpret_cast<AlterTableCmd *>(sub->parsetree);
                    if (IsA(at, AlterTableCmd) && at->subtype == AT_AttachPartition &&
                        at->def != nullptr && IsA(at->def, PartitionCmd))
                        attached =
                            lappend(attached, reinterpret_cast<PartitionCmd *>(at->def)->name);
                    else
                        only_joins = false;
                }
            }
            if (!only_joins)
                shape_roots = list_append_unique_oid(shape_roots, root);
        }
        spi_env_end(&env);
        if (n == 0)
            PG_RETURN_VOID();
        ListCell *lc;
        foreach (lc, attached) {
            Oid relid = RangeVarGetRelid(static_cast<RangeVar *>(lfirst(lc)), NoLock, true);
            if (OidIsValid(relid))
                joined = list_append_unique_oid(joined, relid);
        }
        // The triggers are created as the user running the DDL (who owns
        // the new or attached partition).
        spi_env_begin(&env, InvalidOid);
        foreach (lc, joined)
            install_tree_triggers(&env, lfirst_oid(lc), ext);
        spi_env_end(&env);
        // A managed table that changed hands (a command other than creating
        // or attaching partitions): its new owner runs its lifecycle.
        if (shape_roots != NIL && lifecycle_installed()) {
            spi_env_begin(&env, config_table_owner());
            foreach (lc, shape_roots) {
                Oid owner = relation_owner(lfirst_oid(lc));
                if (OidIsValid(owner) && !has_lifecycle_grant(&env, owner, ext))
                    grant_lifecycle(&env, owner, ext);
            }
            spi_env_end(&env);
        }
        foreach (lc, shape_roots)
            sync::check_managed_shape(lfirst_oid(lc));
        PG_RETURN_VOID();
    });
}

// sql_drop: a managed table that is dropped leaves hb_config with it (its
// triggers went with the table; its last-status table is kept).
extern "C" Datum hb_on_sql_drop(PG_FUNCTION_ARGS) {
    return guarded([&]() -> Datum {
        if (!event_trigger_applies(fcinfo, "hb_on_sql_drop"))
            PG_RETURN_VOID();
        const char *ext = extension_schema_quoted();
        // The tables the command dropped (their names are gone from the
        // catalog by now: object_identity keeps them).
        const char *dropped =
            "(SELECT objid, object_identity FROM pg_catalog.pg_event_trigger_dropped_objects() "
            "WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
            "AND objsubid OPERATOR(pg_catalog.=) 0) d";
        StringInfoData sql;
        initStringInfo(&sql);
        SpiEnv env;
        spi_env_begin(&env, config_table_owner());
        // The last-status table of a table that stays managed cannot go:
        // every heartbeat would then fail.
        appendStringInfo(&sql,
                         "SELECT d.object_identity, c.parent::pg_catalog.text FROM %s.hb_config c "
                         "JOIN %s ON d.objid OPERATOR(pg_catalog.=) "
                         "c.last_status_table::pg_catalog.oid "
                         "WHERE c.parent::pg_catalog.oid NOT IN (SELECT objid FROM %s) LIMIT 1",
                         ext, dropped, dropped);
        spi_run(&env, sql.data, SPI_OK_SELECT);
        if (SPI_processed > 0) {
            char *ls = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
            char *parent = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
            ereport(ERROR,
                    (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
                     errmsg("cannot drop %s: it is the last-status table of managed table %s", ls,
                            parent),
                     errhint("Run SELECT hb_unmanage(%s) first, or drop both tables together.",
                             quote_literal_cstr(parent))));
        }
        resetStringInfo(&sql);
        appendStringInfo(&sql,
                         "DELETE FROM %s.hb_config c USING %s "
                         "WHERE c.parent::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid",
                         ext, dropped);
        spi_run(&env, sql.data, SPI_OK_DELETE);
        if (!lifecycle_installed()) {
            spi_env_end(&env);
            PG_RETURN_VOID();
        }
        // A recorded partition dropped by hand is dropped in hb_partitions
        // too; the partitions of a dropped table leave it.
        resetStringInfo(&sql);
        appendStringInfo(&sql,
                         "DELETE FROM %s.hb_partitions p USING %s "
                         "WHERE p.parent::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid",
                         ext, dropped);
        spi_run(&env, sql.data, SPI_OK_DELETE);
        resetStringInfo(&sql);
        appendStringInfo(
            &sql,
            "UPDATE %s.hb_partitions p SET state = 'dropped', dropped_at = pg_catalog.now(), "
            "last_error = 'dropped outside hb_lifecycle' "
            "FROM pg_catalog.pg_event_trigger_dropped_objects() d, pg_catalog.pg_class pc, "
            "pg_catalog.pg_namespace n "
            "WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
            "AND d.objsubid OPERATOR(pg_catalog.=) 0 AND d.object_type OPERATOR(pg_catalog.=) "
            "'table' AND p.state OPERATOR(pg_catalog.<>) 'dropped' "
            "AND pc.oid OPERATOR(pg_catalog.=) p.parent::pg_catalog.oid "
            "AND n.oid OPERATOR(pg_catalog.=) pc.relnamespace "
            "AND d.schema_name OPERATOR(pg_catalog.=) n.nspname::pg_catalog.text "
            "AND d.object_name OPERATOR(pg_catalog.=) p.partition_name",
            ext);
        spi_run(&env, sql.data, SPI_OK_UPDATE);
        spi_env_end(&env);
        PG_RETURN_VOID();
    });
}

// _hb_partition_triggers(rel regclass) RETURNS integer: creates, as the
// caller, the statement triggers that rel and the partitions below it that
// the caller owns lack, and returns how many. The DDL event trigger
// normally creates them, but event triggers do not fire in single-user mode
// or under session_replication_role = replica: hb_lifecycle's own DDL calls
// this after creating a partition, and maintenance for every managed table.
extern "C" Datum hb_partition_triggers(PG_FUNCTION_ARGS) {
    return guarded([&]() -> Datum {
        Oid rel = PG_GETARG_OID(0);
        require_owner_of(rel);
        SpiEnv env;
        spi_env_begin(&env, InvalidOid);
        int created = install_tree_triggers(&env, rel, extension_schema_quoted(), true);
        spi_env_end(&env);
        PG_RETURN_INT32(created);
    });
}
