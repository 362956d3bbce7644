// dedupe.cpp — NULL checks and retry detection for incoming heartbeats.
//
// A retry is found through the partition's unique (device, time) index with
// a dirty snapshot, which also sees heartbeats of transactions still in
// progress: for those we wait, as the unique check itself would, and then
// look again, so that an application retrying while its first attempt is
// still committing gets no error either. C-style code.
#include "pg.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

#include "dedupe.hpp"
#include "guc.hpp"
#include "shmem.hpp"

namespace hb::sync {
namespace {

[[noreturn]] void missing_value(Relation rel, AttrNumber attno, const char *what) {
    const char *col = NameStr(TupleDescAttr(RelationGetDescr(rel), attno - 1)->attname);
    ereport(ERROR,
            (errcode(ERRCODE_NOT_NULL_VIOLATION),
             errmsg("heartbeat without %s: column \"%s\" is NULL", what, col),
             errdetail("\"%s\" is managed by hb_lifecycle; every heartbeat needs a device and a "
                       "time, and nothing of this row was stored.",
                       RelationGetRelationName(rel)),
             errhint("Send a value for \"%s\" in the INSERT or COPY.", col),
             errtablecol(rel, attno)));
    pg_unreachable();
}

bool already_stored(Relation rel, RelInfo *ri, TupleTableSlot *slot) {
    ScanKeyData keys[2];
    for (int k = 0; k < 2; ++k) {
        bool isnull = false;
        Datum v = slot_getattr(slot, ri->dedupe_heap_attno[k], &isnull);
        ScanKeyInit(&keys[k], static_cast<AttrNumber>(k + 1), BTEqualStrategyNumber,
                    ri->dedupe_eq[k], v);
        keys[k].sk_collation = ri->dedupe_collation[k];
    }
    Relation index = index_open(ri->dedupe_index, RowExclusiveLock);
    SnapshotData dirty;
    InitDirtySnapshot(dirty);
    IndexScanDesc scan = index_beginscan(rel, index, &dirty, 2, 0);
    TupleTableSlot *found = table_slot_create(rel, nullptr);
    bool stored = false;
    for (;;) {
        index_rescan(scan, keys, 2, nullptr, 0);
        if (!index_getnext_slot(scan, ForwardScanDirection, found))
            break;
        TransactionId xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
        if (TransactionIdIsValid(xwait)) {
            XactLockTableWait(xwait, rel, &found->tts_tid, XLTW_InsertIndex);
            continue;
        }
        stored = true;
        break;
    }
    ExecDropSingleTupleTableSlot(found);
    index_endscan(scan);
    index_close(index, NoLock);
    return stored;
}

}  // namespace

bool check_heartbeat(Relation rel, RelInfo *ri, TupleTableSlot *slot) {
    bool isnull = false;
    (void)slot_getattr(slot, ri->dev_attno, &isnull);
    if (isnull)
        missing_value(rel, ri->dev_attno, "a device");
    (void)slot_getattr(slot, ri->ts_attno, &isnull);
    if (isnull)
        missing_value(rel, ri->ts_attno, "a time");
    if (!guc::skip_duplicate_heartbeats || !OidIsValid(ri->dedupe_index))
        return true;
    if (!already_stored(rel, ri, slot))
        return true;
    shmem::add(shmem::kDedupeHits);
    return false;
}

void dedupe_end_of_transaction() {}

}  // namespace hb::sync
