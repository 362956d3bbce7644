// sync_config.cpp — the cache described in sync_config.hpp.
//
// Filled from hb_config with SPI (as the calling role, which may read
// hb_config) and from the catalogs; all of it is C-style code with
// trivially destructible locals, so errors may longjmp through it.
#include "pg.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/partition.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/uuid.h"
}

#include "core/key_codec.hpp"
#include "spi_env.hpp"
#include "sync_config.hpp"

namespace hb::sync {
namespace {

MemoryContext cache_cxt = nullptr;  // current generation
HTAB *rel_hash = nullptr;           // relid -> RelInfo
HTAB *target_hash = nullptr;        // parent -> Target
bool cache_stale = false;
List *retired = NIL;        // earlier generations (MemoryContext), in TopMemoryContext
List *retired_plans = NIL;  // their kept SPI plans
List *retired_tids = NIL;   // and their TID caches (core::TidCache *)
constexpr std::size_t kTidCacheDevices = 100000;

void create_cache() {
    cache_cxt =
        AllocSetContextCreate(CacheMemoryContext, "hb_lifecycle sync cache", ALLOCSET_SMALL_SIZES);
    HASHCTL ctl;
    memset(&ctl, 0, sizeof ctl);
    ctl.keysize = sizeof(Oid);
    ctl.entrysize = sizeof(RelInfo);
    ctl.hcxt = cache_cxt;
    rel_hash =
        hash_create("hb_lifecycle relations", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    ctl.entrysize = sizeof(Target);
    target_hash =
        hash_create("hb_lifecycle targets", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

// Moves the current generation aside; it is freed at transaction end.
void retire_cache() {
    if (cache_cxt == nullptr)
        return;
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    retired = lappend(retired, cache_cxt);
    MemoryContextSwitchTo(old);
    // Kept plans live in their own contexts: free them with the generation.
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, target_hash);
    while (auto *t = static_cast<Target *>(hash_seq_search(&seq))) {
        t->retired = true;
        if (t->tids != nullptr) {
            MemoryContext tid_cxt = MemoryContextSwitchTo(TopMemoryContext);
            retired_tids = lappend(retired_tids, t->tids);
            MemoryContextSwitchTo(tid_cxt);
            t->tids = nullptr;
        }
        auto retire = [](SPIPlanPtr &plan) {
            if (plan == nullptr)
                return;
            MemoryContext plan_cxt = MemoryContextSwitchTo(TopMemoryContext);
            retired_plans = lappend(retired_plans, plan);
            MemoryContextSwitchTo(plan_cxt);
            plan = nullptr;
        };
        for (SPIPlanPtr &plan : t->plans)
            retire(plan);
        for (SPIPlanPtr &plan : t->read_plans)
            retire(plan);
    }
    cache_cxt = nullptr;
    rel_hash = nullptr;
    target_hash = nullptr;
}

// Relcache callback: must not touch the catalogs; only decides staleness.
void on_relcache_invalidation(Datum, Oid relid) {
    if (rel_hash == nullptr || cache_stale)
        return;
    if (!OidIsValid(relid)) {
        cache_stale = true;
        return;
    }
    if (hash_search(rel_hash, &relid, HASH_FIND, nullptr) != nullptr) {
        cache_stale = true;
        return;
    }
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, target_hash);
    while (auto *t = static_cast<Target *>(hash_seq_search(&seq))) {
        if (t->parent == relid || t->ls == relid || t->ls_pkey == relid) {
            cache_stale = true;
            hash_seq_term(&seq);
            return;
        }
    }
}

// Where build/check code allocates what it keeps: the cache generation, or
// the caller's context for a check that keeps nothing.
MemoryContext keep_cxt = nullptr;

char *cache_strdup(const char *s) {
    return MemoryContextStrdup(keep_cxt, s);
}

char *qualified_name(Relation rel) {
    return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                      RelationGetRelationName(rel));
}

// Config row of the managed table that relid is, or is a partition of.
struct ConfigRow {
    Oid parent;
    Oid ls;
    NameData dev_col;
    NameData ts_col;
};

bool find_config(Oid relid, ConfigRow *row) {
    List *ancestors = get_partition_ancestors(relid);
    int n = 1 + list_length(ancestors);
    Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * n));
    elems[0] = ObjectIdGetDatum(relid);
    int i = 1;
    ListCell *lc;
    foreach (lc, ancestors)
        elems[i++] = ObjectIdGetDatum(lfirst_oid(lc));
    ArrayType *arr = construct_array(elems, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT);

    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql,
                     "SELECT c.parent::pg_catalog.oid, c.last_status_table::pg_catalog.oid, "
                     "c.device_column, c.time_column, "
                     "pg_catalog.array_position($1, c.parent::pg_catalog.oid) AS pos "
                     "FROM %s.hb_config c "
                     "WHERE c.parent::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1) "
                     "ORDER BY pos LIMIT 1",
                     extension_schema_quoted());

    // Read as hb_config's owner: the inserting role needs no grant on it.
    SpiEnv env;
    spi_env_begin(&env, config_table_owner());
    Oid argtypes[1] = {OIDARRAYOID};
    Datum args[1] = {PointerGetDatum(arr)};
    spi_run_args(&env, sql.data, 1, argtypes, args, nullptr, SPI_OK_SELECT, 1);
    bool found = SPI_processed > 0;
    if (found) {
        HeapTuple tup = SPI_tuptable->vals[0];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool isnull;
        row->parent = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
        row->ls = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
        namestrcpy(&row->dev_col, NameStr(*DatumGetName(SPI_getbinval(tup, desc, 3, &isnull))));
        namestrcpy(&row->ts_col, NameStr(*DatumGetName(SPI_getbinval(tup, desc, 4, &isnull))));
    }
    spi_env_end(&env);
    return found;
}

[[noreturn]] void shape_error(const char *relname, const char *detail) {
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("hb_lifecycle cannot keep the last status of \"%s\" in sync", relname),
             errdetail_internal("%s", detail),
             errhint("Undo the change, or run SELECT hb_unmanage(...) and SELECT hb_manage(...) "
                     "again to register the table in its new shape.")));
    pg_unreachable();
}

AttrNumber column_of(Relation rel, const char *col, const char *role) {
    AttrNumber att = get_attnum(RelationGetRelid(rel), col);
    if (att == InvalidAttrNumber)
        shape_error(RelationGetRelationName(rel),
                    psprintf("Its %s column \"%s\" no longer exists.", role, col));
    return att;
}

// Equality procedure of an index column's operator class.
RegProcedure index_equality(Relation index, int keyno) {
    Oid opfamily = index->rd_opfamily[keyno];
    Oid opcintype = index->rd_opcintype[keyno];
    Oid op = get_opfamily_member(opfamily, opcintype, opcintype, BTEqualStrategyNumber);
    if (!OidIsValid(op))
        elog(ERROR, "hb_lifecycle: no equality operator in opfamily %u", opfamily);
    return get_opcode(op);
}

// Checks a managed table's shape and fills t (allocating in keep_cxt).
void fill_target(const ConfigRow &cfg, Target &t) {
    Relation prel = table_open(cfg.parent, AccessShareLock);
    Relation lrel = try_table_open(cfg.ls, AccessShareLock);
    const char *pname = RelationGetRelationName(prel);
    if (lrel == nullptr)
        shape_error(pname, "Its last-status table no longer exists.");

    t.parent = cfg.parent;
    t.ls = cfg.ls;
    t.ls_owner = lrel->rd_rel->relowner;
    const char *devcol = NameStr(cfg.dev_col);
    const char *tscol = NameStr(cfg.ts_col);

    AttrNumber p_dev = column_of(prel, devcol, "device");
    AttrNumber p_ts = column_of(prel, tscol, "time");
    Form_pg_attribute p_dev_att = TupleDescAttr(RelationGetDescr(prel), p_dev - 1);
    if (!device_kind_of(p_dev_att->atttypid, &t.kind))
        shape_error(pname, psprintf("Its device column \"%s\" has type %s, which is not supported.",
                                    devcol, format_type_be(p_dev_att->atttypid)));
    if (TupleDescAttr(RelationGetDescr(prel), p_ts - 1)->atttypid != TIMESTAMPTZOID)
        shape_error(pname, psprintf("Its time column \"%s\" is no longer timestamptz.", tscol));

    t.ls_dev_attno = column_of(lrel, devcol, "device");
    t.ls_ts_attno = column_of(lrel, tscol, "time");
    t.ls_natts = RelationGetDescr(lrel)->natts;

    t.ls_pkey = RelationGetPrimaryKeyIndex(lrel);
    if (!OidIsValid(t.ls_pkey))
        shape_error(RelationGetRelationName(lrel),
                    psprintf("It has no primary key on \"%s\".", devcol));
    Relation pk = index_open(t.ls_pkey, AccessShareLock);
    if (IndexRelationGetNumberOfKeyAttributes(pk) != 1 ||
        pk->rd_index->indkey.values[0] != t.ls_dev_attno)
        shape_error(RelationGetRelationName(lrel),
                    psprintf("Its primary key is not on \"%s\" alone.", devcol));
    t.ls_dev_eq = index_equality(pk, 0);
    t.ls_dev_collation = pk->rd_indcollation[0];
    t.ls_dev_type = TupleDescAttr(RelationGetDescr(lrel), t.ls_dev_attno - 1)->atttypid;
    if (t.kind == DeviceKind::Text && OidIsValid(t.ls_dev_collation) &&
        !get_collation_isdeterministic(t.ls_dev_collation))
        shape_error(RelationGetRelationName(lrel),
                    "Its device column uses a nondeterministic collation.");
    index_close(pk, NoLock);

    TupleDesc ldesc = RelationGetDescr(lrel);
    t.fast_path = lrel->rd_rel->relkind == RELKIND_RELATION &&
                  lrel->rd_tableam == GetHeapamTableAmRoutine() && lrel->trigdesc == nullptr &&
                  !lrel->rd_rel->relrowsecurity &&
                  (ldesc->constr == nullptr ||
                   (ldesc->constr->num_check == 0 && !ldesc->constr->has_generated_stored));

    // The columns we write: those of ls that the parent also has.
    StringInfoData cols, set, set_excl;
    initStringInfo(&cols);
    initStringInfo(&set);
    initStringInfo(&set_excl);
    AttrNumber *attnos = static_cast<AttrNumber *>(
        MemoryContextAllocZero(keep_cxt, sizeof(AttrNumber) * ldesc->natts));
    Oid *types = static_cast<Oid *>(MemoryContextAllocZero(keep_cxt, sizeof(Oid) * ldesc->natts));
    int n = 0;
    for (int i = 0; i < ldesc->natts; ++i) {
        Form_pg_attribute la = TupleDescAttr(ldesc, i);
        if (la->attisdropped)
            continue;
        AttrNumber pa = get_attnum(cfg.parent, NameStr(la->attname));
        if (pa == InvalidAttrNumber)
            continue;
        Form_pg_attribute pat = TupleDescAttr(RelationGetDescr(prel), pa - 1);
        if (pat->atttypid != la->atttypid || pat->atttypmod != la->atttypmod)
            shape_error(
                RelationGetRelationName(lrel),
                psprintf("Column \"%s\" has type %s here but %s in \"%s\".", NameStr(la->attname),
                         format_type_with_typemod(la->atttypid, la->atttypmod),
                         format_type_with_typemod(pat->atttypid, pat->atttypmod), pname));
        const char *q = quote_identifier(NameStr(la->attname));
        appendStringInfo(&cols, "%s%s", n ? ", " : "", q);
        if (la->attnum != t.ls_dev_attno) {
            const char *sep = set.len ? ", " : "";
            appendStringInfo(&set, "%s%s", sep, q);
            appendStringInfo(&set_excl, "%sEXCLUDED.%s", sep, q);
        }
        attnos[n] = la->attnum;
        types[n] = la->atttypid;
        ++n;
    }
    t.n_cols = n;
    t.col_ls_attnos = attnos;
    t.col_types = types;
    t.col_list_sql = cache_strdup(cols.data);
    t.set_list_sql = cache_strdup(set.data);
    t.set_excluded_sql = cache_strdup(set_excl.data);
    t.parent_sql = cache_strdup(qualified_name(prel));
    t.ls_sql = cache_strdup(qualified_name(lrel));
    t.dev_sql = cache_strdup(quote_identifier(devcol));
    t.ts_sql = cache_strdup(quote_identifier(tscol));

    table_close(lrel, NoLock);
    table_close(prel, NoLock);
}

Target *build_target(const ConfigRow &cfg) {
    Target t;
    keep_cxt = cache_cxt;
    fill_target(cfg, t);
    t.tids = new core::TidCache(kTidCacheDevices);
    bool found = false;
    auto *entry = static_cast<Target *>(hash_search(target_hash, &cfg.parent, HASH_ENTER, &found));
    *entry = t;
    return entry;
}

void find_dedupe_index(Relation rel, RelInfo *ri) {
    List *indexes = RelationGetIndexList(rel);
    ListCell *lc;
    foreach (lc, indexes) {
        Relation idx = index_open(lfirst_oid(lc), AccessShareLock);
        Form_pg_index form = idx->rd_index;
        bool fits = form->indisunique && form->indisvalid && form->indisready &&
                    IndexRelationGetNumberOfKeyAttributes(idx) == 2 &&
                    RelationGetIndexExpressions(idx) == NIL &&
                    RelationGetIndexPredicate(idx) == NIL;
        if (fits) {
            AttrNumber k0 = form->indkey.values[0], k1 = form->indkey.values[1];
            fits = (k0 == ri->dev_attno && k1 == ri->ts_attno) ||
                   (k0 == ri->ts_attno && k1 == ri->dev_attno);
            if (fits) {
                ri->dedupe_index = RelationGetRelid(idx);
                for (int k = 0; k < 2; ++k) {
                    ri->dedupe_heap_attno[k] = form->indkey.values[k];
                    ri->dedupe_eq[k] = index_equality(idx, k);
                    ri->dedupe_collation[k] = idx->rd_indcollation[k];
                }
            }
        }
        index_close(idx, NoLock);
        if (OidIsValid(ri->dedupe_index))
            break;
    }
    list_free(indexes);
}

bool same_layout(TupleDesc src, const Target *t, const AttrNumber *to_ls) {
    if (src->natts != t->ls_natts || t->n_cols != src->natts)
        return false;
    Relation lrel = RelationIdGetRelation(t->ls);
    if (lrel == nullptr)
        return false;
    TupleDesc ldesc = RelationGetDescr(lrel);
    bool same = true;
    for (int a = 0; a < src->natts && same; ++a) {
        Form_pg_attribute s = TupleDescAttr(src, a), l = TupleDescAttr(ldesc, a);
        same = !s->attisdropped && !l->attisdropped && to_ls[a] == a + 1 &&
               s->atttypid == l->atttypid && s->atttypmod == l->atttypmod &&
               s->attlen == l->attlen && s->attbyval == l->attbyval && s->attalign == l->attalign;
    }
    RelationClose(lrel);
    return same;
}

RelInfo *build_rel_info(Relation rel, bool missing_ok) {
    Oid relid = RelationGetRelid(rel);
    ConfigRow cfg;
    bool managed = find_config(relid, &cfg);
    if (!managed && missing_ok)
        return nullptr;
    if (!managed)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("\"%s\" has hb_lifecycle triggers but is not a managed table",
                        RelationGetRelationName(rel)),
                 errdetail("No row of hb_config names it or one of its ancestors."),
                 errhint("Drop the hb_lifecycle_* triggers of the table, or register it with "
                         "SELECT hb_manage(...).")));

    auto *t = static_cast<Target *>(hash_search(target_hash, &cfg.parent, HASH_FIND, nullptr));
    if (t == nullptr)
        t = build_target(cfg);

    RelInfo ri;
    ri.relid = relid;
    ri.target = t;
    ri.dev_attno = column_of(rel, NameStr(cfg.dev_col), "device");
    ri.ts_attno = column_of(rel, NameStr(cfg.ts_col), "time");
    if (rel->rd_rel->relkind == RELKIND_RELATION)
        find_dedupe_index(rel, &ri);
    if (rel->trigdesc != nullptr) {
        for (int i = 0; i < rel->trigdesc->numtriggers; ++i) {
            const Trigger &trig = rel->trigdesc->triggers[i];
            if (strcmp(trig.tgname, kInsertStatementTrigger) == 0 &&
                !TRIGGER_FOR_ROW(trig.tgtype) && TRIGGER_FOR_INSERT(trig.tgtype) &&
                trig.tgenabled != TRIGGER_DISABLED)
                ri.has_insert_statement_trigger = true;
        }
    }

    ri.to_ls = static_cast<AttrNumber *>(
        MemoryContextAllocZero(cache_cxt, sizeof(AttrNumber) * Max(t->ls_natts, 1)));
    for (int i = 0; i < t->n_cols; ++i) {
        AttrNumber la = t->col_ls_attnos[i];
        char *name = get_attname(t->ls, la, false);
        AttrNumber sa = get_attnum(relid, name);
        if (sa == InvalidAttrNumber)
            continue;
        Oid stype, ltype;
        int32 stypmod, ltypmod;
        Oid scoll, lcoll;
        get_atttypetypmodcoll(relid, sa, &stype, &stypmod, &scoll);
        get_atttypetypmodcoll(t->ls, la, &ltype, &ltypmod, &lcoll);
        if (stype != ltype || stypmod != ltypmod)
            shape_error(RelationGetRelationName(rel),
                        psprintf("Column \"%s\" has type %s here but %s in the last-status table.",
                                 name, format_type_with_typemod(stype, stypmod),
                                 format_type_with_typemod(ltype, ltypmod)));
        ri.to_ls[la - 1] = sa;
    }
    ri.same_layout_as_ls = same_layout(RelationGetDescr(rel), t, ri.to_ls);

    bool found = false;
    auto *entry = static_cast<RelInfo *>(hash_search(rel_hash, &relid, HASH_ENTER, &found));
    *entry = ri;
    return entry;
}

}  // namespace

bool device_kind_of(Oid type, DeviceKind *kind) {
    switch (getBaseType(type)) {
        case INT2OID:
            *kind = DeviceKind::Int2;
            return true;
        case INT4OID:
            *kind = DeviceKind::Int4;
            return true;
        case INT8OID:
            *kind = DeviceKind::Int8;
            return true;
        case TEXTOID:
        case VARCHAROID:
            *kind = DeviceKind::Text;
            return true;
        case UUIDOID:
            *kind = DeviceKind::Uuid;
            return true;
        default:
            return false;
    }
}

SPIPlanPtr prepare_kept(Target *t, const char *sql, int nargs, Oid *types, MemoryContext caller_cxt,
                        int cursor_options) {
    SPIPlanPtr prepared = SPI_prepare_cursor(sql, nargs, types, cursor_options);
    MemoryContextSwitchTo(caller_cxt);
    if (prepared == nullptr)
        elog(ERROR, "hb_lifecycle: preparing \"%s\" failed: %s", sql,
             SPI_result_code_string(SPI_result));
    if (SPI_keepplan(prepared) != 0)
        elog(ERROR, "hb_lifecycle: SPI_keepplan failed");
    if (t->retired)
        free_with_retired(prepared);  // its generation's plans were already collected
    return prepared;
}

void free_with_retired(SPIPlanPtr plan) {
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    retired_plans = lappend(retired_plans, plan);
    MemoryContextSwitchTo(old);
}

void end_of_transaction() {
    ListCell *lc;
    foreach (lc, retired_tids)
        delete static_cast<core::TidCache *>(lfirst(lc));
    list_free(retired_tids);
    retired_tids = NIL;
    foreach (lc, retired_plans)
        SPI_freeplan(static_cast<SPIPlanPtr>(lfirst(lc)));
    list_free(retired_plans);
    retired_plans = NIL;
    foreach (lc, retired)
        MemoryContextDelete(static_cast<MemoryContext>(lfirst(lc)));
    list_free(retired);
    retired = NIL;
}

namespace {

RelInfo *lookup(Relation rel, bool missing_ok) {
    if (cache_stale) {
        retire_cache();
        cache_stale = false;
    }
    if (rel_hash == nullptr)
        create_cache();
    Oid relid = RelationGetRelid(rel);
    auto *ri = static_cast<RelInfo *>(hash_search(rel_hash, &relid, HASH_FIND, nullptr));
    if (ri != nullptr)
        return ri;
    return build_rel_info(rel, missing_ok);
}

}  // namespace

RelInfo *rel_info(Relation rel) {
    return lookup(rel, false);
}

RelInfo *rel_info_if_managed(Relation rel) {
    return lookup(rel, true);
}

void install_invalidation() {
    CacheRegisterRelcacheCallback(on_relcache_invalidation, (Datum)0);
}

void check_managed_shape(Oid relid) {
    ConfigRow cfg;
    if (!find_config(relid, &cfg) || cfg.parent != relid)
        return;
    Target t;
    keep_cxt = CurrentMemoryContext;
    fill_target(cfg, t);
}

void encode_device(DeviceKind kind, Datum value, KeyBytes *out) {
    switch (kind) {
        case DeviceKind::Int2:
        case DeviceKind::Int4:
        case DeviceKind::Int8: {
            int64 v = kind == DeviceKind::Int2   ? DatumGetInt16(value)
                      : kind == DeviceKind::Int4 ? DatumGetInt32(value)
                                                 : DatumGetInt64(value);
            core::encode_int_to(v, out->int_buf);
            out->data = out->int_buf;
            out->len = core::kIntKeyBytes;
            return;
        }
        case DeviceKind::Text: {
            struct varlena *v =
                pg_detoast_datum_packed(reinterpret_cast<struct varlena *>(DatumGetPointer(value)));
            out->data = VARDATA_ANY(v);
            out->len = VARSIZE_ANY_EXHDR(v);
            return;
        }
        case DeviceKind::Uuid:
            out->data = reinterpret_cast<const char *>(DatumGetUUIDP(value)->data);
            out->len = UUID_LEN;
            return;
    }
}

Datum decode_device(DeviceKind kind, const char *key, uint32 len) {
    switch (kind) {
        case DeviceKind::Int2:
            return Int16GetDatum(static_cast<int16>(core::decode_int({key, len})));
        case DeviceKind::Int4:
            return Int32GetDatum(static_cast<int32>(core::decode_int({key, len})));
        case DeviceKind::Int8:
            return Int64GetDatum(core::decode_int({key, len}));
        case DeviceKind::Text:
            return PointerGetDatum(cstring_to_text_with_len(key, static_cast<int>(len)));
        case DeviceKind::Uuid: {
            auto *u = static_cast<pg_uuid_t *>(palloc(sizeof(pg_uuid_t)));
            memcpy(u->data, key, UUID_LEN);
            return UUIDPGetDatum(u);
        }
    }
    pg_unreachable();
}

}  // namespace hb::sync
