// worker.cpp — the background worker's main loop and the mailbox of
// worker.hpp, and the SQL functions that use them: _hb_submit_job (hands a
// job to the worker and waits), hb_job_progress, _hb_cancel_running.
//
// The worker: the canonical latch loop (SIGHUP rereads the configuration,
// SIGTERM ends the loop between steps, postmaster death ends the process).
// A job's own steps (archive.cpp) run transactions of their own; no
// transaction, snapshot or lock is held while the loop waits. The worker
// exits with status 1 on SIGTERM so that pg_terminate_backend() gets it
// restarted (bgw_restart_time); a job it was running is queued again when
// it starts.
#include "pg.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include "archive.hpp"
#include "guard.hpp"
#include "guc.hpp"
#include "spi_env.hpp"
#include "worker.hpp"

#include <string>

namespace hb::worker {
namespace {

constexpr int kSlots = 32;
constexpr long kIdleWaitMs = 10000;         // how often the loop looks at hb_jobs anyway
constexpr long kNoWorkerTimeoutMs = 60000;  // a backend gives up when no worker runs that long

enum SlotState : int { kFree = 0, kSubmitted, kAccepted, kFinished };

struct Slot {
    int state;
    bool abandoned;  // the backend stopped waiting; the worker frees the slot
    bool wait;       // the backend waits for the end, not only for the acceptance
    int kind;
    Oid database;
    Oid role;
    char partition[NAMEDATALEN];
    int64 job_id;
    char result[32];  // the partition's state after the job, or "failed"
    char sqlstate[6];
    char message[1024];
    int64 rows;
};

struct Shared {
    slock_t mutex;
    pid_t worker_pid;  // 0 when no worker runs
    int worker_procno;
    Oid worker_database;
    ConditionVariable changed;  // a slot was accepted or finished
    Slot slots[kSlots];
    // The running job (0 when none): what hb_jobs shows while it runs.
    int64 running_job;
    char phase[32];
    uint64 rows, bytes;
    int64 cancel_job;  // hb_cancel_job() of the running job
};

Shared *shared = nullptr;
shmem_request_hook_type prev_request_hook = nullptr;
shmem_startup_hook_type prev_startup_hook = nullptr;

void request_shmem() {
    if (prev_request_hook)
        prev_request_hook();
    RequestAddinShmemSpace(MAXALIGN(sizeof(Shared)));
}

void startup_shmem() {
    if (prev_startup_hook)
        prev_startup_hook();
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared = static_cast<Shared *>(ShmemInitStruct("hb_lifecycle worker", sizeof(Shared), &found));
    if (!found) {
        memset(shared, 0, sizeof *shared);
        SpinLockInit(&shared->mutex);
        ConditionVariableInit(&shared->changed);
    }
    LWLockRelease(AddinShmemInitLock);
}

void wake_worker() {
    int procno = -1;
    SpinLockAcquire(&shared->mutex);
    if (shared->worker_pid != 0)
        procno = shared->worker_procno;
    SpinLockRelease(&shared->mutex);
    if (procno >= 0)
        SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

// ---- the worker --------------------------------------------------------

// The worker's activity in pg_stat_activity: the running job's phase and
// progress, or idle when it runs none. Also after each transaction of a
// job, so that a long step that follows one (an upload's first part) shows.
void show_job_activity() {
    if (!shared) {
        pgstat_report_activity(STATE_IDLE, nullptr);
        return;
    }
    SpinLockAcquire(&shared->mutex);
    int64 job = shared->running_job;
    char phase[sizeof shared->phase];
    strlcpy(phase, shared->phase, sizeof phase);
    uint64 rows = shared->rows, bytes = shared->bytes;
    SpinLockRelease(&shared->mutex);
    if (job == 0) {
        pgstat_report_activity(STATE_IDLE, nullptr);
        return;
    }
    char activity[128];
    snprintf(activity, sizeof activity, "hb_lifecycle job %lld: %s, %llu rows, %llu bytes",
             static_cast<long long>(job), phase, static_cast<unsigned long long>(rows),
             static_cast<unsigned long long>(bytes));
    pgstat_report_activity(STATE_RUNNING, activity);
}

MemoryContext loop_context = nullptr;

// Records the submitted requests as jobs (each in its own transaction: a
// request that fails, say for a partition that went away, fails alone).
void accept_requests() {
    for (int i = 0; i < kSlots; i++) {
        Slot *s = &shared->slots[i];
        SpinLockAcquire(&shared->mutex);
        bool submitted = s->state == kSubmitted;
        int kind = s->kind;
        Oid role = s->role;
        char partition[NAMEDATALEN];
        strlcpy(partition, s->partition, sizeof partition);
        SpinLockRelease(&shared->mutex);
        if (!submitted)
            continue;
        int64 job_id = 0;
        std::string error, sqlstate;
        bool ok = in_transaction(
            "hb_lifecycle: accepting a job",
            [&] {
                char *sql =
                    psprintf("SELECT %s._hb_job_accept($1, $2, $3)", extension_schema_quoted());
                Oid types[3] = {TEXTOID, TEXTOID, OIDOID};
                Datum values[3] = {
                    CStringGetTextDatum(kind == int(JobKind::Archive) ? "archive" : "restore"),
                    CStringGetTextDatum(partition), ObjectIdGetDatum(role)};
                if (SPI_execute_with_args(sql, 3, types, values, nullptr, false, 1) !=
                        SPI_OK_SELECT ||
                    SPI_processed != 1)
                    elog(ERROR, "_hb_job_accept returned no job");
                bool isnull = false;
                Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
                job_id = isnull ? 0 : DatumGetInt64(d);
            },
            &error, &sqlstate);
        SpinLockAcquire(&shared->mutex);
        if (ok) {
            s->job_id = job_id;
            s->state = kAccepted;
        } else {
            s->state = kFinished;
            strlcpy(s->result, "failed", sizeof s->result);
            strlcpy(s->sqlstate, sqlstate.c_str(), sizeof s->sqlstate);
            strlcpy(s->message, error.c_str(), sizeof s->message);
        }
        if (s->abandoned && (s->state == kFinished || !s->wait)) {
            s->state = kFree;
            s->abandoned = false;
        }
        SpinLockRelease(&shared->mutex);
        ConditionVariableBroadcast(&shared->changed);
    }
}

// Posts a job's outcome to the slots that wait for it.
void post_outcome(int64 job_id, const archive::Outcome &out, bool ran = true) {
    SpinLockAcquire(&shared->mutex);
    for (auto &s : shared->slots) {
        if (s.state != kAccepted || s.job_id != job_id)
            continue;
        if (s.abandoned || !s.wait) {
            if (s.abandoned) {
                s.state = kFree;
                s.abandoned = false;
            }
            continue;
        }
        s.state = kFinished;
        strlcpy(s.result, out.state.c_str(), sizeof s.result);
        strlcpy(s.sqlstate, out.sqlstate.c_str(), sizeof s.sqlstate);
        strlcpy(s.message, out.message.c_str(), sizeof s.message);
        s.rows = out.rows;
    }
    if (ran) {
        shared->running_job = 0;
        shared->cancel_job = 0;
    }
    SpinLockRelease(&shared->mutex);
    if (ran)
        show_job_activity();
    ConditionVariableBroadcast(&shared->changed);
}

// Answers the waiters of accepted jobs that ended without the worker
// running them to their end here (cancelled while queued, failed after
// workers died running them, finished before a restart).
void answer_ended_jobs() {
    int64 ids[kSlots];
    int n = 0;
    SpinLockAcquire(&shared->mutex);
    for (auto &slot : shared->slots)
        if (slot.state == kAccepted && slot.job_id != 0 && slot.job_id != shared->running_job)
            ids[n++] = slot.job_id;
    SpinLockRelease(&shared->mutex);
    for (int i = 0; i < n; i++) {
        archive::Outcome out;
        bool ended = false;
        in_transaction("hb_lifecycle: looking at a job", [&] {
            char *sql = psprintf(
                "SELECT state, coalesce(result, state), coalesce(last_error, ''), "
                "coalesce(rows, 0) FROM %s._hb_jobs WHERE id = $1 "
                "AND state NOT IN ('queued', 'running')",
                extension_schema_quoted());
            Oid types[1] = {INT8OID};
            Datum values[1] = {Int64GetDatum(ids[i])};
            if (SPI_execute_with_args(sql, 1, types, values, nullptr, true, 1) == SPI_OK_SELECT &&
                SPI_processed == 1) {
                char *state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
                char *result = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
                out.state = strcmp(state, "done") == 0 ? result : state;
                out.message = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
                out.rows = atoll(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4));
                ended = true;
            }
        });
        if (ended)
            post_outcome(ids[i], out, false);
    }
}

// The oldest queued job, or 0.
int64 next_job(JobKind *kind) {
    int64 id = 0;
    in_transaction("hb_lifecycle: looking for a job", [&] {
        char *sql = psprintf(
            "SELECT id, kind = 'restore' FROM %s._hb_jobs WHERE state = 'queued' ORDER BY id LIMIT "
            "1",
            extension_schema_quoted());
        if (SPI_execute(sql, true, 1) == SPI_OK_SELECT && SPI_processed == 1) {
            bool isnull = false;
            id = DatumGetInt64(
                SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
            bool restore = DatumGetBool(
                SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
            *kind = restore ? JobKind::Restore : JobKind::Archive;
        }
    });
    return id;
}

// Whether the extension is installed in this database at a version that
// has the job queue (the worker waits for CREATE EXTENSION, or ALTER
// EXTENSION ... UPDATE, instead of failing in a loop); *old when it is
// there at an older version.
bool extension_installed(bool *old) {
    bool installed = false;
    *old = false;
    in_transaction("hb_lifecycle: looking for the extension", [&] {
        Oid ext = get_extension_oid("hb_lifecycle", true);
        if (!OidIsValid(ext))
            return;
        installed = OidIsValid(get_relname_relid("_hb_jobs", extension_schema_oid()));
        *old = !installed;
    });
    return installed;
}

void forget_worker(int, Datum) {
    SpinLockAcquire(&shared->mutex);
    shared->worker_pid = 0;
    shared->running_job = 0;
    SpinLockRelease(&shared->mutex);
    ConditionVariableBroadcast(&shared->changed);
}

}  // namespace

void register_worker() {
    BackgroundWorker w;
    memset(&w, 0, sizeof w);
    w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w.bgw_start_time = BgWorkerStart_RecoveryFinished;
    w.bgw_restart_time = 5;
    strlcpy(w.bgw_library_name, "hb_lifecycle", sizeof w.bgw_library_name);
    strlcpy(w.bgw_function_name, "hb_lifecycle_worker_main", sizeof w.bgw_function_name);
    strlcpy(w.bgw_name, "hb_lifecycle worker", sizeof w.bgw_name);
    strlcpy(w.bgw_type, "hb_lifecycle worker", sizeof w.bgw_type);
    RegisterBackgroundWorker(&w);
}

void install_hooks() {
    prev_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

bool available() {
    return shared != nullptr;
}

bool run_in_transaction(const char *activity, void (*body)(void *), void *arg, std::string *error,
                        std::string *sqlstate, bool repeatable_read) {
    bool ok = true;
    MemoryContext caller = CurrentMemoryContext;  // commit and abort leave TopMemoryContext
    try {
        pg_call([&] {
            SetCurrentStatementStartTimestamp();
            StartTransactionCommand();
            if (repeatable_read) {
                XactIsoLevel = XACT_REPEATABLE_READ;
                XactReadOnly = true;
            }
            SPI_connect();
            PushActiveSnapshot(GetTransactionSnapshot());
            pgstat_report_activity(STATE_RUNNING, activity);
            // No step waits for a lock forever (a session holding a row of
            // hb_partitions would stall every job behind it).
            (void)set_config_option("lock_timeout", "60s", PGC_SUSET, PGC_S_SESSION,
                                    GUC_ACTION_LOCAL, true, 0, false);
            body(arg);
            SPI_finish();
            PopActiveSnapshot();
            CommitTransactionCommand();
        });
    } catch (const PgError &e) {
        ok = false;
        const char *msg = e.edata()->message ? e.edata()->message : "unknown error";
        if (error)
            *error = msg;
        if (sqlstate)
            *sqlstate = unpack_sql_state(e.edata()->sqlerrcode);
        ereport(LOG, (errmsg("hb_lifecycle worker: %s: %s", activity, msg)));
        AbortCurrentTransaction();
    } catch (const std::exception &e) {
        // A C++ failure inside the body: the transaction is still open.
        ok = false;
        if (error)
            *error = e.what();
        if (sqlstate)
            *sqlstate = "XX000";
        ereport(LOG, (errmsg("hb_lifecycle worker: %s: %s", activity, e.what())));
        AbortCurrentTransaction();
    } catch (...) {
        ok = false;
        if (error)
            *error = "unknown failure";
        if (sqlstate)
            *sqlstate = "XX000";
        ereport(LOG, (errmsg("hb_lifecycle worker: %s: unknown failure", activity)));
        AbortCurrentTransaction();
    }
    MemoryContextSwitchTo(caller);
    show_job_activity();
    return ok;
}

void report_progress(std::int64_t job_id, const char *phase, std::uint64_t rows,
                     std::uint64_t bytes) {
    if (!shared)
        return;
    SpinLockAcquire(&shared->mutex);
    shared->running_job = job_id;
    strlcpy(shared->phase, phase, sizeof shared->phase);
    shared->rows = rows;
    shared->bytes = bytes;
    SpinLockRelease(&shared->mutex);
    show_job_activity();
}

bool cancel_requested(std::int64_t job_id) {
    if (!shared)
        return false;
    SpinLockAcquire(&shared->mutex);
    bool cancel = shared->cancel_job == job_id;
    SpinLockRelease(&shared->mutex);
    return cancel || ShutdownRequestPending;
}

}  // namespace hb::worker

using namespace hb::worker;

extern "C" {
PGDLLEXPORT void hb_lifecycle_worker_main(Datum);
PG_FUNCTION_INFO_V1(hb_submit_job);
PG_FUNCTION_INFO_V1(hb_job_progress);
PG_FUNCTION_INFO_V1(hb_cancel_running);
PG_FUNCTION_INFO_V1(hb_wake_worker_at_commit);
PG_FUNCTION_INFO_V1(hb_require_worker);
}

namespace {
bool wake_at_commit = false;
bool wake_callback_registered = false;

void wake_on_commit(XactEvent event, void *) {
    if (event == XACT_EVENT_COMMIT && wake_at_commit && available())
        wake_worker();
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
        wake_at_commit = false;
}
}  // namespace

// _hb_wake_worker_at_commit(): the jobs this transaction queued are the
// worker's once it commits; wake it then (not before: it would not see them).
extern "C" Datum hb_wake_worker_at_commit(PG_FUNCTION_ARGS) {
    if (!wake_callback_registered) {
        RegisterXactCallback(wake_on_commit, nullptr);
        wake_callback_registered = true;
    }
    wake_at_commit = true;
    PG_RETURN_VOID();
}

extern "C" void hb_lifecycle_worker_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    // pg_cancel_backend() of the worker would fail it outside any job;
    // hb_cancel_job() is the way to stop one.
    pqsignal(SIGINT, SIG_IGN);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(hb::guc::database, nullptr, 0);
    pgstat_report_appname("hb_lifecycle worker");

    SpinLockAcquire(&shared->mutex);
    shared->worker_pid = MyProcPid;
    shared->worker_procno = MyProc->pgprocno;
    shared->worker_database = MyDatabaseId;
    shared->running_job = 0;
    SpinLockRelease(&shared->mutex);
    on_shmem_exit(forget_worker, 0);
    ereport(LOG, (errmsg("hb_lifecycle worker started in database \"%s\"", hb::guc::database)));

    loop_context =
        AllocSetContextCreate(TopMemoryContext, "hb_lifecycle worker loop", ALLOCSET_DEFAULT_SIZES);
    bool recovered = false, said_missing = false;
    while (!ShutdownRequestPending) {
        MemoryContextSwitchTo(loop_context);
        MemoryContextReset(loop_context);
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
            // Says when new settings (an archive target, say) apply to the
            // jobs that follow.
            ereport(LOG, (errmsg("hb_lifecycle worker: configuration reloaded")));
        }
        long wait_ms = kIdleWaitMs;
        bool old = false;
        if (!extension_installed(&old)) {
            if (!said_missing && old)
                ereport(LOG, (errmsg("hb_lifecycle worker: the extension in database \"%s\" is "
                                     "older than this library; waiting for ALTER EXTENSION "
                                     "hb_lifecycle UPDATE",
                                     hb::guc::database)));
            else if (!said_missing)
                ereport(LOG, (errmsg("hb_lifecycle worker: the extension is not installed in "
                                     "database \"%s\"; waiting for CREATE EXTENSION hb_lifecycle",
                                     hb::guc::database)));
            said_missing = true;
            recovered = false;
            wait_ms = 30000;
        } else {
            said_missing = false;
            if (!recovered)
                recovered = hb::guarded([] { return hb::archive::recover_after_restart(); });
            accept_requests();
            answer_ended_jobs();
            JobKind kind = JobKind::Archive;
            int64 job = recovered ? next_job(&kind) : 0;
            if (job != 0) {
                hb::archive::Outcome out;
                hb::guarded([&] { out = hb::archive::run_job(job, kind); });
                post_outcome(job, out);
                continue;  // look for the next at once
            }
        }
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
    ereport(LOG, (errmsg("hb_lifecycle worker shutting down")));
    proc_exit(1);
}

namespace {
// The error of a function that needs the worker, when there is none for
// this database.
void require_worker() {
    if (!available())
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("hb_lifecycle's background worker is not running"),
                 errdetail("Archives and restores run in the worker, which exists only when the "
                           "library is preloaded."),
                 errhint("Add hb_lifecycle to shared_preload_libraries (after pg_cron) and "
                         "restart the server.")));
    Oid worker_db = get_database_oid(hb::guc::database, true);
    if (worker_db != MyDatabaseId)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("hb_lifecycle's background worker serves database \"%s\", not this one",
                        hb::guc::database),
                 errhint("Run this in database \"%s\", or set hb_lifecycle.database to this "
                         "database and restart the server.",
                         hb::guc::database)));
}
}  // namespace

// _hb_require_worker(): require_worker() for SQL (_hb_queue_job).
extern "C" Datum hb_require_worker(PG_FUNCTION_ARGS) {
    require_worker();
    PG_RETURN_VOID();
}

// _hb_submit_job(kind text, partition text, wait boolean, OUT job_id
// bigint, OUT state text, OUT sqlstate text, OUT message text, OUT rows
// bigint): hands a job to the worker, then waits until the worker has
// recorded it (wait false: state is 'queued') or run it (the partition's
// state after the job, or 'failed' with sqlstate and message). The caller
// (hb_archive_partition, hb_restore_partition) has checked the request.
extern "C" Datum hb_submit_job(PG_FUNCTION_ARGS) {
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "_hb_submit_job: return type must be a row type");
    char *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char *partition = text_to_cstring(PG_GETARG_TEXT_PP(1));
    bool wait = PG_GETARG_BOOL(2);
    require_worker();
    if (strlen(partition) >= NAMEDATALEN)
        ereport(ERROR, (errcode(ERRCODE_NAME_TOO_LONG), errmsg("partition name is too long")));

    int mine = -1;
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < kSlots && mine < 0; i++) {
        Slot *s = &shared->slots[i];
        if (s->state != kFree)
            continue;
        memset(s, 0, sizeof *s);
        s->state = kSubmitted;
        s->wait = wait;
        s->kind = strcmp(kind, "restore") == 0 ? int(JobKind::Restore) : int(JobKind::Archive);
        s->database = MyDatabaseId;
        s->role = GetUserId();
        strlcpy(s->partition, partition, sizeof s->partition);
        mine = i;
    }
    SpinLockRelease(&shared->mutex);
    if (mine < 0)
        ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                        errmsg("hb_lifecycle's worker has %d requests waiting already", kSlots),
                        errhint("Try again in a moment, or queue with wait => false.")));
    wake_worker();

    Slot *s = &shared->slots[mine];
    Slot copy;
    TimestampTz worker_seen = GetCurrentTimestamp();
    PG_TRY();
    {
        ConditionVariablePrepareToSleep(&shared->changed);
        for (;;) {
            SpinLockAcquire(&shared->mutex);
            int state = s->state;
            if (state == kFinished || (state == kAccepted && !wait)) {
                copy = *s;
                s->state = kFree;
            }
            SpinLockRelease(&shared->mutex);
            if (state == kFinished || (state == kAccepted && !wait))
                break;
            // A worker busy with a long job takes this one later; only a
            // worker that is not there at all is given up on.
            SpinLockAcquire(&shared->mutex);
            bool worker_running = shared->worker_pid != 0;
            SpinLockRelease(&shared->mutex);
            if (worker_running)
                worker_seen = GetCurrentTimestamp();
            else if (TimestampDifferenceExceeds(worker_seen, GetCurrentTimestamp(),
                                                kNoWorkerTimeoutMs))
                ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                errmsg("hb_lifecycle's worker has not been running for %ld s",
                                       kNoWorkerTimeoutMs / 1000),
                                errdetail("The job stays queued in hb_jobs if it was recorded."),
                                errhint("See the server log for why the worker stopped.")));
            ConditionVariableTimedSleep(&shared->changed, 1000, PG_WAIT_EXTENSION);
        }
        ConditionVariableCancelSleep();
    }
    PG_CATCH();
    {
        // Cancelled (or the wait gave up): the job goes on without us.
        ConditionVariableCancelSleep();
        SpinLockAcquire(&shared->mutex);
        if (s->state == kFinished)
            s->state = kFree;
        else
            s->abandoned = true;
        SpinLockRelease(&shared->mutex);
        PG_RE_THROW();
    }
    PG_END_TRY();

    Datum values[5];
    bool nulls[5] = {false, false, false, false, false};
    values[0] = Int64GetDatum(copy.job_id);
    nulls[0] = copy.job_id == 0;
    values[1] = CStringGetTextDatum(copy.state == kAccepted ? "queued" : copy.result);
    values[2] = CStringGetTextDatum(copy.sqlstate);
    nulls[2] = copy.sqlstate[0] == '\0';
    values[3] = CStringGetTextDatum(copy.message);
    nulls[3] = copy.message[0] == '\0';
    values[4] = Int64GetDatum(copy.rows);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

// hb_job_progress(): one row (job_id, phase, rows, bytes, pid) while the
// worker runs a job, none otherwise.
extern "C" Datum hb_job_progress(PG_FUNCTION_ARGS) {
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);
    if (!available())
        PG_RETURN_NULL();
    SpinLockAcquire(&shared->mutex);
    int64 job = shared->running_job;
    char phase[32];
    strlcpy(phase, shared->phase, sizeof phase);
    uint64 rows = shared->rows, bytes = shared->bytes;
    pid_t pid = shared->worker_pid;
    SpinLockRelease(&shared->mutex);
    if (job != 0 && pid != 0) {
        Datum values[5] = {Int64GetDatum(job), CStringGetTextDatum(phase),
                           Int64GetDatum(static_cast<int64>(rows)),
                           Int64GetDatum(static_cast<int64>(bytes)), Int32GetDatum(pid)};
        bool nulls[5] = {false, false, false, false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    PG_RETURN_NULL();
}

// _hb_cancel_running(job bigint) RETURNS boolean: asks the worker to stop
// the job if it is the one running (the caller checked the right to).
extern "C" Datum hb_cancel_running(PG_FUNCTION_ARGS) {
    int64 job = PG_GETARG_INT64(0);
    // The right to (this is granted to every managed table's owner).
    hb::SpiEnv env;
    hb::spi_env_begin(&env, InvalidOid);
    char *sql = psprintf(
        "SELECT %s._hb_owns(parent) OR pg_catalog.pg_has_role(requested_by, 'USAGE') "
        "FROM %s._hb_jobs WHERE id = $1",
        hb::extension_schema_quoted(), hb::extension_schema_quoted());
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(job)};
    hb::spi_run_args(&env, sql, 1, types, values, nullptr, SPI_OK_SELECT);
    bool isnull = true;
    bool may =
        SPI_processed == 1 &&
        DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) &&
        !isnull;
    hb::spi_env_end(&env);
    if (!may)
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("must be owner of the table of job %lld or the role that asked for it",
                        static_cast<long long>(job))));
    if (!available())
        PG_RETURN_BOOL(false);
    SpinLockAcquire(&shared->mutex);
    bool running = shared->running_job == job && shared->worker_pid != 0;
    if (running)
        shared->cancel_job = job;
    SpinLockRelease(&shared->mutex);
    if (running)
        wake_worker();
    PG_RETURN_BOOL(running);
}
