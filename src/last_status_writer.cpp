// last_status_writer.cpp — see last_status_writer.hpp.
//
// Inserts (apply_newest). Fast path: when the last-status table is a plain
// heap table with no triggers, CHECK constraints, generated columns or row
// security, an existing device's row is found through the primary key with
// a dirty snapshot (which sees in-progress writers; we wait for them) and
// replaced with table_tuple_update, the way logical replication's apply
// worker writes. No executor, no SQL, one index probe and one (usually HOT)
// update per device. A concurrent writer that updated the row between our
// read and our update makes us read again and decide again; since the rule
// is "newest wins", deciding against the latest version is always correct.
// An older heartbeat does not write, but takes a KEY SHARE lock on the row:
// a concurrent recomputation (below) locks the row FOR UPDATE first, so it
// waits for us and then sees our heartbeat. A device with no row yet, and
// every device when the fast path does not apply, goes through SQL:
// INSERT ... ON CONFLICT DO UPDATE ... WHERE the stored time is older.
//
// Updates and deletes (recompute_after_change). For each device of the
// transition tables, in key order: take the device's change lock (a
// transaction-level lock of our own, so that two transactions changing
// heartbeats of one device run one after the other, while inserters are
// not blocked), read the device's current row, decide whether it may have
// been removed or changed (its time is not newer than the newest removed
// heartbeat) or bettered (an updated heartbeat is newer), lock it FOR
// UPDATE, and set it to the device's newest remaining heartbeat, read with
// a new snapshot (which sees every transaction those locks waited for), or
// remove it when none remains.
//
// All our SQL runs as the last-status table's owner (spi_env.hpp) against
// the latest snapshot, whatever the isolation level: the last status is the
// newest committed heartbeat, not the newest one the caller's snapshot
// sees, and no serialization failure can come from keeping it.
// C-style code (errors longjmp through it), except collect_changes(), which
// holds a C++ buffer and calls PostgreSQL through pg_call().
#include "pg.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

#include "core/key_codec.hpp"
#include "guard.hpp"
#include "last_status_writer.hpp"
#include "shmem.hpp"
#include "spi_env.hpp"

namespace hb::sync {
namespace {

// The number of blocks of rel when its TIDs name heap blocks, else
// InvalidBlockNumber (other access methods' TIDs need not).
BlockNumber heap_blocks(Relation rel) {
    return rel->rd_tableam == GetHeapamTableAmRoutine() ? RelationGetNumberOfBlocks(rel)
                                                        : InvalidBlockNumber;
}

// Whether a TID in `block` cannot be there among `nblocks` (from heap_blocks).
bool beyond_blocks(BlockNumber nblocks, BlockNumber block) {
    return nblocks != InvalidBlockNumber && block >= nblocks;
}

// Whether the device value `dev` encodes to the key bytes (key, len).
bool device_is(DeviceKind kind, Datum dev, const char *key, uint32 len) {
    KeyBytes bytes;
    encode_device(kind, dev, &bytes);
    return core::compare_keys({bytes.data, bytes.len}, {key, len}) == 0;
}

// ---------------------------------------------------------------- sources

// The relations heartbeats are read from during one apply, opened once.
struct Source {
    Oid relid;
    Relation rel;
    RelInfo *info;
    TupleTableSlot *slot;
    BlockNumber nblocks;  // at open: a TID beyond it is gone (TRUNCATE)
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
    // The inserting statement holds RowExclusiveLock on the relation, unless
    // the rows wait for the pre-commit flush and the transaction dropped
    // the partition since: its rows are gone, and a drop changes no device.
    Relation rel = try_table_open(relid, RowExclusiveLock);
    if (rel == nullptr)
        return nullptr;
    auto *src = static_cast<Source *>(palloc(sizeof(Source)));
    src->relid = relid;
    src->rel = rel;
    src->info = rel_info(src->rel);
    src->slot = table_slot_create(src->rel, nullptr);
    src->nblocks = heap_blocks(src->rel);
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

// Fetches the heartbeat a drained row points at, or returns nullptr when it
// is no longer there as it was offered: this transaction updated, deleted
// or truncated it after inserting it (the row at that TID, if any, must
// still be this device's heartbeat of that time), or dropped its partition
// (then *out is nullptr too).
TupleTableSlot *fetch_heartbeat(Sources *sources, const core::DrainedRow &row, Source **out) {
    Source *src = source_for(sources, row.ref.rel);
    *out = src;
    if (src == nullptr)
        return nullptr;
    if (beyond_blocks(src->nblocks, row.ref.block))
        return nullptr;
    ItemPointerData tid;
    ItemPointerSet(&tid, row.ref.block, row.ref.offset);
    if (!table_tuple_fetch_row_version(src->rel, &tid, SnapshotSelf, src->slot))
        return nullptr;
    slot_getallattrs(src->slot);
    AttrNumber dev_att = src->info->dev_attno, ts_att = src->info->ts_attno;
    bool same = !src->slot->tts_isnull[dev_att - 1] && !src->slot->tts_isnull[ts_att - 1] &&
                DatumGetTimestampTz(src->slot->tts_values[ts_att - 1]) == row.ref.ts &&
                device_is(src->info->target->kind, src->slot->tts_values[dev_att - 1], row.key,
                          row.key_len);
    if (!same) {
        ExecClearTuple(src->slot);
        return nullptr;
    }
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

// ---------------------------------------------------------------- SQL

struct SpiState {
    SpiEnv env;
    bool open = false;
};

void spi_open(Target *t, SpiState *spi) {
    if (!spi->open) {
        spi_env_begin(&spi->env, t->ls_owner);
        spi->open = true;
    }
}

void spi_close(SpiState *spi) {
    if (spi->open)
        spi_env_end(&spi->env);
    spi->open = false;
}

// A statement of target t, prepared once and kept with the cache entry.
SPIPlanPtr plan_for(Target *t, SpiState *spi, SyncPlan which) {
    SPIPlanPtr &plan = t->plans[static_cast<int>(which)];
    if (plan != nullptr)
        return plan;
    StringInfoData sql;
    initStringInfo(&sql);
    int nargs = 1;
    Oid *types = &t->ls_dev_type;
    switch (which) {
        case SyncPlan::NewestWins:
        case SyncPlan::Overwrite:
            appendStringInfo(&sql, "INSERT INTO %s AS l (%s) VALUES (", t->ls_sql, t->col_list_sql);
            for (int i = 0; i < t->n_cols; ++i)
                appendStringInfo(&sql, "%s$%d", i ? ", " : "", i + 1);
            appendStringInfo(&sql, ") ON CONFLICT (%s) DO UPDATE SET (%s) = ROW(%s)", t->dev_sql,
                             t->set_list_sql, t->set_excluded_sql);
            if (which == SyncPlan::NewestWins)
                appendStringInfo(&sql, " WHERE l.%s < EXCLUDED.%s", t->ts_sql, t->ts_sql);
            nargs = t->n_cols;
            types = t->col_types;
            break;
        case SyncPlan::Newest:
            appendStringInfo(&sql, "SELECT %s FROM %s h WHERE h.%s = $1 ORDER BY h.%s DESC LIMIT 1",
                             t->col_list_sql, t->parent_sql, t->dev_sql, t->ts_sql);
            break;
        case SyncPlan::Remove:
            appendStringInfo(&sql, "DELETE FROM %s WHERE %s = $1", t->ls_sql, t->dev_sql);
            break;
        case SyncPlan::Count:
            elog(ERROR, "hb_lifecycle: no such statement");
    }
    plan = prepare_kept(t, sql.data, nargs, types, spi->env.caller_cxt);
    return plan;
}

void run_once(SpiState *spi, SPIPlanPtr plan, Datum *values, const char *nulls, int expected) {
    CommandCounterIncrement();
    int rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot, false,
                                  true, 0);
    MemoryContextSwitchTo(spi->env.caller_cxt);
    if (rc != expected)
        elog(ERROR, "hb_lifecycle: a last-status statement failed: %s", SPI_result_code_string(rc));
}

constexpr int kMaxSerializationRetries = 20;

// Runs a kept plan against the latest snapshot (which includes this
// transaction's own changes), firing the triggers of what it writes. In
// REPEATABLE READ and SERIALIZABLE, INSERT ... ON CONFLICT refuses a row a
// concurrent transaction changed (40001) even though we read the latest
// version: the statement is run in a subtransaction and run again, with a
// new snapshot, once that transaction has finished.
void run_latest(SpiState *spi, SPIPlanPtr plan, Datum *values, const char *nulls, int expected) {
    if (!IsolationUsesXactSnapshot()) {
        run_once(spi, plan, values, nulls, expected);
        return;
    }
    for (int attempt = 0;; ++attempt) {
        MemoryContext cxt = CurrentMemoryContext;
        ResourceOwner owner = CurrentResourceOwner;
        volatile bool retry = false;
        BeginInternalSubTransaction(nullptr);
        MemoryContextSwitchTo(cxt);
        PG_TRY();
        {
            run_once(spi, plan, values, nulls, expected);
            ReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(cxt);
            CurrentResourceOwner = owner;
        }
        PG_CATCH();
        {
            // Always end the subtransaction here, whatever the error: one
            // left open would be aborted in place of the caller's.
            MemoryContextSwitchTo(cxt);
            ErrorData *edata = CopyErrorData();
            FlushErrorState();
            RollbackAndReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(cxt);
            CurrentResourceOwner = owner;
            if (edata->sqlerrcode != ERRCODE_T_R_SERIALIZATION_FAILURE ||
                attempt >= kMaxSerializationRetries)
                ReThrowError(edata);
            FreeErrorData(edata);
            retry = true;
        }
        PG_END_TRY();
        if (!retry)
            return;
    }
}

// The newest-wins upsert of one heartbeat (a new device, or the SQL path).
void spi_upsert(Target *t, SpiState *spi, Source *src, TupleTableSlot *hb) {
    spi_open(t, spi);
    SPIPlanPtr plan = plan_for(t, spi, SyncPlan::NewestWins);
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
    run_latest(spi, plan, values, nulls, SPI_OK_INSERT);
    shmem::add(SPI_processed > 0 ? shmem::kLastStatusWrites : shmem::kLastStatusStaleSkips);
    pfree(values);
    pfree(nulls);
}

// Sets device dev's row to its newest remaining heartbeat, or removes it.
// With row_locked (we hold the row FOR UPDATE) the newest overwrites the
// row; without (the device had no row), a concurrent insert may create it
// first, and the newer of the two wins.
void spi_recompute(Target *t, SpiState *spi, Datum dev, bool row_locked) {
    spi_open(t, spi);
    Datum args[1] = {dev};
    run_latest(spi, plan_for(t, spi, SyncPlan::Newest), args, nullptr, SPI_OK_SELECT);
    if (SPI_processed == 0) {
        SPI_freetuptable(SPI_tuptable);
        // Without a row of ours locked there is nothing of ours to remove;
        // a row that appeared meanwhile belongs to a concurrent insert.
        if (row_locked)
            run_latest(spi, plan_for(t, spi, SyncPlan::Remove), args, nullptr, SPI_OK_DELETE);
        return;
    }
    HeapTuple newest = SPI_copytuple(SPI_tuptable->vals[0]);
    TupleDesc desc = CreateTupleDescCopy(SPI_tuptable->tupdesc);
    SPI_freetuptable(SPI_tuptable);
    Datum *values = static_cast<Datum *>(palloc(sizeof(Datum) * Max(t->n_cols, 1)));
    char *nulls = static_cast<char *>(palloc(Max(t->n_cols, 1)));
    for (int i = 0; i < t->n_cols; ++i) {
        bool isnull = false;
        values[i] = heap_getattr(newest, i + 1, desc, &isnull);
        nulls[i] = isnull ? 'n' : ' ';
    }
    run_latest(spi, plan_for(t, spi, row_locked ? SyncPlan::Overwrite : SyncPlan::NewestWins),
               values, nulls, SPI_OK_INSERT);
}

// ---------------------------------------------------------------- the table AM

// The last-status table opened for reading its rows by device, as they are
// now (a dirty snapshot, waiting for writers in progress).
struct LsCursor {
    Relation ls;
    Relation pk;
    SnapshotData dirty;
    IndexScanDesc scan;
    IndexFetchTableData *fetch;  // for rows found through the TID cache
    BlockNumber nblocks;         // at open (the table cannot shrink while we hold our lock)
    TupleTableSlot *cur;
    ScanKeyData key;  // the scan's last key, to rescan it without a pin
    bool positioned;  // the index scan may hold pins (it returned a row)
};

void cursor_open(LsCursor *c, Target *t) {
    c->ls = table_open(t->ls, RowExclusiveLock);
    c->pk = index_open(t->ls_pkey, RowExclusiveLock);
    InitDirtySnapshot(c->dirty);
    c->scan = index_beginscan(c->ls, c->pk, &c->dirty, 1, 0);
    c->fetch = table_index_fetch_begin(c->ls);
    c->nblocks = heap_blocks(c->ls);
    c->cur = table_slot_create(c->ls, nullptr);
    c->positioned = false;
}

void cursor_close(LsCursor *c) {
    ExecDropSingleTupleTableSlot(c->cur);
    table_index_fetch_end(c->fetch);
    index_endscan(c->scan);
    index_close(c->pk, NoLock);
    table_close(c->ls, NoLock);
}

// The device's row where the TID cache says it was, if it is still there:
// the HOT chain at that TID has a version visible to a dirty snapshot, and
// it is this device's. Waits for a writer in progress and looks again.
bool find_cached(LsCursor *c, Target *t, const char *key, uint32 len) {
    uint64 packed = 0;
    if (t->tids == nullptr || !t->tids->find({key, len}, &packed))
        return false;
    ItemPointerData tid;
    for (;;) {
        // From the chain's root each time: the fetch moves tid to the member
        // it returned.
        ItemPointerSet(&tid, core::TidCache::block_of(packed), core::TidCache::offset_of(packed));
        bool call_again = false;
        if (beyond_blocks(c->nblocks, ItemPointerGetBlockNumber(&tid)) ||
            !table_index_fetch_tuple(c->fetch, &tid, &c->dirty, c->cur, &call_again, nullptr))
            break;
        bool isnull = false;
        Datum dev = slot_getattr(c->cur, t->ls_dev_attno, &isnull);
        if (isnull || !device_is(t->kind, dev, key, len))
            break;
        TransactionId xwait = TransactionIdIsValid(c->dirty.xmin) ? c->dirty.xmin : c->dirty.xmax;
        if (!TransactionIdIsValid(xwait))
            return true;
        ItemPointerData at = c->cur->tts_tid;
        ExecClearTuple(c->cur);
        table_index_fetch_reset(c->fetch);
        XactLockTableWait(xwait, c->ls, &at, XLTW_Update);
    }
    ExecClearTuple(c->cur);
    table_index_fetch_reset(c->fetch);
    t->tids->forget({key, len});
    return false;
}

// Loads the device's current row into c->cur; false when it has none.
bool cursor_find(LsCursor *c, Target *t, Datum dev, const char *keyb, uint32 len) {
    if (find_cached(c, t, keyb, len))
        return true;
    ScanKeyData &key = c->key;
    ScanKeyInit(&key, 1, BTEqualStrategyNumber, t->ls_dev_eq, dev);
    key.sk_collation = t->ls_dev_collation;
    for (;;) {
        index_rescan(c->scan, &key, 1, nullptr, 0);
        c->positioned = true;
        if (!index_getnext_slot(c->scan, ForwardScanDirection, c->cur))
            return false;
        TransactionId xwait = TransactionIdIsValid(c->dirty.xmin) ? c->dirty.xmin : c->dirty.xmax;
        if (!TransactionIdIsValid(xwait)) {
            if (t->tids != nullptr)
                t->tids->put({keyb, len}, core::TidCache::pack(
                                              ItemPointerGetBlockNumber(&c->scan->xs_heaptid),
                                              ItemPointerGetOffsetNumber(&c->scan->xs_heaptid)));
            return true;
        }
        // Hold no buffer pin while waiting.
        ItemPointerData tid = c->cur->tts_tid;
        ExecClearTuple(c->cur);
        index_rescan(c->scan, &key, 1, nullptr, 0);
        XactLockTableWait(xwait, c->ls, &tid, XLTW_Update);
    }
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

// Drops every buffer pin the cursor holds (before anything that can wait).
void cursor_release(LsCursor *c) {
    ExecClearTuple(c->cur);
    table_index_fetch_reset(c->fetch);
    if (c->positioned)
        index_rescan(c->scan, &c->key, 1, nullptr, 0);
    c->positioned = false;
}

bool own_version(TupleTableSlot *slot) {
    bool should_free = false;
    HeapTuple tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
    bool mine = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(tuple->t_data));
    if (should_free)
        heap_freetuple(tuple);
    return mine;
}

// ---------------------------------------------------------------- change locks

// Change locks: transaction-level locks that make two transactions changing
// heartbeats of one device run one after the other (inserters never take
// them). They live in the advisory lock space, keyed by (database, table
// oid, bucket, "HB"), so that they can never collide with
// pg_advisory_lock(). Devices hash into a fixed number of buckets per
// table, so that a statement changing a whole fleet holds a bounded number
// of locks; a statement takes all its buckets in ascending order before it
// locks any row, so that two of them cannot deadlock on buckets.
constexpr uint16 kChangeLockTag = 0x4842;  // "HB"
constexpr uint32 kChangeBuckets = 128;

uint32 change_bucket(const char *key, uint32 len) {
    return hash_bytes(reinterpret_cast<const unsigned char *>(key), static_cast<int>(len)) %
           kChangeBuckets;
}

void lock_change_bucket(Target *t, uint32 bucket) {
    LOCKTAG tag;
    SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, t->ls, bucket, kChangeLockTag);
    (void)LockAcquire(&tag, ExclusiveLock, false, false);
}

// Sets one device to its newest remaining heartbeat under its change lock
// (the caller holds it) and a FOR UPDATE lock on its row.
void recompute_device(Target *t, LsCursor *c, SpiState *spi, Datum dev, const char *key,
                      uint32 len) {
    cursor_release(c);
    Snapshot snapshot = GetLatestSnapshot();
    for (;;) {
        bool found = cursor_find(c, t, dev, key, len);
        if (found) {
            TM_FailureData tmfd;
            TM_Result r = table_tuple_lock(c->ls, &c->cur->tts_tid, snapshot, c->cur,
                                           GetCurrentCommandId(false), LockTupleExclusive,
                                           LockWaitBlock, 0, &tmfd);
            if (r == TM_Updated || r == TM_Deleted)
                continue;
            if (r != TM_Ok && r != TM_SelfModified)
                elog(ERROR, "hb_lifecycle: unexpected result %d locking a last-status row", r);
            ExecClearTuple(c->cur);  // no pin held while SQL runs
        }
        spi_recompute(t, spi, dev, found);
        shmem::add(shmem::kLastStatusRecomputes);
        return;
    }
}

// ---------------------------------------------------------------- changes

// Per device changed by an UPDATE or DELETE statement: the newest time it
// removed (old side) and the newest it added (new side of an UPDATE).
struct DeviceChange {
    const char *key;
    uint32 key_len;
    bool removed;
    TimestampTz newest_removed;
    bool added;
    TimestampTz newest_added;
};

constexpr uint32 kRemovedSide = 1;
constexpr uint32 kAddedSide = 2;

void read_side(Tuplestorestate *store, Relation rel, RelInfo *ri, uint32 side,
               core::LatestBuffer &buf) {
    TupleTableSlot *slot = pg_call([&] {
        TupleTableSlot *s = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);
        int ptr = tuplestore_alloc_read_pointer(store, EXEC_FLAG_REWIND);
        tuplestore_select_read_pointer(store, ptr);
        tuplestore_rescan(store);
        return s;
    });
    for (;;) {
        bool more = pg_call([&] {
            if (!tuplestore_gettupleslot(store, true, false, slot))
                return false;
            bool dev_null = false, ts_null = false;
            Datum dev = slot_getattr(slot, ri->dev_attno, &dev_null);
            Datum ts = slot_getattr(slot, ri->ts_attno, &ts_null);
            if (!dev_null && !ts_null) {
                KeyBytes key;
                encode_device(ri->target->kind, dev, &key);
                core::RowRef ref;
                ref.ts = DatumGetTimestampTz(ts);
                buf.offer(side, 1, {key.data, key.len}, ref);
            }
            return true;
        });
        if (!more)
            break;
    }
    pg_call([&] { ExecDropSingleTupleTableSlot(slot); });
}

// The devices of the transition tables, and of the statement's buffered
// inserts (extra: rows an UPDATE moved to another partition, or left by an
// earlier statement that had no flush), one entry each, in key order.
std::size_t collect_changes(TriggerData *td, RelInfo *ri, bool is_update,
                            const core::DrainedRow *extra, std::size_t nextra, DeviceChange **out) {
    core::LatestBuffer buf;
    read_side(td->tg_oldtable, td->tg_relation, ri, kRemovedSide, buf);
    if (is_update)
        read_side(td->tg_newtable, td->tg_relation, ri, kAddedSide, buf);
    for (std::size_t i = 0; i < nextra; ++i)
        buf.offer(kAddedSide, 1, {extra[i].key, extra[i].key_len}, extra[i].ref);
    const core::LatestBuffer::Extent extent = buf.top_extent();
    auto *rows = pg_call([&] {
        return static_cast<core::DrainedRow *>(
            palloc_extended(sizeof(core::DrainedRow) * Max(extent.rows, 1), MCXT_ALLOC_HUGE));
    });
    char *arena = pg_call([&] {
        return static_cast<char *>(palloc_extended(Max(extent.key_bytes, 1), MCXT_ALLOC_HUGE));
    });
    auto *changes = pg_call([&] {
        return static_cast<DeviceChange *>(
            palloc_extended(sizeof(DeviceChange) * Max(extent.rows, 1), MCXT_ALLOC_HUGE));
    });
    // Sorted by (side, key): merge the removed run and the added run.
    const std::size_t n = buf.drain_top(rows, arena);
    std::size_t split = 0;
    while (split < n && rows[split].target == kRemovedSide)
        ++split;
    std::size_t i = 0, j = split, m = 0;
    while (i < split || j < n) {
        int c = i >= split ? 1
                : j >= n   ? -1
                           : core::compare_keys({rows[i].key, rows[i].key_len},
                                                {rows[j].key, rows[j].key_len});
        DeviceChange &ch = changes[m++];
        ch = DeviceChange{};
        const core::DrainedRow &r = c <= 0 ? rows[i] : rows[j];
        ch.key = r.key;
        ch.key_len = r.key_len;
        if (c <= 0) {
            ch.removed = true;
            ch.newest_removed = rows[i++].ref.ts;
        }
        if (c >= 0) {
            ch.added = true;
            ch.newest_added = rows[j++].ref.ts;
        }
    }
    *out = changes;
    return m;
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
    LsCursor c;
    cursor_open(&c, t);
    if (t->fast_path)
        CheckCmdReplicaIdentity(c.ls, CMD_UPDATE);
    TupleDesc ldesc = RelationGetDescr(c.ls);
    TupleTableSlot *next = MakeSingleTupleTableSlot(ldesc, &TTSOpsVirtual);
    EState *estate = nullptr;
    ResultRelInfo *rri = nullptr;
    uint64 writes = 0, stale = 0;
    // Heap updates and locks do not read through it (table_tuple_lock uses
    // it only to find a newer version, which we never ask for).
    Snapshot snapshot = GetLatestSnapshot();

    for (std::size_t i = 0; i < n; ++i) {
        const core::DrainedRow &row = rows[i];
        Datum dev = decode_device(t->kind, row.key, row.key_len);
        Source *src = nullptr;
        TupleTableSlot *hb = fetch_heartbeat(&sources, row, &src);
        if (hb == nullptr && src == nullptr)
            continue;  // its partition was dropped (see source_for)
        if (hb == nullptr) {
            // The newest heartbeat this statement offered is gone again
            // (changed or truncated by this transaction); an older one it
            // offered may be the device's newest now: ask the table.
            cursor_release(&c);
            lock_change_bucket(t, change_bucket(row.key, row.key_len));
            recompute_device(t, &c, &spi, dev, row.key, row.key_len);
            continue;
        }
        if (!t->fast_path) {
            cursor_release(&c);
            ExecMaterializeSlot(hb);  // no pin held while SQL runs
            spi_upsert(t, &spi, src, hb);
            continue;
        }
        for (;;) {
            if (!cursor_find(&c, t, dev, row.key, row.key_len)) {
                cursor_release(&c);
                ExecMaterializeSlot(hb);
                spi_upsert(t, &spi, src, hb);
                break;
            }
            bool isnull = false;
            TimestampTz cur_ts = DatumGetTimestampTz(slot_getattr(c.cur, t->ls_ts_attno, &isnull));
            TM_FailureData tmfd;
            if (!isnull && row.ref.ts <= cur_ts) {
                if (own_version(c.cur)) {
                    ++stale;
                    break;
                }
                // Also lock a newer version an update in progress is making,
                // or a recomputation waiting behind that update would miss us.
                TM_Result r =
                    table_tuple_lock(c.ls, &c.cur->tts_tid, snapshot, c.cur,
                                     GetCurrentCommandId(false), LockTupleKeyShare, LockWaitBlock,
                                     TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS, &tmfd);
                if (r == TM_Ok || r == TM_SelfModified) {
                    ++stale;
                    break;
                }
                if (r == TM_Updated || r == TM_Deleted)
                    continue;  // read the new version and decide again
                elog(ERROR, "hb_lifecycle: unexpected result %d locking a last-status row", r);
            }

            TupleTableSlot *newrow = hb;
            if (!src->info->same_layout_as_ls) {
                // Columns of the last-status table the heartbeats table
                // lacks keep their values; the others are copied over.
                slot_getallattrs(c.cur);
                ExecClearTuple(next);
                for (int a = 0; a < ldesc->natts; ++a) {
                    AttrNumber sa = src->info->to_ls[a];
                    if (sa > 0) {
                        next->tts_values[a] = hb->tts_values[sa - 1];
                        next->tts_isnull[a] = hb->tts_isnull[sa - 1];
                    } else {
                        next->tts_values[a] = c.cur->tts_values[a];
                        next->tts_isnull[a] = c.cur->tts_isnull[a];
                    }
                }
                ExecStoreVirtualTuple(next);
                newrow = next;
            }
            check_not_null(c.ls, newrow);

            LockTupleMode lockmode;
            bool update_indexes = false;
            TM_Result r = table_tuple_update(c.ls, &c.cur->tts_tid, newrow,
                                             GetCurrentCommandId(true), snapshot, InvalidSnapshot,
                                             true, &tmfd, &lockmode, &update_indexes);
            if (r == TM_Updated || r == TM_Deleted) {
                // The update may have materialised the heartbeat's slot.
                if ((hb = fetch_heartbeat(&sources, row, &src)) == nullptr)
                    elog(ERROR, "hb_lifecycle: a heartbeat vanished during its statement");
                continue;
            }
            if (r != TM_Ok)
                elog(ERROR, "hb_lifecycle: unexpected result %d updating a last-status row", r);
            if (update_indexes && RelationGetForm(c.ls)->relhasindex) {
                if (estate == nullptr)
                    estate = index_insert_state(t, c.ls, &rri);
                List *recheck =
                    ExecInsertIndexTuples(rri, newrow, estate, true, false, nullptr, NIL);
                list_free(recheck);
                ResetPerTupleExprContext(estate);
            }
            ++writes;
            break;
        }
    }

    if (estate != nullptr) {
        ExecCloseIndices(rri);
        FreeExecutorState(estate);
    }
    ExecDropSingleTupleTableSlot(next);
    cursor_close(&c);
    close_sources(&sources);
    spi_close(&spi);
    shmem::add(shmem::kLastStatusWrites, writes);
    shmem::add(shmem::kLastStatusStaleSkips, stale);
}

void recompute_after_change(Target *t, TriggerData *td, bool is_update,
                            const core::DrainedRow *extra, std::size_t nextra) {
    MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "hb_lifecycle recompute",
                                              ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(cxt);
    RelInfo *ri = rel_info(td->tg_relation);
    DeviceChange *changes = nullptr;
    std::size_t n = collect_changes(td, ri, is_update, extra, nextra, &changes);

    // Every bucket this statement needs, in ascending order, before any row.
    bool buckets[kChangeBuckets] = {};
    for (std::size_t i = 0; i < n; ++i)
        buckets[change_bucket(changes[i].key, changes[i].key_len)] = true;
    for (uint32 b = 0; b < kChangeBuckets; ++b)
        if (buckets[b])
            lock_change_bucket(t, b);

    CommandCounterIncrement();
    LsCursor c;
    cursor_open(&c, t);
    SpiState spi;
    for (std::size_t i = 0; i < n; ++i) {
        const DeviceChange &ch = changes[i];
        Datum dev = decode_device(t->kind, ch.key, ch.key_len);
        bool candidate = ch.added;  // a device with no row yet gets one
        if (cursor_find(&c, t, dev, ch.key, ch.key_len)) {
            bool isnull = false;
            TimestampTz cur = DatumGetTimestampTz(slot_getattr(c.cur, t->ls_ts_attno, &isnull));
            candidate = isnull || (ch.removed && cur <= ch.newest_removed) ||
                        (ch.added && cur < ch.newest_added);
        }
        if (candidate)
            recompute_device(t, &c, &spi, dev, ch.key, ch.key_len);
    }
    cursor_close(&c);
    spi_close(&spi);
    MemoryContextSwitchTo(old);
    MemoryContextDelete(cxt);
}

void lock_all_changes(Oid ls) {
    for (uint32 bucket = 0; bucket < kChangeBuckets; bucket++) {
        LOCKTAG tag;
        SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, ls, bucket, kChangeLockTag);
        (void)LockAcquire(&tag, ExclusiveLock, false, false);
    }
}

}  // namespace hb::sync
