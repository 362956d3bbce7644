// dedupe.cpp — NULL checks and retry detection for incoming heartbeats.
//
// A retry is found through the partition's unique (device, time) index with
// a dirty snapshot, which also sees heartbeats of transactions still in
// progress: for those we wait, as the unique check itself would, and then
// look again, so that an application retrying while its first attempt is
// still committing gets no error either.
//
// Opening an index scan costs more than the probe itself (btbeginscan
// allocates ~27 kB), so a transaction keeps one scan per partition open
// between rows. Kept scans belong to a resource owner of our own (a child
// of the transaction's), hold a reference on their heap relation, live in a
// memory context of their own (the index AM allocates during scans), and
// hold no buffer pin between probes. Every hb_lifecycle statement trigger
// closes them (dedupe_close_scans), and so does the pre-commit callback; a
// subtransaction abort closes those it opened and forgets one interrupted
// mid-probe.
//
// During an UPDATE that moves heartbeats to another partition, PostgreSQL
// deletes each row and inserts it into its new partition; a heartbeat
// already stored there with the same (device, time) is not a retry, and
// skipping the insert would lose the moved row. The BEFORE UPDATE trigger
// notes the new version's (device, time) (note_updated_row); the BEFORE
// INSERT trigger that sees it arrive does not probe, and the unique index
// refuses the collision instead, as it does within one partition. The
// notes of an UPDATE statement are dropped when its statement trigger runs
// (those its rows did not move stay unused). C-style code, but for the set
// of notes, which only our own code touches.
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

#include <string>
#include <unordered_set>

#include "dedupe.hpp"
#include "guc.hpp"
#include "shmem.hpp"

namespace hb::sync {
namespace {

struct ProbeScan {
    Oid relid;
    Relation heap;  // referenced by us
    Relation index;
    IndexScanDesc scan;
    TupleTableSlot *slot;
    SubTransactionId subid;
};

constexpr int kMaxScans = 16;
ProbeScan scans[kMaxScans];
int nscans = 0;
MemoryContext scan_cxt = nullptr;              // child of TopTransactionContext
ResourceOwner scan_owner = nullptr;            // child of TopTransactionResourceOwner
ProbeScan *probing = nullptr;                  // the scan a probe is using right now
SnapshotData dirty_snapshot;                   // scans point at it; re-initialised per probe
std::unordered_set<std::string> updated_rows;  // (target, key, time) of updated heartbeats

// The note of a heartbeat: target, device key bytes, time.
std::string row_note(RelInfo *ri, TupleTableSlot *slot) {
    bool isnull = false;
    Datum dev = slot_getattr(slot, ri->dev_attno, &isnull);
    TimestampTz ts = DatumGetTimestampTz(slot_getattr(slot, ri->ts_attno, &isnull));
    KeyBytes key;
    encode_device(ri->target->kind, dev, &key);
    std::string note(reinterpret_cast<const char *>(&ri->target->parent), sizeof(Oid));
    note.append(key.data, key.len);
    note.append(reinterpret_cast<const char *>(&ts), sizeof ts);
    return note;
}

[[noreturn]] void missing_value(Relation rel, RelInfo *ri, AttrNumber attno, const char *what) {
    const char *col = NameStr(TupleDescAttr(RelationGetDescr(rel), attno - 1)->attname);
    ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                    errmsg("heartbeat without %s: column \"%s\" is NULL", what, col),
                    errdetail("%s is managed by hb_lifecycle; every heartbeat needs a device and a "
                              "time, and nothing of this row was stored.",
                              ri->target->parent_sql),
                    errhint("Send a value for \"%s\".", col), errtablecol(rel, attno)));
    pg_unreachable();
}

// Runs with our resource owner and memory context current.
struct ScanScope {
    ResourceOwner owner;
    MemoryContext cxt;
};

ScanScope enter_scans() {
    if (scan_cxt == nullptr)
        scan_cxt = AllocSetContextCreate(TopTransactionContext, "hb_lifecycle dedupe scans",
                                         ALLOCSET_DEFAULT_SIZES);
    if (scan_owner == nullptr)
        scan_owner = ResourceOwnerCreate(TopTransactionResourceOwner, "hb_lifecycle dedupe");
    ScanScope saved{CurrentResourceOwner, CurrentMemoryContext};
    CurrentResourceOwner = scan_owner;
    MemoryContextSwitchTo(scan_cxt);
    return saved;
}

void leave_scans(const ScanScope &saved) {
    CurrentResourceOwner = saved.owner;
    MemoryContextSwitchTo(saved.cxt);
}

void close_scan(ProbeScan *p) {
    ScanScope saved = enter_scans();
    ExecDropSingleTupleTableSlot(p->slot);
    index_endscan(p->scan);
    index_close(p->index, NoLock);
    RelationDecrementReferenceCount(p->heap);
    leave_scans(saved);
}

void open_scan(Relation rel, RelInfo *ri, ProbeScan *p) {
    ScanScope saved = enter_scans();
    p->relid = RelationGetRelid(rel);
    RelationIncrementReferenceCount(rel);
    p->heap = rel;
    p->index = index_open(ri->dedupe_index, RowExclusiveLock);
    p->scan = index_beginscan(rel, p->index, &dirty_snapshot, 2, 0);
    p->slot = table_slot_create(rel, nullptr);
    p->subid = GetCurrentSubTransactionId();
    leave_scans(saved);
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
    for (;;) {
        InitDirtySnapshot(dirty_snapshot);
        probing = p;
        ScanScope saved = enter_scans();
        index_rescan(p->scan, keys, 2, nullptr, 0);
        bool found = index_getnext_slot(p->scan, ForwardScanDirection, p->slot);
        TransactionId xwait = !found                                      ? InvalidTransactionId
                              : TransactionIdIsValid(dirty_snapshot.xmin) ? dirty_snapshot.xmin
                                                                          : dirty_snapshot.xmax;
        ItemPointerData tid = p->slot->tts_tid;
        // Drop the pins the scan and the slot hold before anything can wait.
        ExecClearTuple(p->slot);
        index_rescan(p->scan, keys, 2, nullptr, 0);
        leave_scans(saved);
        probing = nullptr;
        if (found && TransactionIdIsValid(xwait)) {
            XactLockTableWait(xwait, p->heap, &tid, XLTW_InsertIndex);
            continue;
        }
        return found;
    }
}

bool already_stored(Relation rel, RelInfo *ri, TupleTableSlot *row) {
    Oid relid = RelationGetRelid(rel);
    for (int i = 0; i < nscans; ++i)
        if (scans[i].relid == relid)
            return probe(&scans[i], ri, row);
    if (!ri->has_insert_statement_trigger) {
        // No statement trigger would close a kept scan before the end of
        // the transaction (where it would keep DDL on the partition from
        // running): use one for this row only.
        ProbeScan once;
        open_scan(rel, ri, &once);
        bool stored = probe(&once, ri, row);
        close_scan(&once);
        return stored;
    }
    if (nscans == kMaxScans)
        dedupe_close_scans();  // a statement across many partitions: start over
    ProbeScan *p = &scans[nscans];
    open_scan(rel, ri, p);
    ++nscans;
    return probe(p, ri, row);
}

}  // namespace

bool check_heartbeat(Relation rel, RelInfo *ri, TupleTableSlot *slot) {
    check_not_null_key(rel, ri, slot);
    if (!guc::skip_duplicate_heartbeats || !OidIsValid(ri->dedupe_index))
        return true;
    if (!updated_rows.empty() && updated_rows.erase(row_note(ri, slot)) > 0)
        return true;  // a row an UPDATE is moving here, not a retry
    if (!already_stored(rel, ri, slot))
        return true;
    shmem::add(shmem::kDedupeHits);
    return false;
}

void check_not_null_key(Relation rel, RelInfo *ri, TupleTableSlot *slot) {
    bool isnull = false;
    (void)slot_getattr(slot, ri->dev_attno, &isnull);
    if (isnull)
        missing_value(rel, ri, ri->dev_attno, "a device");
    (void)slot_getattr(slot, ri->ts_attno, &isnull);
    if (isnull)
        missing_value(rel, ri, ri->ts_attno, "a time");
}

void note_updated_row(RelInfo *ri, TupleTableSlot *newrow) {
    updated_rows.insert(row_note(ri, newrow));
}

void forget_updated_rows() {
    updated_rows.clear();
}

void dedupe_close_scans() {
    for (int i = 0; i < nscans; ++i)
        close_scan(&scans[i]);
    nscans = 0;
}

void dedupe_subxact_abort(SubTransactionId subid) {
    int kept = 0;
    for (int i = 0; i < nscans; ++i) {
        if (&scans[i] == probing)
            continue;  // interrupted mid-probe: its state is unknown; forget it
        if (scans[i].subid >= subid)
            close_scan(&scans[i]);  // its relation may not outlive the rollback
        else
            scans[kept++] = scans[i];
    }
    nscans = kept;
    probing = nullptr;
}

void dedupe_end_of_transaction() {
    // Commit closed the scans before (pre-commit); abort releases our owner
    // with the transaction's, and the context goes with TopTransactionContext.
    nscans = 0;
    probing = nullptr;
    scan_cxt = nullptr;
    scan_owner = nullptr;
    updated_rows.clear();
}

}  // namespace hb::sync
