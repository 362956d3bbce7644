// spi_env.cpp — see spi_env.hpp.
#include "pg.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "utils/fmgroids.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
}

#include "spi_env.hpp"

namespace hb {

void spi_env_begin(SpiEnv *env, Oid run_as) {
    env->caller_cxt = CurrentMemoryContext;
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "hb_lifecycle: SPI_connect failed");
    MemoryContextSwitchTo(env->caller_cxt);
    env->guc_nest_level = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    env->switched_user = false;
    if (OidIsValid(run_as)) {
        GetUserIdAndSecContext(&env->saved_user, &env->saved_sec_context);
        SetUserIdAndSecContext(run_as, env->saved_sec_context | SECURITY_LOCAL_USERID_CHANGE |
                                           SECURITY_RESTRICTED_OPERATION);
        env->switched_user = true;
    }
}

void spi_env_end(SpiEnv *env) {
    if (env->switched_user)
        SetUserIdAndSecContext(env->saved_user, env->saved_sec_context);
    env->switched_user = false;
    AtEOXact_GUC(true, env->guc_nest_level);
    if (SPI_finish() != SPI_OK_FINISH)
        elog(ERROR, "hb_lifecycle: SPI_finish failed");
}

Oid extension_schema_oid() {
    Oid ext = get_extension_oid("hb_lifecycle", true);
    if (!OidIsValid(ext))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("extension \"hb_lifecycle\" is not installed in this database"),
                        errhint("Run CREATE EXTENSION hb_lifecycle;")));
    // get_extension_schema() is not exported before PostgreSQL 16.
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
    SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    Oid nsp = HeapTupleIsValid(tuple)
                  ? reinterpret_cast<Form_pg_extension>(GETSTRUCT(tuple))->extnamespace
                  : InvalidOid;
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    if (!OidIsValid(nsp))
        elog(ERROR, "hb_lifecycle: extension %u has no schema", ext);
    return nsp;
}

namespace {

void check_rc(int rc, int expected, const char *what) {
    if (rc != expected)
        elog(ERROR, "hb_lifecycle: %s failed: %s", what, SPI_result_code_string(rc));
}

}  // namespace

void spi_run_plan(SpiEnv *env, SPIPlanPtr plan, const char *what, int expected) {
    int rc = SPI_execute_plan(plan, nullptr, nullptr, false, 0);
    MemoryContextSwitchTo(env->caller_cxt);
    check_rc(rc, expected, what);
}

void spi_run(SpiEnv *env, const char *sql, int expected, long count) {
    int rc = SPI_execute(sql, false, count);
    MemoryContextSwitchTo(env->caller_cxt);
    check_rc(rc, expected, sql);
}

void spi_run_args(SpiEnv *env, const char *sql, int nargs, Oid *types, Datum *values,
                  const char *nulls, int expected, long count) {
    int rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, count);
    MemoryContextSwitchTo(env->caller_cxt);
    check_rc(rc, expected, sql);
}

char *qualified_relation_name(Oid relid) {
    return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
                                      get_rel_name(relid));
}

char *extension_schema_quoted() {
    return pstrdup(quote_identifier(get_namespace_name(extension_schema_oid())));
}

void require_owner_of(Oid relid) {
    char *name = get_rel_name(relid);
    if (name == nullptr)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("relation with OID %u does not exist", relid)));
    if (!pg_class_ownercheck(relid, GetUserId()))
        aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(get_rel_relkind(relid)), name);
}

Oid relation_owner(Oid relid) {
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple))
        return InvalidOid;
    Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);
    return owner;
}

Oid config_table_owner() {
    Oid cfg = get_relname_relid("hb_config", extension_schema_oid());
    if (!OidIsValid(cfg))
        elog(ERROR, "hb_lifecycle: hb_config is missing from the extension's schema");
    Oid owner = relation_owner(cfg);
    if (!OidIsValid(owner))
        elog(ERROR, "hb_lifecycle: cache lookup failed for relation %u", cfg);
    return owner;
}

}  // namespace hb
