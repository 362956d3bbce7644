// last_status_trigger.cpp — the triggers that keep a last-status table exact.
//
// On a managed parent (row triggers are cloned by PostgreSQL to every
// partition, present and future; statement triggers are put on the parent
// and on every partition by hb_manage and by the DDL event trigger):
//
//   zz_hb_lifecycle_dedupe  BEFORE INSERT, row:  hb_before_insert()
//       refuses NULL device/time; skips a retried heartbeat.
//   zz_hb_lifecycle_update  BEFORE UPDATE, row:  hb_before_update()
//       refuses NULL device/time; marks the statement (see dedupe.cpp).
//   hb_lifecycle_sync_row   AFTER INSERT, row:   hb_sync_row()
//       offers the stored row to the per-statement buffer (newest per device).
//   hb_lifecycle_sync_insert AFTER INSERT, statement: hb_sync_insert()
//       drains the buffer in key order and writes one row per device.
//   hb_lifecycle_sync_update AFTER UPDATE, statement, transition tables;
//   hb_lifecycle_sync_delete AFTER DELETE, statement, transition table:
//       recompute devices whose newest heartbeat was changed or removed.
//
// Why row triggers AFTER and a statement trigger to flush, rather than a
// transition table: a transition table copies every whole row into a
// tuplestore, while a queued AFTER ROW event is a TID, and the buffer holds
// one entry per device (not per row), so a 1M-row COPY costs one write per
// device. Why sort: every writer takes row locks in the same order, so
// concurrent batches never deadlock on the last-status table.
//
// The buffer's lifetime follows the transaction: subtransaction abort drops
// what that subtransaction offered, commit hands it to the parent level,
// and whatever a statement could not flush (a row inserted straight into a
// partition that lacks the statement trigger) is flushed before COMMIT.
// Backend-local; no threads; no locks beyond those the writer takes.
#include "pg.hpp"

extern "C" {
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include "core/latest_buffer.hpp"
#include "dedupe.hpp"
#include "guard.hpp"
#include "last_status_trigger.hpp"
#include "last_status_writer.hpp"
#include "spi_env.hpp"
#include "sync_config.hpp"

namespace hb::sync {
namespace {

core::LatestBuffer buffer;
Oid moving_rows_of = InvalidOid;  // see set_moving_rows()

TriggerData *require_trigger(FunctionCallInfo fcinfo, const char *fn, bool row, bool after,
                             TriggerEvent op) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s() must be called as a trigger", fn)));
    auto *td = reinterpret_cast<TriggerData *>(fcinfo->context);
    bool ok = (static_cast<bool>(TRIGGER_FIRED_FOR_ROW(td->tg_event)) == row) &&
              (static_cast<bool>(TRIGGER_FIRED_AFTER(td->tg_event)) == after) &&
              ((td->tg_event & TRIGGER_EVENT_OPMASK) == op);
    if (!ok)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s() fired for the wrong event on \"%s\"", fn,
                               RelationGetRelationName(td->tg_relation)),
                        errhint("Let SELECT hb_manage(...) create hb_lifecycle's triggers.")));
    return td;
}

// The rows of the newest buffer level, drained (in its own memory context,
// current while the rows are used; end_drained() deletes it).
struct Drained {
    core::DrainedRow *rows = nullptr;
    std::size_t n = 0;
    MemoryContext cxt = nullptr;
    MemoryContext old = nullptr;
};

Drained drain_top() {
    Drained d;
    d.cxt =
        AllocSetContextCreate(CurrentMemoryContext, "hb_lifecycle flush", ALLOCSET_DEFAULT_SIZES);
    d.old = MemoryContextSwitchTo(d.cxt);
    core::LatestBuffer::Extent extent = buffer.top_extent();
    d.rows = static_cast<core::DrainedRow *>(
        MemoryContextAllocHuge(d.cxt, sizeof(core::DrainedRow) * Max(extent.rows, 1)));
    char *arena = static_cast<char *>(MemoryContextAllocHuge(d.cxt, Max(extent.key_bytes, 1)));
    d.n = buffer.drain_top(d.rows, arena);
    return d;
}

void end_drained(Drained &d) {
    MemoryContextSwitchTo(d.old);
    MemoryContextDelete(d.cxt);
}

// Writes drained rows, target by target (they are sorted by target), all
// but those of target `except`.
void apply_drained(const Drained &d, Oid except) {
    std::size_t start = 0;
    while (start < d.n) {
        std::size_t end = start;
        while (end < d.n && d.rows[end].target == d.rows[start].target)
            ++end;
        if (d.rows[start].target != except) {
            // The target's cache entry comes through any relation of the
            // batch that still exists (the pre-commit flush may find a
            // partition dropped since).
            Target *t = nullptr;
            for (std::size_t i = start; i < end && t == nullptr; ++i) {
                if (i > start && d.rows[i].ref.rel == d.rows[i - 1].ref.rel)
                    continue;
                if (Relation rel = try_table_open(d.rows[i].ref.rel, RowExclusiveLock)) {
                    t = rel_info(rel)->target;
                    table_close(rel, NoLock);
                }
            }
            if (t != nullptr)
                apply_newest(t, d.rows + start, end - start);
        }
        start = end;
    }
}

bool level_pending() {
    return !buffer.empty() && buffer.top_level() == GetCurrentSubTransactionId();
}

// Drains the newest buffer level and writes it.
void flush_top() {
    Drained d = drain_top();
    apply_drained(d, InvalidOid);
    end_drained(d);
}

// What every hb_lifecycle statement trigger does first: close the dedupe
// scans the statement's rows opened, and write the rows its level buffered.
void end_of_statement() {
    dedupe_close_scans();
    if (level_pending())
        flush_top();
}

// The UPDATE and DELETE statement triggers: the rows this level buffered for
// the same target (rows an UPDATE moved to another partition) join the
// recomputation, so that the statement locks devices in one pass, in order;
// rows of other targets are written as usual.
void end_of_change(TriggerData *td, bool is_update) {
    dedupe_close_scans();
    if (is_update)
        forget_updated_rows();
    RelInfo *ri = rel_info_if_managed(td->tg_relation);
    if (ri == nullptr || (!is_update && RelationGetRelid(td->tg_relation) == moving_rows_of)) {
        if (level_pending())
            flush_top();
        return;
    }
    Target *t = ri->target;
    Drained d;
    bool drained = level_pending();
    if (drained) {
        d = drain_top();
        apply_drained(d, t->parent);
    }
    std::size_t first = 0, count = 0;
    while (first < d.n && d.rows[first].target != t->parent)
        ++first;
    while (first + count < d.n && d.rows[first + count].target == t->parent)
        ++count;
    recompute_after_change(t, td, is_update, d.rows + first, count);
    if (drained)
        end_drained(d);
}

void on_xact(XactEvent event, void *) {
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
        moving_rows_of = InvalidOid;
    guarded([&] {
        switch (event) {
            case XACT_EVENT_PRE_COMMIT:
            case XACT_EVENT_PRE_PREPARE:
                // Safety net: rows no statement trigger flushed are written now,
                // still inside the transaction (an error here aborts it). There
                // is no statement, hence no active snapshot, at this point.
                // Deferred triggers our writes queue (a DEFERRABLE constraint
                // of the last-status table) fire here: PostgreSQL fired the
                // others before this callback and would drop ours.
                while (!buffer.empty()) {
                    PushActiveSnapshot(GetTransactionSnapshot());
                    while (!buffer.empty())
                        flush_top();
                    PopActiveSnapshot();
                    AfterTriggerFireDeferred();
                }
                dedupe_close_scans();
                break;
            case XACT_EVENT_COMMIT:
            case XACT_EVENT_PREPARE:
            case XACT_EVENT_PARALLEL_COMMIT:
            case XACT_EVENT_ABORT:
            case XACT_EVENT_PARALLEL_ABORT:
                buffer.clear();
                end_of_transaction();
                dedupe_end_of_transaction();
                break;
            default:
                break;
        }
    });
}

void on_subxact(SubXactEvent event, SubTransactionId my_subid, SubTransactionId parent_subid,
                void *) {
    if (event == SUBXACT_EVENT_COMMIT_SUB) {
        buffer.subxact_commit(my_subid, parent_subid);
    } else if (event == SUBXACT_EVENT_ABORT_SUB) {
        buffer.subxact_abort(my_subid);
        dedupe_subxact_abort(my_subid);
    }
}

}  // namespace

void set_moving_rows(Oid relid) {
    moving_rows_of = relid;
}

void install_callbacks() {
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
}

}  // namespace hb::sync

extern "C" {
PG_FUNCTION_INFO_V1(hb_before_insert);
PG_FUNCTION_INFO_V1(hb_before_update);
PG_FUNCTION_INFO_V1(hb_sync_row);
PG_FUNCTION_INFO_V1(hb_sync_insert);
PG_FUNCTION_INFO_V1(hb_sync_update);
PG_FUNCTION_INFO_V1(hb_sync_delete);
PG_FUNCTION_INFO_V1(hb_lock_device_changes);
}

using namespace hb::sync;

// BEFORE INSERT FOR EACH ROW: NULL device or time is refused; a heartbeat
// already stored (same device and time) is skipped and counted.
extern "C" Datum hb_before_insert(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        TriggerData *td =
            require_trigger(fcinfo, "hb_before_insert", true, false, TRIGGER_EVENT_INSERT);
        RelInfo *ri = rel_info(td->tg_relation);
        if (!check_heartbeat(td->tg_relation, ri, td->tg_trigslot))
            return PointerGetDatum(nullptr);
        return PointerGetDatum(td->tg_trigtuple);
    });
}

// BEFORE UPDATE FOR EACH ROW: the new version needs a device and a time;
// and rows this UPDATE moves to another partition are not retries.
extern "C" Datum hb_before_update(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        TriggerData *td =
            require_trigger(fcinfo, "hb_before_update", true, false, TRIGGER_EVENT_UPDATE);
        RelInfo *ri = rel_info(td->tg_relation);
        check_not_null_key(td->tg_relation, ri, td->tg_newslot);
        note_updated_row(ri, td->tg_newslot);
        return PointerGetDatum(td->tg_newtuple);
    });
}

// AFTER INSERT FOR EACH ROW: offer the stored row to the buffer.
extern "C" Datum hb_sync_row(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        TriggerData *td = require_trigger(fcinfo, "hb_sync_row", true, true, TRIGGER_EVENT_INSERT);
        RelInfo *ri = rel_info(td->tg_relation);
        TupleTableSlot *slot = td->tg_trigslot;
        bool dev_null = false, ts_null = false;
        Datum dev = slot_getattr(slot, ri->dev_attno, &dev_null);
        Datum ts = slot_getattr(slot, ri->ts_attno, &ts_null);
        if (dev_null || ts_null)
            return PointerGetDatum(nullptr);  // refused before insert unless triggers were bypassed
        KeyBytes key;
        encode_device(ri->target->kind, dev, &key);
        hb::core::RowRef ref;
        ref.rel = RelationGetRelid(td->tg_relation);
        ref.block = ItemPointerGetBlockNumber(&slot->tts_tid);
        ref.offset = ItemPointerGetOffsetNumber(&slot->tts_tid);
        ref.ts = DatumGetTimestampTz(ts);
        buffer.offer(ri->target->parent, GetCurrentSubTransactionId(), {key.data, key.len}, ref);
        return PointerGetDatum(nullptr);
    });
}

// AFTER INSERT FOR EACH STATEMENT: write what this statement's level holds.
// Rows of an outer level (a statement that is still firing its own row
// triggers) wait for that statement's flush.
extern "C" Datum hb_sync_insert(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        require_trigger(fcinfo, "hb_sync_insert", false, true, TRIGGER_EVENT_INSERT);
        end_of_statement();
        return PointerGetDatum(nullptr);
    });
}

// AFTER UPDATE FOR EACH STATEMENT REFERENCING OLD TABLE AS hb_old NEW TABLE AS hb_new
extern "C" Datum hb_sync_update(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        TriggerData *td =
            require_trigger(fcinfo, "hb_sync_update", false, true, TRIGGER_EVENT_UPDATE);
        if (td->tg_oldtable == nullptr || td->tg_newtable == nullptr)
            ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                            errmsg("hb_sync_update() needs OLD TABLE and NEW TABLE")));
        // An UPDATE that moves heartbeats to another partition inserts them
        // there: its row triggers ran, and no INSERT statement trigger will.
        end_of_change(td, true);
        return PointerGetDatum(nullptr);
    });
}

// AFTER DELETE FOR EACH STATEMENT REFERENCING OLD TABLE AS hb_old
extern "C" Datum hb_sync_delete(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        TriggerData *td =
            require_trigger(fcinfo, "hb_sync_delete", false, true, TRIGGER_EVENT_DELETE);
        if (td->tg_oldtable == nullptr)
            ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                            errmsg("hb_sync_delete() needs OLD TABLE")));
        end_of_change(td, false);
        return PointerGetDatum(nullptr);
    });
}

// _hb_lock_device_changes(parent regclass): takes every change lock of the
// managed table's last-status table (lock_all_changes) for the rest of the
// transaction. The caller must own the table.
extern "C" Datum hb_lock_device_changes(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        Oid parent = PG_GETARG_OID(0);
        hb::require_owner_of(parent);
        Relation rel = relation_open(parent, AccessShareLock);
        RelInfo *ri = rel_info(rel);
        Oid ls = ri->target->ls;
        relation_close(rel, NoLock);
        lock_all_changes(ls);
        return (Datum)0;
    });
}
