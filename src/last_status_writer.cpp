// last_status_writer.cpp — see last_status_writer.hpp.
//
// Fast path: when the last-status table is a plain heap table with no
// triggers, CHECK constraints, generated columns or row security, an
// existing device's row is found through the primary key with a dirty
// snapshot (which sees in-progress writers; we wait for them) and replaced
// with table_tuple_update, the way logical replication's apply worker
// writes. No executor, no SQL, one index probe and one (usually HOT) update
// per device. A concurrent writer that updated the row between our read and
// our update makes us read again and decide again; since the rule is
// "newest wins", retrying with the latest version is always correct.
//
// An older heartbeat does not write, but takes a KEY SHARE lock on the row:
// a concurrent DELETE of the device's newest heartbeat locks the row FOR
// UPDATE before it recomputes, so it waits for us and then sees our row.
//
// A device with no row yet, and every device when the fast path does not
// apply, goes through SPI: INSERT ... ON CONFLICT DO UPDATE ... WHERE the
// stored time is older, run as the table's owner with a safe search_path.
#include "pg.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "access/sysattr.h"
#include "catalog/pg_class.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include "last_status_writer.hpp"
#include "shmem.hpp"
#include "spi_env.hpp"

namespace hb::sync {
namespace {

// The relations heartbeats are read from during one apply, opened once.
struct Source {
    Oid relid;
    Relation rel;
    RelInfo *info;
    TupleTableSlot *slot;
};

struct Sources {
    List *items = NIL;       // Source*
    Source *last = nullptr;  // most rows of a batch come from one partition
};

Source *source_for(Sources *s, Oid relid) {
    if (s->last != nullptr && s->last->relid == relid)
        return s->last;
    ListCell *lc;
    foreach (lc, s->items) {
        auto *src = static_cast<Source *>(lfirst(lc));
        if (src->relid == relid)
            return s->last = src;
    }
    auto *src = static_cast<Source *>(palloc(sizeof(Source)));
    src->relid = relid;
    // The inserting statement holds RowExclusiveLock on the relation.
    src->rel = table_open(relid, RowExclusiveLock);
    src->info = rel_info(src->rel);
    src->slot = table_slot_create(src->rel, nullptr);
    s->items = lappend(s->items, src);
    return s->last = src;
}

void close_sources(Sources *s) {
    ListCell *lc;
    foreach (lc, s->items) {
        auto *src = static_cast<Source *>(lfirst(lc));
        ExecDropSingleTupleTableSlot(src->slot);
        table_close(src->rel, NoLock);
    }
    list_free_deep(s->items);
    s->items = NIL;
    s->last = nullptr;
}

// Fetches the heartbeat a drained row points at. The row was inserted by
// this transaction, so it is there whatever the snapshot.
TupleTableSlot *fetch_heartbeat(Sources *sources, const core::RowRef &ref, Source **out) {
    Source *src = source_for(sources, ref.rel);
    ItemPointerData tid;
    ItemPointerSet(&tid, ref.block, ref.offset);
    if (!table_tuple_fetch_row_version(src->rel, &tid, SnapshotAny, src->slot))
        elog(ERROR, "hb_lifecycle: heartbeat (%u,%u) of \"%s\" vanished before its statement ended",
             ref.block, ref.offset, RelationGetRelationName(src->rel));
    slot_getallattrs(src->slot);
    *out = src;
    return src->slot;
}

void check_not_null(Relation ls, TupleTableSlot *slot) {
    TupleDesc desc = RelationGetDescr(ls);
    if (desc->constr == nullptr || !desc->constr->has_not_null)
        return;
    for (int a = 0; a < desc->natts; ++a) {
        Form_pg_attribute att = TupleDescAttr(desc, a);
        if (att->attnotnull && !att->attisdropped && slot->tts_isnull[a])
            ereport(ERROR,
                    (errcode(ERRCODE_NOT_NULL_VIOLATION),
                     errmsg("null value in column \"%s\" of relation \"%s\" violates not-null "
                            "constraint",
                            NameStr(att->attname), RelationGetRelationName(ls)),
                     errdetail("The newest heartbeat of a device has no value for it."),
                     errhint("Drop the NOT NULL constraint of the last-status table, or make the "
                             "heartbeats table require the column too."),
                     errtablecol(ls, a + 1)));
    }
}

// SPI: the newest-wins upsert of one heartbeat, prepared once per target.
struct SpiState {
    SpiEnv env;
    bool open = false;
};

void spi_upsert(Target *t, SpiState *spi, Source *src, TupleTableSlot *hb) {
    if (!spi->open) {
        spi_env_begin(&spi->env, t->ls_owner);
        spi->open = true;
    }
    if (t->upsert_plan == nullptr) {
        StringInfoData sql;
        initStringInfo(&sql);
        appendStringInfo(&sql, "INSERT INTO %s AS l (%s) VALUES (", t->ls_sql, t->col_list_sql);
        for (int i = 0; i < t->n_cols; ++i)
            appendStringInfo(&sql, "%s$%d", i ? ", " : "", i + 1);
        appendStringInfo(&sql,
                         ") ON CONFLICT (%s) DO UPDATE SET (%s) = ROW(%s) "
                         "WHERE l.%s < EXCLUDED.%s",
                         t->dev_sql, t->set_list_sql, t->set_excluded_sql, t->ts_sql, t->ts_sql);
        SPIPlanPtr plan = SPI_prepare(sql.data, t->n_cols, t->col_types);
        MemoryContextSwitchTo(spi->env.caller_cxt);
        if (plan == nullptr)
            elog(ERROR, "hb_lifecycle: preparing the last-status upsert failed: %s",
                 SPI_result_code_string(SPI_result));
        if (SPI_keepplan(plan) != 0)
            elog(ERROR, "hb_lifecycle: SPI_keepplan failed");
        MemoryContextSwitchTo(spi->env.caller_cxt);
        t->upsert_plan = plan;
    }
    Datum *values = static_cast<Datum *>(palloc(sizeof(Datum) * Max(t->n_cols, 1)));
    char *nulls = static_cast<char *>(palloc(Max(t->n_cols, 1)));
    for (int i = 0; i < t->n_cols; ++i) {
        AttrNumber sa = src->info->to_ls[t->col_ls_attnos[i] - 1];
        if (sa > 0 && !hb->tts_isnull[sa - 1]) {
            values[i] = hb->tts_values[sa - 1];
            nulls[i] = ' ';
        } else {
            values[i] = (Datum)0;
            nulls[i] = 'n';
        }
    }
    spi_run_plan(&spi->env, t->upsert_plan, values, nulls, SPI_OK_INSERT);
    shmem::add(SPI_processed > 0 ? shmem::kLastStatusWrites : shmem::kLastStatusStaleSkips);
    pfree(values);
    pfree(nulls);
}

// What ExecInsertIndexTuples needs for a non-HOT update: an EState whose
// range table names the last-status table with every column but the device
// as updated, so that PostgreSQL knows the primary key value is unchanged
// (which lets bottom-up deletion clean the key's old index entries).
EState *index_insert_state(Target *t, Relation ls, ResultRelInfo **rri) {
    EState *estate = CreateExecutorState();
    RangeTblEntry *rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = RelationGetRelid(ls);
    rte->relkind = RELKIND_RELATION;
    rte->rellockmode = RowExclusiveLock;
    TupleDesc desc = RelationGetDescr(ls);
    for (int a = 1; a <= desc->natts; ++a)
        if (a != t->ls_dev_attno && !TupleDescAttr(desc, a - 1)->attisdropped)
            rte->updatedCols =
                bms_add_member(rte->updatedCols, a - FirstLowInvalidHeapAttributeNumber);
    MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
    ExecInitRangeTable(estate, list_make1(rte));
    MemoryContextSwitchTo(old);
    *rri = makeNode(ResultRelInfo);
    InitResultRelInfo(*rri, ls, 1, nullptr, 0);
    ExecOpenIndices(*rri, false);
    return estate;
}

bool own_version(TupleTableSlot *slot) {
    bool should_free = false;
    HeapTuple tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
    bool mine = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(tuple->t_data));
    if (should_free)
        heap_freetuple(tuple);
    return mine;
}

}  // namespace

void apply_newest(Target *t, const core::DrainedRow *rows, std::size_t n) {
    if (n == 0)
        return;
    // Make the writes of earlier commands (and of this statement's SPI
    // calls) visible, and get a command id of our own.
    CommandCounterIncrement();

    Sources sources;
    SpiState spi;
    if (!t->fast_path) {
        for (std::size_t i = 0; i < n; ++i) {
            Source *src;
            TupleTableSlot *hb = fetch_heartbeat(&sources, rows[i].ref, &src);
            spi_upsert(t, &spi, src, hb);
        }
        spi_env_end(&spi.env);
        close_sources(&sources);
        return;
    }

    Relation ls = table_open(t->ls, RowExclusiveLock);
    Relation pk = index_open(t->ls_pkey, RowExclusiveLock);
    SnapshotData dirty;
    InitDirtySnapshot(dirty);
    IndexScanDesc scan = index_beginscan(ls, pk, &dirty, 1, 0);
    TupleTableSlot *cur = table_slot_create(ls, nullptr);
    TupleDesc ldesc = RelationGetDescr(ls);
    TupleTableSlot *next = MakeSingleTupleTableSlot(ldesc, &TTSOpsVirtual);
    EState *estate = nullptr;
    ResultRelInfo *rri = nullptr;
    uint64 writes = 0, stale = 0;
    // Heap updates and locks do not read through it (table_tuple_lock uses
    // it only to find a newer version, which we never ask for).
    Snapshot snapshot = GetLatestSnapshot();

    for (std::size_t i = 0; i < n; ++i) {
        const core::DrainedRow &row = rows[i];
        ScanKeyData key;
        ScanKeyInit(&key, 1, BTEqualStrategyNumber, t->ls_dev_eq,
                    decode_device(t->kind, row.key, row.key_len));
        key.sk_collation = t->ls_dev_collation;
        bool missing = false;
        for (;;) {
            index_rescan(scan, &key, 1, nullptr, 0);
            if (!index_getnext_slot(scan, ForwardScanDirection, cur)) {
                missing = true;
                break;
            }
            TransactionId xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
            if (TransactionIdIsValid(xwait)) {
                XactLockTableWait(xwait, ls, &cur->tts_tid, XLTW_Update);
                continue;
            }
            bool isnull = false;
            TimestampTz cur_ts = DatumGetTimestampTz(slot_getattr(cur, t->ls_ts_attno, &isnull));
            TM_FailureData tmfd;
            if (!isnull && row.ref.ts <= cur_ts) {
                if (own_version(cur)) {
                    ++stale;
                    break;
                }
                TM_Result r = table_tuple_lock(ls, &cur->tts_tid, snapshot, cur,
                                               GetCurrentCommandId(false), LockTupleKeyShare,
                                               LockWaitBlock, 0, &tmfd);
                if (r == TM_Ok || r == TM_SelfModified) {
                    ++stale;
                    break;
                }
                if (r == TM_Updated || r == TM_Deleted)
                    continue;  // read the new version and decide again
                elog(ERROR, "hb_lifecycle: unexpected result %d locking a last-status row", r);
            }

            Source *src;
            TupleTableSlot *hb = fetch_heartbeat(&sources, row.ref, &src);
            TupleTableSlot *newrow = hb;
            if (!src->info->same_layout_as_ls) {
                // Columns of the last-status table the heartbeats table
                // lacks keep their values; the others are copied over.
                slot_getallattrs(cur);
                ExecClearTuple(next);
                for (int a = 0; a < ldesc->natts; ++a) {
                    AttrNumber sa = src->info->to_ls[a];
                    if (sa > 0) {
                        next->tts_values[a] = hb->tts_values[sa - 1];
                        next->tts_isnull[a] = hb->tts_isnull[sa - 1];
                    } else {
                        next->tts_values[a] = cur->tts_values[a];
                        next->tts_isnull[a] = cur->tts_isnull[a];
                    }
                }
                ExecStoreVirtualTuple(next);
                newrow = next;
            }
            check_not_null(ls, newrow);

            LockTupleMode lockmode;
            bool update_indexes = false;
            TM_Result r = table_tuple_update(ls, &cur->tts_tid, newrow, GetCurrentCommandId(true),
                                             snapshot, InvalidSnapshot, true, &tmfd, &lockmode,
                                             &update_indexes);
            if (r == TM_Updated || r == TM_Deleted)
                continue;
            if (r != TM_Ok)
                elog(ERROR, "hb_lifecycle: unexpected result %d updating a last-status row", r);
            if (update_indexes && RelationGetForm(ls)->relhasindex) {
                if (estate == nullptr)
                    estate = index_insert_state(t, ls, &rri);
                List *recheck =
                    ExecInsertIndexTuples(rri, newrow, estate, true, false, nullptr, NIL);
                list_free(recheck);
                ResetPerTupleExprContext(estate);
            }
            ++writes;
            break;
        }
        if (missing) {
            Source *src;
            TupleTableSlot *hb = fetch_heartbeat(&sources, row.ref, &src);
            spi_upsert(t, &spi, src, hb);
        }
    }

    if (estate != nullptr) {
        ExecCloseIndices(rri);
        FreeExecutorState(estate);
    }
    ExecDropSingleTupleTableSlot(next);
    ExecDropSingleTupleTableSlot(cur);
    index_endscan(scan);
    index_close(pk, NoLock);
    table_close(ls, NoLock);
    if (spi.open)
        spi_env_end(&spi.env);
    close_sources(&sources);
    shmem::add(shmem::kLastStatusWrites, writes);
    shmem::add(shmem::kLastStatusStaleSkips, stale);
}

void recompute_after_change(Target *t, TriggerData *td, bool is_update) {
    const char *order = t->text_device ? " COLLATE \"C\"" : "";
    const char *dev = t->dev_sql;
    const char *ts = t->ts_sql;

    SpiEnv env;
    spi_env_begin(&env, t->ls_owner);
    if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
        elog(ERROR, "hb_lifecycle: SPI_register_trigger_data failed");

    // Devices whose current row may have been removed or changed: their
    // stored time is not newer than the newest removed heartbeat.
    StringInfoData candidates;
    initStringInfo(&candidates);
    appendStringInfo(&candidates,
                     "SELECT l.%s FROM %s l JOIN (SELECT o.%s, max(o.%s) AS mts FROM hb_old o "
                     "GROUP BY o.%s) o ON l.%s = o.%s WHERE l.%s <= o.mts",
                     dev, t->ls_sql, dev, ts, dev, dev, dev, ts);

    // 1. Lock them, in key order. Every inserter of an older heartbeat holds
    //    a KEY SHARE lock and every inserter of a newer one an update lock on
    //    the row, so once we hold these locks all of them have committed.
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql, "%s ORDER BY l.%s%s FOR UPDATE OF l", candidates.data, dev, order);
    spi_run(&env, sql.data, SPI_OK_SELECT);
    uint64 locked = SPI_processed;

    // 2. Recompute them from a new snapshot, which sees those commits.
    if (locked > 0) {
        resetStringInfo(&sql);
        appendStringInfo(&sql,
                         "WITH d AS (%s), "
                         "n AS (SELECT h.* FROM d CROSS JOIN LATERAL "
                         "(SELECT * FROM %s h WHERE h.%s = d.%s ORDER BY h.%s DESC LIMIT 1) h), "
                         "gone AS (DELETE FROM %s l USING d WHERE l.%s = d.%s "
                         "AND NOT EXISTS (SELECT 1 FROM n WHERE n.%s = d.%s) RETURNING 1) "
                         "UPDATE %s l SET (%s) = ROW(%s) FROM n WHERE l.%s = n.%s",
                         candidates.data, t->parent_sql, dev, dev, ts, t->ls_sql, dev, dev, dev,
                         dev, t->ls_sql, t->set_list_sql, t->set_n_sql, dev, dev);
        spi_run(&env, sql.data, SPI_OK_UPDATE);
        shmem::add(shmem::kLastStatusRecomputes, locked);
    }

    // 3. The new side of an UPDATE is a batch of heartbeats like any other.
    if (is_update) {
        resetStringInfo(&sql);
        appendStringInfo(&sql,
                         "INSERT INTO %s AS l (%s) SELECT DISTINCT ON (n.%s%s) %s FROM hb_new n "
                         "ORDER BY n.%s%s, n.%s DESC "
                         "ON CONFLICT (%s) DO UPDATE SET (%s) = ROW(%s) WHERE l.%s < EXCLUDED.%s",
                         t->ls_sql, t->col_list_sql, dev, order, t->n_list_sql, dev, order, ts, dev,
                         t->set_list_sql, t->set_excluded_sql, ts, ts);
        spi_run(&env, sql.data, SPI_OK_INSERT);
        shmem::add(shmem::kLastStatusWrites, SPI_processed);
    }
    spi_env_end(&env);
}

}  // namespace hb::sync
