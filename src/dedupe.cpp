// dedupe.cpp — NULL checks and retry detection for incoming heartbeats.
//
// A retry is found through the partition's unique (device, time) index with
// a dirty snapshot, which also sees heartbeats of transactions still in
// progress: for those we wait, as the unique check itself would, and then
// look again, so that an application retrying while its first attempt is
// still committing gets no error either.
//
// Opening an index scan costs more than the probe itself (btbeginscan
// allocates ~27 kB), so a statement keeps one scan per partition open
// between rows and closes them all in its AFTER STATEMENT trigger
// (dedupe_close_scans), under the resource owner that opened each. A scan
// is kept only for a partition that carries that statement trigger, so that
// some statement trigger always closes it. Between probes a scan holds no
// buffer pin. A subtransaction abort forgets the scans it opened (its
// resource owner released them) and any scan interrupted mid-probe.
// C-style code.
#include "pg.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
}

#include "dedupe.hpp"
#include "guc.hpp"
#include "shmem.hpp"

namespace hb::sync {
namespace {

struct ProbeScan {
    Oid relid;
    Relation index;
    IndexScanDesc scan;
    TupleTableSlot *slot;
    ResourceOwner owner;
    SubTransactionId subid;
    // The index AM allocates lazily during a scan (btree's killedItems, for
    // one), in whatever context is current: every call on the scan runs in
    // this one, which lives as long as the scan.
    MemoryContext cxt;
};

constexpr int kMaxScans = 16;
ProbeScan scans[kMaxScans];
int nscans = 0;
MemoryContext scan_cxt = nullptr;  // child of TopTransactionContext
ProbeScan *probing = nullptr;      // the scan a probe is using right now
SnapshotData dirty_snapshot;       // scans point at it; re-initialised per probe

[[noreturn]] void missing_value(Relation rel, RelInfo *ri, AttrNumber attno, const char *what) {
    const char *col = NameStr(TupleDescAttr(RelationGetDescr(rel), attno - 1)->attname);
    ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                    errmsg("heartbeat without %s: column \"%s\" is NULL", what, col),
                    errdetail("%s is managed by hb_lifecycle; every heartbeat needs a device and a "
                              "time, and nothing of this row was stored.",
                              ri->target->parent_sql),
                    errhint("Send a value for \"%s\" in the INSERT or COPY.", col),
                    errtablecol(rel, attno)));
    pg_unreachable();
}

void close_scan(ProbeScan *p) {
    ResourceOwner saved = CurrentResourceOwner;
    CurrentResourceOwner = p->owner;
    MemoryContext old = MemoryContextSwitchTo(p->cxt);
    ExecDropSingleTupleTableSlot(p->slot);
    index_endscan(p->scan);
    index_close(p->index, NoLock);
    MemoryContextSwitchTo(old);
    CurrentResourceOwner = saved;
}

ProbeScan *open_scan(Relation rel, RelInfo *ri, ProbeScan *p, MemoryContext cxt) {
    MemoryContext old = MemoryContextSwitchTo(cxt);
    p->relid = RelationGetRelid(rel);
    p->index = index_open(ri->dedupe_index, RowExclusiveLock);
    p->scan = index_beginscan(rel, p->index, &dirty_snapshot, 2, 0);
    p->slot = table_slot_create(rel, nullptr);
    p->owner = CurrentResourceOwner;
    p->subid = GetCurrentSubTransactionId();
    p->cxt = cxt;
    MemoryContextSwitchTo(old);
    return p;
}

bool probe(ProbeScan *p, RelInfo *ri, TupleTableSlot *row) {
    ScanKeyData keys[2];
    for (int k = 0; k < 2; ++k) {
        bool isnull = false;
        Datum v = slot_getattr(row, ri->dedupe_heap_attno[k], &isnull);
        ScanKeyInit(&keys[k], static_cast<AttrNumber>(k + 1), BTEqualStrategyNumber,
                    ri->dedupe_eq[k], v);
        keys[k].sk_collation = ri->dedupe_collation[k];
    }
    bool stored = false;
    for (;;) {
        InitDirtySnapshot(dirty_snapshot);
        probing = p;
        MemoryContext old = MemoryContextSwitchTo(p->cxt);
        index_rescan(p->scan, keys, 2, nullptr, 0);
        bool found = index_getnext_slot(p->scan, ForwardScanDirection, p->slot);
        TransactionId xwait = !found                                      ? InvalidTransactionId
                              : TransactionIdIsValid(dirty_snapshot.xmin) ? dirty_snapshot.xmin
                                                                          : dirty_snapshot.xmax;
        ItemPointerData tid = p->slot->tts_tid;
        // Drop the pins the scan and the slot hold before anything can wait.
        ExecClearTuple(p->slot);
        index_rescan(p->scan, keys, 2, nullptr, 0);
        MemoryContextSwitchTo(old);
        probing = nullptr;
        if (found && TransactionIdIsValid(xwait)) {
            XactLockTableWait(xwait, p->scan->heapRelation, &tid, XLTW_InsertIndex);
            continue;
        }
        stored = found;
        break;
    }
    return stored;
}

bool already_stored(Relation rel, RelInfo *ri, TupleTableSlot *row) {
    Oid relid = RelationGetRelid(rel);
    for (int i = 0; i < nscans; ++i)
        if (scans[i].relid == relid)
            return probe(&scans[i], ri, row);
    if (ri->has_insert_statement_trigger && nscans < kMaxScans) {
        if (scan_cxt == nullptr)
            scan_cxt = AllocSetContextCreate(TopTransactionContext, "hb_lifecycle dedupe scans",
                                             ALLOCSET_DEFAULT_SIZES);
        return probe(open_scan(rel, ri, &scans[nscans++], scan_cxt), ri, row);
    }
    // No statement trigger would close a kept scan: use one for this row only.
    ProbeScan once;
    open_scan(rel, ri, &once, CurrentMemoryContext);
    bool stored = probe(&once, ri, row);
    close_scan(&once);
    return stored;
}

}  // namespace

bool check_heartbeat(Relation rel, RelInfo *ri, TupleTableSlot *slot) {
    bool isnull = false;
    (void)slot_getattr(slot, ri->dev_attno, &isnull);
    if (isnull)
        missing_value(rel, ri, ri->dev_attno, "a device");
    (void)slot_getattr(slot, ri->ts_attno, &isnull);
    if (isnull)
        missing_value(rel, ri, ri->ts_attno, "a time");
    if (!guc::skip_duplicate_heartbeats || !OidIsValid(ri->dedupe_index))
        return true;
    if (!already_stored(rel, ri, slot))
        return true;
    shmem::add(shmem::kDedupeHits);
    return false;
}

void dedupe_close_scans() {
    for (int i = 0; i < nscans; ++i)
        close_scan(&scans[i]);
    nscans = 0;
}

void dedupe_subxact_abort(SubTransactionId subid) {
    int kept = 0;
    for (int i = 0; i < nscans; ++i) {
        // Opened inside the aborted subtransaction: its resource owner has
        // released everything. Interrupted mid-probe: its state is unknown.
        if (scans[i].subid >= subid || &scans[i] == probing)
            continue;
        scans[kept++] = scans[i];
    }
    nscans = kept;
    probing = nullptr;
}

void dedupe_end_of_transaction() {
    nscans = 0;
    probing = nullptr;
    scan_cxt = nullptr;  // freed with TopTransactionContext
}

}  // namespace hb::sync
