// archive.cpp — the worker's archive and restore jobs (archive.hpp), and
// the late-write trigger hb_partition_written().
//
// An archive job:
//   1. _hb_archive_begin (a short transaction): checks, 'archiving', the
//      late-write triggers, archive.start;
//   2. when the target already has a manifest that matches the partition
//      (same rows, every file there with its size): nothing is uploaded;
//   3. otherwise the export: one REPEATABLE READ, READ ONLY transaction,
//      run as the table's owner with row_security off (so that a policy
//      can never hide rows from an archive: it raises instead), reads the
//      partition through a DestReceiver that writes COPY's CSV; a thread
//      of its own (which never calls PostgreSQL) gzips it, takes its
//      SHA-256 and writes it, in chunks of 1 MiB of which at most four
//      wait: constant memory, whatever the partition's size. A file target
//      is written in place (.partial, fsync, rename); an S3 target gets a
//      local spool file, uploaded once the transaction is over (a single
//      PUT, or a multipart upload above hb_lifecycle.s3_part_size);
//   4. the manifest, written last;
//   5. _hb_archive_done (a short transaction), or _hb_archive_failed and,
//      at most once per partition per alert_min_interval, a webhook alert.
// No network I/O happens inside a transaction.
//
// A restore job downloads the files (checking each one's size and SHA-256
// against the manifest), then in one transaction creates the table, COPYs
// the rows in (and refuses when their count is not the manifest's), and
// attaches it (_hb_restore_finish).
#include "pg.hpp"

extern "C" {
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "catalog/partition.h"
}

#include "archive.hpp"
#include "core/archive_stream.hpp"
#include "core/archive_target.hpp"
#include "core/archive_writer.hpp"
#include "core/manifest.hpp"
#include "core/s3_client.hpp"
#include "core/webhook.hpp"
#include "guard.hpp"
#include "guc.hpp"
#include "spi_env.hpp"
#include "worker.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace hb::archive {
namespace {

using core::ArchiveTarget;

// A job was cancelled (hb_cancel_job) or the worker is shutting down.
struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("cancelled") {}
};

std::string spool_dir() {
    if (guc::spool_directory && *guc::spool_directory)
        return guc::spool_directory;
    return std::string(DataDir) + "/hb_lifecycle_spool";
}

// Refuses to write `need` bytes where the file system has less free space
// (the spool, or a file target, can be on the disk that holds the WAL,
// where running out stops the server). dir need not exist yet: its
// nearest existing ancestor is asked.
void require_free_space(std::string dir, std::uint64_t need) {
    struct statvfs vfs;
    while (statvfs(dir.c_str(), &vfs) != 0) {
        std::size_t slash = dir.rfind('/');
        if (errno != ENOENT || slash == std::string::npos || slash == 0)
            return;  // nothing to ask: the write itself will say what is wrong
        dir.resize(slash);
    }
    std::uint64_t free = std::uint64_t(vfs.f_bavail) * vfs.f_frsize;
    if (free < need)
        throw std::runtime_error("not enough free space in " + dir +
                                 " for the archive: " + std::to_string(free >> 20) +
                                 " MiB free, the partition takes " + std::to_string(need >> 20) +
                                 " MiB (set hb_lifecycle.spool_directory, or free space)");
}

// ---- settings ------------------------------------------------------------

struct Config {
    ArchiveTarget target;
    bool gzip = true;
    int gzip_level = 1;
    core::S3Config s3;
    std::size_t part_bytes = 16u << 20;
    std::string webhook;
    long alert_interval_s = 3600;
};

// The text of a file that holds a secret: the server's OS user's alone
// (no access for group or others), or an error that says how to fix it.
std::string read_secret_file(const std::string &path, const char *setting) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0)
        throw std::runtime_error(std::string("cannot read ") + setting + " " + path + ": " +
                                 strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw std::runtime_error(std::string(setting) + " " + path + " is not a file");
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        throw std::runtime_error(std::string(setting) + " " + path +
                                 " may be read or written by other users; make it the server "
                                 "user's alone: chmod 600 " +
                                 path);
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in && !in.eof())
        throw std::runtime_error(std::string("cannot read ") + setting + " " + path);
    return text.str();
}

core::AwsCredentials read_credentials(const std::string &path, const std::string &profile) {
    if (path.empty())
        throw std::runtime_error(
            "hb_lifecycle.s3_credentials_file is not set: an s3:// archive_url needs credentials "
            "(an AWS credentials file, chmod 600)");
    std::string text = read_secret_file(path, "hb_lifecycle.s3_credentials_file");
    std::string error;
    auto creds = core::parse_aws_credentials(text, profile, &error);
    if (!creds)
        throw std::runtime_error("hb_lifecycle.s3_credentials_file " + path + ": " + error);
    return *creds;
}

// hb_lifecycle.alert_webhook_url: the URL itself, or file:///path of a
// file (chmod 600) that holds it: a webhook's URL carries its token, and
// PostgreSQL logs a setting's new value when a reload changes it.
std::string webhook_url() {
    std::string v = guc::alert_webhook_url ? guc::alert_webhook_url : "";
    if (v.rfind("file://", 0) != 0)
        return std::string();  // (the setting's check allows nothing else)
    std::string text = read_secret_file(v.substr(7), "hb_lifecycle.alert_webhook_url");
    std::size_t end = text.find_last_not_of(" \t\r\n");
    return end == std::string::npos ? std::string()
                                    : text.substr(text.find_first_not_of(" \t\r\n"),
                                                  end + 1 - text.find_first_not_of(" \t\r\n"));
}

// Targets named by a URL: the configured archive_url, or a recorded
// manifest's URL (file:///... or s3://bucket/key).
ArchiveTarget target_of(const std::string &url) {
    std::string error;
    auto t = core::parse_archive_url(url, &error);
    if (!t)
        throw std::runtime_error("hb_lifecycle.archive_url: " + error);
    return *t;
}

// Where alerts go, read on its own: a configuration that cannot be loaded
// is itself worth an alert.
std::string alert_target() {
    try {
        return webhook_url();
    } catch (const std::exception &e) {
        // A webhook that cannot be read never stops an archive.
        ereport(WARNING, (errmsg("hb_lifecycle worker: no alerts: %s", e.what())));
        return std::string();
    }
}

Config load_config(bool need_s3_always = false) {
    Config c;
    std::string url = guc::archive_url ? guc::archive_url : "";
    if (url.empty())
        url = "file://" + std::string(DataDir) + "/hb_archive";
    c.target = target_of(url);
    c.gzip = strcmp(guc::archive_compression, "none") != 0;
    c.gzip_level = guc::archive_gzip_level;
    c.part_bytes = core::clamp_part_size(std::uint64_t(guc::s3_part_size_kb) * 1024);
    c.alert_interval_s = guc::alert_min_interval_s;
    if (c.target.kind == ArchiveTarget::Kind::S3 || need_s3_always) {
        c.s3.region = guc::s3_region && *guc::s3_region ? guc::s3_region : "us-east-1";
        c.s3.endpoint = guc::s3_endpoint && *guc::s3_endpoint
                            ? guc::s3_endpoint
                            : "https://s3." + c.s3.region + ".amazonaws.com";
        c.s3.sse = guc::s3_sse;
        c.s3.credentials =
            read_credentials(guc::s3_credentials_file ? guc::s3_credentials_file : "",
                             guc::s3_profile ? guc::s3_profile : "default");
    }
    return c;
}

// ---- objects: a local file or an S3 object -------------------------------

// An object of an archive: where it is, for one target.
struct Store {
    const Config &config;
    ArchiveTarget target;
    std::unique_ptr<core::S3Client> s3;

    // Requests stop at once on hb_cancel_job of `job` or on shutdown.
    Store(const Config &c, ArchiveTarget t, int64 job) : config(c), target(std::move(t)) {
        if (target.kind == ArchiveTarget::Kind::S3) {
            s3 = std::make_unique<core::S3Client>(config.s3);
            s3->interrupted = [job] { return worker::cancel_requested(job); };
        }
    }
    bool is_s3() const { return target.kind == ArchiveTarget::Kind::S3; }

    static std::string s3_error(const char *what, const std::string &key, const core::S3Result &r) {
        return std::string(what) + " s3://" + key + ": " + r.error;
    }

    // The object's size; false when there is no such object.
    bool size_of(const std::string &path, std::uint64_t *size) {
        if (!is_s3()) {
            struct stat st;
            if (stat(path.c_str(), &st) != 0) {
                if (errno == ENOENT)
                    return false;
                throw std::runtime_error("cannot stat " + path + ": " + strerror(errno));
            }
            *size = std::uint64_t(st.st_size);
            return true;
        }
        core::S3Result r = s3->head_object(target.bucket, path);
        if (r.status == 404)
            return false;
        if (!r.ok())
            throw std::runtime_error(s3_error("cannot look at", target.bucket + "/" + path, r));
        *size = r.content_length;
        return true;
    }

    // A small object (a manifest) whole; false when it does not exist.
    bool read_small(const std::string &path, std::string *out) {
        out->clear();
        if (!is_s3()) {
            std::ifstream in(path, std::ios::binary);
            if (!in) {
                if (errno == ENOENT)
                    return false;
                throw std::runtime_error("cannot read " + path + ": " + strerror(errno));
            }
            std::stringstream text;
            text << in.rdbuf();
            *out = text.str();
            return true;
        }
        core::S3Result r = s3->get_object(target.bucket, path, [out](const char *p, std::size_t n) {
            if (out->size() + n > (4u << 20))
                throw std::runtime_error("the manifest is larger than 4 MiB");
            out->append(p, n);
        });
        if (r.status == 404)
            return false;
        if (!r.ok())
            throw std::runtime_error(s3_error("cannot read", target.bucket + "/" + path, r));
        return true;
    }

    void write_small(const std::string &path, const std::string &data) {
        if (!is_s3()) {
            auto sink = core::make_file_sink(path);
            try {
                sink->write(data.data(), data.size());
                sink->finish();
            } catch (...) {
                sink->abort();
                throw;
            }
            return;
        }
        core::S3Result r = s3->put_object(target.bucket, path, data);
        if (!r.ok())
            throw std::runtime_error(s3_error("cannot write", target.bucket + "/" + path, r));
    }

    // Removes an object; a missing one is no error.
    void remove(const std::string &path) {
        if (!is_s3()) {
            if (unlink(path.c_str()) != 0 && errno != ENOENT)
                throw std::runtime_error("cannot remove " + path + ": " + strerror(errno));
            return;
        }
        core::S3Result r = s3->delete_object(target.bucket, path);
        if (!r.ok() && r.status != 404)
            throw std::runtime_error(s3_error("cannot remove", target.bucket + "/" + path, r));
    }

    std::string url(const std::string &path) const { return core::object_url(target, path); }
};

// ---- the export pipeline: CSV in, a thread gzips, hashes, writes ---------

class Pipeline {
public:
    static constexpr std::size_t kChunk = 1u << 20;
    static constexpr std::size_t kQueued = 4;

    Pipeline(std::unique_ptr<core::ObjectSink> sink, std::string name, bool gzip, int level)
        : writer_(std::move(sink), std::move(name), gzip, level) {
        // The thread must never run PostgreSQL's signal handlers: it starts
        // with every signal blocked (it inherits this thread's mask).
        sigset_t all, saved;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        try {
            thread_ = std::thread([this] { run(); });
        } catch (...) {
            pthread_sigmask(SIG_SETMASK, &saved, nullptr);
            throw;
        }
        pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    }
    ~Pipeline() { abandon(); }

    // Hands a chunk of CSV to the thread (waiting while four wait); false
    // when the thread has failed. Never throws.
    bool push(std::string &chunk) noexcept {
        try {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [this] { return queue_.size() < kQueued || failed_; });
            if (failed_)
                return false;
            queue_.push_back(std::move(chunk));
            chunk.clear();
            chunk.reserve(kChunk + 64 * 1024);
        } catch (const std::exception &e) {
            fail(e.what());
            return false;
        }
        cv_.notify_all();
        return true;
    }

    // Waits for the thread to write everything and finish the file.
    core::ManifestFile finish() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closing_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable())
            thread_.join();
        if (failed_)
            throw std::runtime_error(error_);
        finished_ = true;
        return result_;
    }

    // Stops the thread and removes what it wrote. Never throws.
    void abandon() noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            aborting_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable())
            thread_.join();
        if (!finished_)
            writer_.abort();
        finished_ = true;
    }

    std::string error() {
        std::lock_guard<std::mutex> lock(mutex_);
        return error_;
    }

private:
    void fail(const char *what) noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!failed_) {
            failed_ = true;
            try {
                error_ = what;
            } catch (...) {
            }
        }
        cv_.notify_all();
    }

    // The thread: never calls PostgreSQL.
    void run() noexcept {
        try {
            for (;;) {
                std::string chunk;
                {
                    std::unique_lock<std::mutex> lock(mutex_);
                    cv_.wait(lock, [this] { return !queue_.empty() || closing_ || aborting_; });
                    if (aborting_)
                        return;
                    if (queue_.empty())
                        break;  // closing, and everything written
                    chunk = std::move(queue_.front());
                    queue_.pop_front();
                }
                cv_.notify_all();
                writer_.write(chunk);
            }
            result_ = writer_.finish();
        } catch (const std::exception &e) {
            fail(e.what());
        } catch (...) {
            fail("the archive writer failed");
        }
    }

    core::ArchiveFileWriter writer_;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::string> queue_;
    bool closing_ = false, aborting_ = false, failed_ = false, finished_ = false;
    std::string error_;
    core::ManifestFile result_;
};

// The DestReceiver that turns the export's rows into CSV.
struct CsvReceiver {
    DestReceiver pub;  // first: the executor sees a DestReceiver
    Pipeline *pipe;
    core::CsvWriter *csv;
    std::string *chunk;
    FmgrInfo *out;
    int natts;
    MemoryContext rowcxt;
    uint64 rows;
    uint64 csv_bytes;
    int64 job;
    char failure[512];
};

bool csv_field(CsvReceiver *r, const char *value) noexcept {
    try {
        if (value)
            r->csv->field(value);
        else
            r->csv->null();
        return true;
    } catch (const std::exception &e) {
        strlcpy(r->failure, e.what(), sizeof r->failure);
        return false;
    }
}

bool csv_end_row(CsvReceiver *r) noexcept {
    try {
        r->csv->end_row();
        std::string &buf = r->csv->buffer();
        if (buf.size() >= Pipeline::kChunk) {
            r->csv_bytes += buf.size();
            if (!r->pipe->push(buf)) {
                strlcpy(r->failure, r->pipe->error().c_str(), sizeof r->failure);
                return false;
            }
        }
        return true;
    } catch (const std::exception &e) {
        strlcpy(r->failure, e.what(), sizeof r->failure);
        return false;
    }
}

void csv_startup(DestReceiver *self, int, TupleDesc desc) {
    auto *r = reinterpret_cast<CsvReceiver *>(self);
    r->natts = desc->natts;
    r->out = static_cast<FmgrInfo *>(palloc0(sizeof(FmgrInfo) * std::max(desc->natts, 1)));
    bool ok = true;
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        Oid func;
        bool varlena;
        getTypeOutputInfo(att->atttypid, &func, &varlena);
        fmgr_info(func, &r->out[i]);
        ok = ok && csv_field(r, NameStr(att->attname));  // the header line
    }
    ok = ok && csv_end_row(r);
    if (!ok)
        ereport(ERROR, (errmsg("archive export failed: %s", r->failure)));
}

bool csv_receive(TupleTableSlot *slot, DestReceiver *self) {
    auto *r = reinterpret_cast<CsvReceiver *>(self);
    MemoryContext old = MemoryContextSwitchTo(r->rowcxt);
    slot_getallattrs(slot);
    bool ok = true;
    for (int i = 0; i < r->natts && ok; i++) {
        const char *value =
            slot->tts_isnull[i] ? nullptr : OutputFunctionCall(&r->out[i], slot->tts_values[i]);
        ok = csv_field(r, value);
    }
    ok = ok && csv_end_row(r);
    MemoryContextSwitchTo(old);
    MemoryContextReset(r->rowcxt);
    if (!ok)
        ereport(ERROR, (errmsg("archive export failed: %s", r->failure)));
    if (++r->rows % 16384 == 0) {
        if (worker::cancel_requested(r->job))
            ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("archive cancelled")));
        worker::report_progress(r->job, "export", r->rows, r->csv_bytes + r->csv->buffer().size());
    }
    return true;
}

void csv_shutdown(DestReceiver *) {}
void csv_destroy(DestReceiver *) {}

// ---- the jobs ------------------------------------------------------------

std::string text_value(int row, int col) {
    char *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
    return v ? std::string(v) : std::string();
}

// A bigint column of an SPI result that must not be NULL (a manifest's
// count or size); what names it in the error is `what`.
uint64 count_value(int row, int col, const char *what) {
    bool isnull = true;
    Datum d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
    if (isnull || DatumGetInt64(d) < 0)
        ereport(ERROR,
                (errcode(ERRCODE_DATA_CORRUPTED), errmsg("the manifest has no valid %s", what)));
    return uint64(DatumGetInt64(d));
}

// A text column of an SPI result, or "" (palloc'd: nothing to destroy).
const char *cstring_value(int row, int col) {
    char *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
    return v ? v : "";
}

void run_sql(const char *sql, int nargs, Oid *types, Datum *values, int expected,
             const char *nulls = nullptr) {
    int rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
    if (rc != expected)
        elog(ERROR, "hb_lifecycle: \"%s\" returned %s", sql, SPI_result_code_string(rc));
}

struct ArchiveJob {
    int64 id = 0;
    Oid partition = InvalidOid;
    Oid owner = InvalidOid;
    std::string name, parent_path, range_start, range_end, prior_state, manifest_url;
    std::string upload_key, upload_id, extension_version;
    std::uint64_t table_bytes = 0;
    std::vector<core::ManifestColumn> columns;
};

void begin_archive(ArchiveJob *j) {
    char *sql = psprintf(
        "SELECT partition_oid, partition_name, parent_path, owner, range_start, "
        "range_end, prior_state, manifest_url, upload_key, upload_id, "
        "extension_version, table_bytes FROM %s._hb_archive_begin($1)",
        extension_schema_quoted());
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(j->id)};
    run_sql(sql, 1, types, values, SPI_OK_SELECT);
    bool isnull;
    j->partition =
        DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    j->name = text_value(0, 2);
    j->parent_path = text_value(0, 3);
    j->owner =
        DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
    j->range_start = text_value(0, 5);
    j->range_end = text_value(0, 6);
    j->prior_state = text_value(0, 7);
    j->manifest_url = text_value(0, 8);
    j->upload_key = text_value(0, 9);
    j->upload_id = text_value(0, 10);
    j->extension_version = text_value(0, 11);
    j->table_bytes = std::uint64_t(
        DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 12, &isnull)));
    Datum rel[1] = {ObjectIdGetDatum(j->partition)};
    Oid reltype[1] = {OIDOID};
    run_sql(
        "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) "
        "FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 "
        "AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
        1, reltype, rel, SPI_OK_SELECT);
    for (uint64 i = 0; i < SPI_processed; i++) {
        // (Both values first: no std::string may be alive across a call
        // that can raise.)
        char *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
        char *type = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
        j->columns.push_back({name, type});
    }
}

// The export: reads the partition in this (REPEATABLE READ) transaction's
// snapshot into the pipeline.
struct ExportState {
    const ArchiveJob *job;
    Pipeline *pipe;
    core::CsvWriter csv;
    std::string chunk;
    uint64 rows = 0, csv_bytes = 0;
};

void export_rows(ExportState *st) {
    SpiEnv env;
    spi_env_begin(&env, st->job->owner);
    // A row-level security policy must never hide rows from an archive.
    // And the text of every value is the same whatever the server's
    // settings: UTC, ISO dates, floats exact.
    static const char *const kSettings[][2] = {
        {"row_security", "off"},       {"TimeZone", "UTC"},         {"DateStyle", "ISO, YMD"},
        {"IntervalStyle", "postgres"}, {"extra_float_digits", "1"}, {"bytea_output", "hex"},
    };
    for (const auto &kv : kSettings)
        (void)set_config_option(kv[0], kv[1], PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                                false);
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfoString(&sql, "SELECT ");
    for (std::size_t i = 0; i < st->job->columns.size(); i++)
        appendStringInfo(&sql, "%s%s", i ? ", " : "",
                         quote_identifier(st->job->columns[i].name.c_str()));
    appendStringInfo(&sql, " FROM ONLY %s", qualified_relation_name(st->job->partition));

    CsvReceiver r;
    memset(&r, 0, sizeof r);
    r.pub.receiveSlot = csv_receive;
    r.pub.rStartup = csv_startup;
    r.pub.rShutdown = csv_shutdown;
    r.pub.rDestroy = csv_destroy;
    r.pub.mydest = DestNone;
    r.pipe = st->pipe;
    r.csv = &st->csv;
    r.job = st->job->id;
    r.rowcxt = AllocSetContextCreate(CurrentMemoryContext, "hb_lifecycle archive row",
                                     ALLOCSET_DEFAULT_SIZES);
    SPIExecuteOptions options;
    memset(&options, 0, sizeof options);
    options.read_only = true;
    options.dest = &r.pub;
    int rc = SPI_execute_extended(sql.data, &options);
    // (A SELECT into a receiver of our own is SPI_OK_UTILITY to SPI.)
    if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
        elog(ERROR, "hb_lifecycle: the export query returned %s", SPI_result_code_string(rc));
    st->rows = r.rows;
    st->csv_bytes = r.csv_bytes;
    spi_env_end(&env);
}

// Uploads a local file to key: one PUT up to the part size, multipart
// above (the upload's id is recorded in the job, so that a worker that
// dies mid-upload has it aborted when it starts again).
void upload_file(Store &store, int64 job, const std::string &local, const std::string &key,
                 std::uint64_t size) {
    const std::string &bucket = store.target.bucket;
    std::ifstream in(local, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read the spool file " + local);
    std::string buf;
    if (size <= store.config.part_bytes) {
        buf.resize(size);
        in.read(&buf[0], std::streamsize(size));
        core::S3Result r = store.s3->put_object(bucket, key, buf);
        if (!r.ok())
            throw std::runtime_error(Store::s3_error("cannot upload", bucket + "/" + key, r));
        return;
    }
    // At most 10,000 parts: a larger part size for a larger file.
    std::size_t part_bytes = store.config.part_bytes;
    if (size / part_bytes >= core::kMaxParts)
        part_bytes = std::size_t((size / (core::kMaxParts - 1) + (1u << 20)) &
                                 ~std::uint64_t((1u << 20) - 1));
    std::string upload_id;
    core::S3Result r = store.s3->create_multipart(bucket, key, &upload_id);
    if (!r.ok())
        throw std::runtime_error(
            Store::s3_error("cannot start an upload of", bucket + "/" + key, r));
    auto record = [&](const char *k, const char *id) {
        worker::in_transaction("hb_lifecycle: recording an upload", [&] {
            char *sql =
                psprintf("UPDATE %s._hb_jobs SET upload_key = $2, upload_id = $3 WHERE id = $1",
                         extension_schema_quoted());
            Oid types[3] = {INT8OID, TEXTOID, TEXTOID};
            Datum values[3] = {Int64GetDatum(job), k ? CStringGetTextDatum(k) : 0,
                               id ? CStringGetTextDatum(id) : 0};
            char nulls[3] = {' ', k ? ' ' : 'n', id ? ' ' : 'n'};
            SPI_execute_with_args(sql, 3, types, values, nulls, false, 0);
        });
    };
    record(key.c_str(), upload_id.c_str());
    try {
        std::vector<std::string> etags;
        std::uint64_t sent = 0;
        for (unsigned part = 1; sent < size; part++) {
            if (worker::cancel_requested(job))
                throw Cancelled();
            std::size_t n = std::size_t(std::min<std::uint64_t>(part_bytes, size - sent));
            buf.resize(n);
            in.read(&buf[0], std::streamsize(n));
            if (std::size_t(in.gcount()) != n)
                throw std::runtime_error("the spool file " + local + " is shorter than it was");
            r = store.s3->upload_part(bucket, key, upload_id, part, buf);
            if (!r.ok())
                throw std::runtime_error(
                    Store::s3_error("cannot upload a part of", bucket + "/" + key, r));
            etags.push_back(r.etag);
            sent += n;
            worker::report_progress(job, "upload", 0, sent);
        }
        r = store.s3->complete_multipart(bucket, key, upload_id, etags);
        if (!r.ok())
            throw std::runtime_error(
                Store::s3_error("cannot complete the upload of", bucket + "/" + key, r));
    } catch (...) {
        store.s3->abort_multipart(bucket, key, upload_id);
        record(nullptr, nullptr);
        throw;
    }
}

std::string iso_now() {
    char buf[32];
    std::time_t t = std::time(nullptr);
    std::tm tm;
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void remove_quietly(const std::string &path) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
        ereport(LOG, (errmsg("hb_lifecycle worker: could not remove \"%s\": %m", path.c_str())));
}

struct ArchiveResult {
    std::uint64_t rows = 0, csv_bytes = 0;
    core::ManifestFile file;
    std::string manifest_url;
    bool uploaded = false;
};

// Whether the archive that the target has already is this partition's
// (its manifest matches, every file is there with its size).
bool archive_is_there(Store &store, const ArchiveJob &j, ArchiveResult *res, bool *found) {
    std::string manifest_path =
        core::object_path(store.target, j.parent_path, j.name, "manifest.json");
    std::string manifest;
    *found = store.read_small(manifest_path, &manifest);
    if (!*found)
        return false;
    bool matches = false;
    std::string reason, files_json;
    std::vector<core::ManifestFile> files;
    std::string error;
    bool ok = worker::in_transaction(
        "hb_lifecycle: checking an archive's manifest",
        [&] {
            char *sql = psprintf(
                "SELECT c.matches, c.reason, c.row_count, c.csv_bytes, f.name, f.bytes, "
                "f.sha256 FROM %s._hb_archive_check($1, $2) c "
                "LEFT JOIN LATERAL jsonb_to_recordset(c.files) "
                "AS f(name text, bytes bigint, sha256 text) ON true",
                extension_schema_quoted());
            Oid types[2] = {INT8OID, TEXTOID};
            Datum values[2] = {Int64GetDatum(j.id), CStringGetTextDatum(manifest.c_str())};
            run_sql(sql, 2, types, values, SPI_OK_SELECT);
            for (uint64 i = 0; i < SPI_processed; i++) {
                matches = strcmp(cstring_value(int(i), 1), "t") == 0;
                reason = cstring_value(int(i), 2);
                if (!matches)
                    break;
                res->rows = count_value(int(i), 3, "row_count");
                res->csv_bytes = count_value(int(i), 4, "bytes");
                uint64 bytes = count_value(int(i), 6, "file size");
                const char *name = cstring_value(int(i), 5), *sha = cstring_value(int(i), 7);
                files.push_back({name, bytes, sha});
            }
        },
        &error);
    if (!ok)
        throw std::runtime_error("cannot check the manifest " + store.url(manifest_path) + ": " +
                                 error);
    if (!matches) {
        ereport(LOG, (errmsg("hb_lifecycle worker: the archive of %s is archived again: %s",
                             j.name.c_str(), reason.c_str())));
        return false;
    }
    for (const auto &f : files) {
        if (!core::valid_object_name(f.name))
            return false;
        std::uint64_t size = 0;
        if (!store.size_of(core::object_path(store.target, j.parent_path, j.name, f.name), &size) ||
            size != f.bytes) {
            ereport(LOG, (errmsg("hb_lifecycle worker: file %s of the archive of %s is missing or "
                                 "has another size; it is archived again",
                                 f.name.c_str(), j.name.c_str())));
            return false;
        }
    }
    if (files.empty())
        return false;
    res->file = files.front();
    res->manifest_url = store.url(manifest_path);
    return true;
}

ArchiveResult archive_partition(const Config &cfg, const ArchiveJob &j) {
    if (!core::valid_object_name(j.name))
        throw std::runtime_error("partition name " + j.name +
                                 " cannot be part of an object name (letters, digits, _ . - only)");
    for (const std::string &part : {j.parent_path.substr(0, j.parent_path.find('.')),
                                    j.parent_path.substr(j.parent_path.find('.') + 1)})
        if (!core::valid_object_name(part))
            throw std::runtime_error(
                "table name " + j.parent_path +
                " cannot be part of an object name (letters, digits, _ . - only)");
    Store store(cfg, cfg.target, j.id);
    ArchiveResult res;

    // A multipart upload left by a worker that died: abort it.
    if (store.is_s3() && !j.upload_id.empty())
        (void)store.s3->abort_multipart(store.target.bucket, j.upload_key, j.upload_id);

    worker::report_progress(j.id, "check", 0, 0);
    bool found = false;
    if (archive_is_there(store, j, &res, &found))
        return res;

    std::string data_name = core::part_name(0, cfg.gzip);
    std::string data_path = core::object_path(store.target, j.parent_path, j.name, data_name);
    std::string spool = spool_dir() + "/job-" + std::to_string(j.id) + "-" + data_name;
    std::string written_to = store.is_s3() ? spool : data_path;

    // An archive being replaced loses its manifest first: a crash from here
    // on leaves no manifest that could match.
    std::string manifest_path =
        core::object_path(store.target, j.parent_path, j.name, "manifest.json");
    if (found)
        store.remove(manifest_path);

    require_free_space(written_to.substr(0, written_to.rfind('/')), j.table_bytes);
    Pipeline pipe(core::make_file_sink(written_to), data_name, cfg.gzip, cfg.gzip_level);
    ExportState st;
    st.job = &j;
    st.pipe = &pipe;
    std::string error, sqlstate;
    worker::report_progress(j.id, "export", 0, 0);
    bool ok = worker::in_transaction(
        "hb_lifecycle: exporting a partition",
        [&] {
            export_rows(&st);
            // What is left of the CSV, in this transaction still (a push
            // may fail, and then the export must).
            std::string &rest = st.csv.buffer();
            st.csv_bytes += rest.size();
            if (!rest.empty() && !pipe.push(rest)) {
                char why[512];
                strlcpy(why, pipe.error().c_str(), sizeof why);
                ereport(ERROR, (errmsg("archive export failed: %s", why)));
            }
        },
        &error, &sqlstate, /*repeatable_read=*/true);
    if (!ok) {
        pipe.abandon();
        if (sqlstate == "57014" && worker::cancel_requested(j.id))
            throw Cancelled();
        throw std::runtime_error("export of " + j.name + " failed: " + error);
    }
    res.rows = st.rows;
    res.csv_bytes = st.csv_bytes;
    res.file = pipe.finish();

    if (store.is_s3()) {
        worker::report_progress(j.id, "upload", res.rows, 0);
        try {
            upload_file(store, j.id, spool, data_path, res.file.bytes);
        } catch (...) {
            remove_quietly(spool);
            throw;
        }
        remove_quietly(spool);
    }
    std::uint64_t stored = 0;
    if (!store.size_of(data_path, &stored) || stored != res.file.bytes)
        throw std::runtime_error("the archive file " + store.url(data_path) +
                                 " does not have the size that was written");

    core::Manifest m;
    m.parent = j.parent_path;
    m.partition = j.name;
    m.range_start = j.range_start;
    m.range_end = j.range_end;
    m.columns = j.columns;
    m.row_count = res.rows;
    m.bytes = res.csv_bytes;
    m.compression = cfg.gzip ? "gzip" : "none";
    m.files = {res.file};
    m.extension_version = j.extension_version;
    m.created_at = iso_now();
    worker::report_progress(j.id, "manifest", res.rows, res.file.bytes);
    store.write_small(manifest_path, core::manifest_json(m));
    res.manifest_url = store.url(manifest_path);
    res.uploaded = true;
    return res;
}

// Where a failed archive alerts, and how often: enough of a Config for
// send_alert() and alert_interval_arg(), read even when the rest of the
// configuration cannot be.
Config alert_config() {
    Config c;
    c.webhook = alert_target();
    c.alert_interval_s = guc::alert_min_interval_s;
    return c;
}

// The alert_interval argument of _hb_archive_failed and _hb_jobs_recover:
// the webhook's rate limit, or NULL (*null_flag 'n') when there is none.
Datum alert_interval_arg(const Config &cfg, char *null_flag) {
    *null_flag = cfg.webhook.empty() ? 'n' : ' ';
    char *interval = psprintf("%ld seconds", cfg.alert_interval_s);
    return DirectFunctionCall3(interval_in, CStringGetDatum(interval), ObjectIdGetDatum(InvalidOid),
                               Int32GetDatum(-1));
}

void send_alert(const Config &cfg, const std::string &partition, const std::string &message) {
    if (cfg.webhook.empty())
        return;
    std::string text = "hb_lifecycle: the archive of partition " + partition + " in database " +
                       std::string(guc::database) + " failed: " + message;
    core::WebhookResult r = core::post_webhook(cfg.webhook, core::webhook_body(text), 10);
    if (!r.ok())
        ereport(WARNING, (errmsg("hb_lifecycle worker: the alert about %s was not sent: %s",
                                 partition.c_str(), r.error.c_str())));
}

Outcome run_archive(int64 job_id) {
    Outcome out;
    ArchiveJob j;
    j.id = job_id;
    std::string error, sqlstate;
    worker::report_progress(job_id, "starting", 0, 0);
    if (!worker::in_transaction(
            "hb_lifecycle: starting an archive", [&] { begin_archive(&j); }, &error, &sqlstate)) {
        worker::in_transaction("hb_lifecycle: recording a failed job", [&] {
            char *sql = psprintf("SELECT %s._hb_job_failed($1, $2)", extension_schema_quoted());
            Oid types[2] = {INT8OID, TEXTOID};
            Datum values[2] = {Int64GetDatum(job_id), CStringGetTextDatum(error.c_str())};
            run_sql(sql, 2, types, values, SPI_OK_SELECT);
        });
        return {"failed", sqlstate, error, 0};
    }

    auto started = std::chrono::steady_clock::now();
    bool cancelled = false;
    std::string failure;
    ArchiveResult res;
    Config cfg = alert_config();
    try {
        std::string webhook = cfg.webhook;
        cfg = load_config();
        cfg.webhook = webhook;
        res = archive_partition(cfg, j);
    } catch (const Cancelled &) {
        cancelled = true;
        failure = "cancelled";
    } catch (const std::exception &e) {
        failure = e.what();
        if (failure.empty())
            failure = "the archive failed";
    }
    // An S3 request that hb_cancel_job interrupted fails like any other.
    if (!failure.empty() && !ShutdownRequestPending && worker::cancel_requested(job_id)) {
        cancelled = true;
        failure = "cancelled";
    }
    // Shutting down (SIGTERM): the job is queued again, for the next worker.
    if (!failure.empty() && ShutdownRequestPending) {
        worker::in_transaction("hb_lifecycle: queueing a job again", [&] {
            char *sql = psprintf("UPDATE %s._hb_jobs SET state = 'queued' WHERE id = $1",
                                 extension_schema_quoted());
            Oid types[1] = {INT8OID};
            Datum values[1] = {Int64GetDatum(job_id)};
            run_sql(sql, 1, types, values, SPI_OK_UPDATE);
        });
        return {"queued", "57P01", "the worker is shutting down; the job runs when it is back", 0};
    }

    if (failure.empty()) {
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::string state;
        bool ok = worker::in_transaction(
            "hb_lifecycle: recording an archive",
            [&] {
                char *sql = psprintf("SELECT %s._hb_archive_done($1, $2, $3, $4, $5, $6, $7, $8)",
                                     extension_schema_quoted());
                Oid types[8] = {INT8OID, INT8OID, INT8OID, INT8OID,
                                TEXTOID, TEXTOID, BOOLOID, FLOAT8OID};
                Datum values[8] = {Int64GetDatum(job_id),
                                   Int64GetDatum(int64(res.rows)),
                                   Int64GetDatum(int64(res.csv_bytes)),
                                   Int64GetDatum(int64(res.file.bytes)),
                                   CStringGetTextDatum(res.file.sha256.c_str()),
                                   CStringGetTextDatum(res.manifest_url.c_str()),
                                   BoolGetDatum(res.uploaded),
                                   Float8GetDatum(seconds)};
                run_sql(sql, 8, types, values, SPI_OK_SELECT);
                state = text_value(0, 1);
            },
            &error, &sqlstate);
        if (ok) {
            ereport(LOG,
                    (errmsg("hb_lifecycle worker: partition %s %s: %llu rows, %llu bytes in %s "
                            "(%.1f s)",
                            j.name.c_str(), res.uploaded ? "archived" : "already archived",
                            static_cast<unsigned long long>(res.rows),
                            static_cast<unsigned long long>(res.file.bytes),
                            res.manifest_url.c_str(), seconds)));
            return {state, "", "", int64(res.rows)};
        }
        failure = "recording the archive failed: " + error;
    }

    bool alert = false;
    worker::in_transaction("hb_lifecycle: recording a failed archive", [&] {
        char *sql =
            psprintf("SELECT %s._hb_archive_failed($1, $2, $3, $4)", extension_schema_quoted());
        Oid types[4] = {INT8OID, TEXTOID, BOOLOID, INTERVALOID};
        char nulls[4] = {' ', ' ', ' ', ' '};
        Datum values[4] = {Int64GetDatum(job_id), CStringGetTextDatum(failure.c_str()),
                           BoolGetDatum(cancelled), alert_interval_arg(cfg, &nulls[3])};
        SPI_execute_with_args(sql, 4, types, values, nulls, false, 0);
        if (SPI_processed == 1)
            alert = text_value(0, 1) == "t";
    });
    if (cancelled)
        return {"cancelled", "57014", "the archive was cancelled", 0};
    ereport(WARNING, (errmsg("hb_lifecycle worker: the archive of partition %s failed: %s",
                             j.name.c_str(), failure.c_str())));
    if (alert)
        send_alert(cfg, j.name, failure);
    return {"archive_failed", "", failure, 0};
}

// ---- restore -------------------------------------------------------------

struct RestoreJob {
    int64 id = 0;
    Oid owner = InvalidOid;
    std::string name, manifest_url;
    std::int64_t row_count = 0;
    std::vector<core::ManifestFile> files;
    std::vector<std::string> columns;
    bool gzip = true;
};

core::GzFileReader *copy_reader = nullptr;  // the file COPY reads (one at a time)
char copy_failure[512];

int64 copy_job = 0;  // the restore job COPY reads for (to stop it on cancel)

int copy_source(void *outbuf, int minread, int maxread) {
    if (worker::cancel_requested(copy_job))
        ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("restore cancelled")));
    bool failed = false;
    std::size_t got = 0;
    try {
        while (got < std::size_t(minread)) {
            std::size_t n =
                copy_reader->read(static_cast<char *>(outbuf) + got, std::size_t(maxread) - got);
            if (n == 0)
                break;
            got += n;
        }
    } catch (const std::exception &e) {
        strlcpy(copy_failure, e.what(), sizeof copy_failure);
        failed = true;
    }
    if (failed)
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("%s", copy_failure)));
    return int(got);
}

// The manifest's URL as a store and a path.
std::pair<ArchiveTarget, std::string> locate(const std::string &url) {
    ArchiveTarget t;
    if (url.rfind("file://", 0) == 0) {
        t.kind = ArchiveTarget::Kind::File;
        return {t, url.substr(7)};
    }
    if (url.rfind("s3://", 0) == 0) {
        std::string rest = url.substr(5);
        std::size_t slash = rest.find('/');
        if (slash == std::string::npos)
            throw std::runtime_error("the manifest URL " + url + " has no key");
        t.kind = ArchiveTarget::Kind::S3;
        t.bucket = rest.substr(0, slash);
        return {t, rest.substr(slash + 1)};
    }
    throw std::runtime_error("the manifest URL " + url + " is neither file:// nor s3://");
}

std::string sha256_of_file(const std::string &path, std::uint64_t *size) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + path);
    core::Sha256 sha;
    std::vector<char> buf(1 << 20);
    *size = 0;
    while (in) {
        in.read(buf.data(), std::streamsize(buf.size()));
        std::size_t n = std::size_t(in.gcount());
        sha.update(buf.data(), n);
        *size += n;
    }
    return sha.hex_final();
}

Outcome run_restore(int64 job_id) {
    RestoreJob j;
    j.id = job_id;
    std::string error, sqlstate;
    std::vector<std::string> spooled;
    // Nothing of a restore that did not end is kept: it failed, was
    // cancelled (hb_cancel_job), or was interrupted because the worker is
    // shutting down (the caller runs it again; an archive is queued again
    // instead, as it has no caller's result to give). Only an interruption
    // is told as such: any other failure keeps its own message and code.
    auto fail = [&](std::string message, std::string code) -> Outcome {
        for (const auto &p : spooled)
            remove_quietly(p);
        bool interrupted = code == "57014" ||
                           message.find("restore cancelled") != std::string::npos ||
                           message.find("S3 request interrupted") != std::string::npos;
        bool cancelled = false;
        if (interrupted && ShutdownRequestPending) {
            message = "the worker was shut down while it ran this restore; nothing was restored";
            code = "57014";
        } else if (interrupted && worker::cancel_requested(job_id)) {
            cancelled = true;
            message = "restore cancelled";
            code = "57014";
        }
        worker::in_transaction("hb_lifecycle: recording a failed restore", [&] {
            char *sql = psprintf("SELECT %s._hb_job_failed($1, $2, $3)", extension_schema_quoted());
            Oid types[3] = {INT8OID, TEXTOID, BOOLOID};
            Datum values[3] = {Int64GetDatum(job_id), CStringGetTextDatum(message.c_str()),
                               BoolGetDatum(cancelled)};
            run_sql(sql, 3, types, values, SPI_OK_SELECT);
        });
        ereport(
            cancelled ? LOG : WARNING,
            (errmsg("hb_lifecycle worker: restore job %lld %s: %s", static_cast<long long>(job_id),
                    cancelled ? "cancelled" : "failed", message.c_str())));
        return {cancelled ? "cancelled" : "failed", code, message, 0};
    };
    worker::report_progress(job_id, "starting", 0, 0);
    if (!worker::in_transaction(
            "hb_lifecycle: starting a restore",
            [&] {
                char *sql = psprintf(
                    "SELECT partition_name, owner, manifest_url FROM "
                    "%s._hb_restore_begin($1)",
                    extension_schema_quoted());
                Oid types[1] = {INT8OID};
                Datum values[1] = {Int64GetDatum(job_id)};
                run_sql(sql, 1, types, values, SPI_OK_SELECT);
                bool isnull;
                j.name = text_value(0, 1);
                j.owner = DatumGetObjectId(
                    SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
                j.manifest_url = text_value(0, 3);
            },
            &error, &sqlstate))
        return fail(error, sqlstate);

    std::vector<std::string> locals;
    std::string files_text, columns_text;
    try {
        auto [target, manifest_path] = locate(j.manifest_url);
        Config cfg = load_config(target.kind == ArchiveTarget::Kind::S3);
        Store store(cfg, target, job_id);
        std::string manifest;
        if (!store.read_small(manifest_path, &manifest))
            throw std::runtime_error("the manifest " + j.manifest_url + " is not there");
        bool ok = worker::in_transaction(
            "hb_lifecycle: reading a manifest",
            [&] {
                char *sql = psprintf(
                    "SELECT row_count, compression, files::text, columns "
                    "FROM %s._hb_restore_plan($1, $2)",
                    extension_schema_quoted());
                Oid types[2] = {INT8OID, TEXTOID};
                Datum values[2] = {Int64GetDatum(job_id), CStringGetTextDatum(manifest.c_str())};
                run_sql(sql, 2, types, values, SPI_OK_SELECT);
                j.row_count = int64(count_value(0, 1, "row_count"));
                j.gzip = strcmp(cstring_value(0, 2), "gzip") == 0;
                // The files and columns, one per row of a second query.
                char *fsql = psprintf(
                    "SELECT f.name, f.bytes, f.sha256 FROM "
                    "jsonb_to_recordset($1::jsonb) AS f(name text, bytes bigint, "
                    "sha256 text)");
                files_text = cstring_value(0, 3);
                columns_text = cstring_value(0, 4);
                Oid t1[1] = {TEXTOID};
                Datum v1[1] = {CStringGetTextDatum(files_text.c_str())};
                run_sql(fsql, 1, t1, v1, SPI_OK_SELECT);
                for (uint64 i = 0; i < SPI_processed; i++) {
                    uint64 bytes = count_value(int(i), 2, "file size");
                    const char *name = cstring_value(int(i), 1), *sha = cstring_value(int(i), 3);
                    j.files.push_back({name, bytes, sha});
                }
                Datum v2[1] = {CStringGetTextDatum(columns_text.c_str())};
                run_sql("SELECT c->>'name' FROM jsonb_array_elements($1::jsonb) c", 1, t1, v2,
                        SPI_OK_SELECT);
                for (uint64 i = 0; i < SPI_processed; i++)
                    j.columns.push_back(cstring_value(int(i), 1));
            },
            &error, &sqlstate);
        if (!ok)
            return fail(error, sqlstate);
        std::string dir = manifest_path.substr(0, manifest_path.rfind('/') + 1);
        for (const auto &f : j.files) {
            if (!core::valid_object_name(f.name))
                throw std::runtime_error("the manifest names a file " + f.name +
                                         " that is not valid");
            std::string local = dir + f.name;
            if (store.is_s3()) {
                worker::report_progress(job_id, "download", 0, 0);
                local = spool_dir() + "/restore-" + std::to_string(job_id) + "-" + f.name;
                spooled.push_back(local);
                auto sink = core::make_file_sink(local);
                core::S3Result r =
                    store.s3->get_object(target.bucket, dir + f.name,
                                         [&](const char *p, std::size_t n) { sink->write(p, n); });
                if (!r.ok()) {
                    sink->abort();
                    throw std::runtime_error(
                        Store::s3_error("cannot download", target.bucket + "/" + dir + f.name, r));
                }
                sink->finish();
            }
            if (worker::cancel_requested(job_id))
                throw std::runtime_error("restore cancelled");
            worker::report_progress(job_id, "verify", 0, 0);
            std::uint64_t size = 0;
            std::string sha = sha256_of_file(local, &size);
            if (sha != f.sha256 || size != f.bytes) {
                sqlstate = "XX001";
                throw std::runtime_error("archive file " + f.name + " of partition " + j.name +
                                         " is corrupt: its SHA-256 is " + sha + " (" +
                                         std::to_string(size) + " bytes), the manifest says " +
                                         f.sha256 + " (" + std::to_string(f.bytes) + " bytes)");
            }
            locals.push_back(local);
        }
    } catch (const std::exception &e) {
        return fail(e.what(), sqlstate.empty() ? "58030" : sqlstate);
    }

    // One transaction: create the table, COPY every file in, check the
    // count, attach.
    std::vector<std::unique_ptr<core::GzFileReader>> readers;
    try {
        for (const auto &l : locals)
            readers.push_back(std::make_unique<core::GzFileReader>(l));
    } catch (const std::exception &e) {
        return fail(e.what(), "58030");
    }
    int64 rows = 0;
    std::string state;
    worker::report_progress(job_id, "load", 0, 0);
    bool ok = worker::in_transaction(
        "hb_lifecycle: restoring a partition",
        [&] {
            char *sql = psprintf("SELECT %s._hb_restore_prepare($1)", extension_schema_quoted());
            Oid types[2] = {INT8OID, INT8OID};
            Datum values[2] = {Int64GetDatum(job_id), 0};
            run_sql(sql, 1, types, values, SPI_OK_SELECT);
            bool isnull;
            Oid relid = DatumGetObjectId(
                SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
            SpiEnv env;
            spi_env_begin(&env, j.owner);
            Relation rel = table_open(relid, RowExclusiveLock);
            List *attnames = NIL;
            for (const auto &c : j.columns)
                attnames = lappend(attnames, makeString(pstrdup(c.c_str())));
            List *options =
                list_make2(makeDefElem(pstrdup("format"), (Node *)makeString(pstrdup("csv")), -1),
                           makeDefElem(pstrdup("header"), (Node *)makeBoolean(true), -1));
            copy_job = job_id;
            for (auto &reader : readers) {
                copy_reader = reader.get();
                // COPY's executor state needs the table in its range table.
                ParseState *pstate = make_parsestate(nullptr);
                ParseNamespaceItem *nsitem = addRangeTableEntryForRelation(
                    pstate, rel, RowExclusiveLock, nullptr, false, false);
                nsitem->p_rte->requiredPerms = ACL_INSERT;
                CopyFromState cstate = BeginCopyFrom(pstate, rel, nullptr, nullptr, false,
                                                     copy_source, attnames, options);
                rows += int64(CopyFrom(cstate));
                EndCopyFrom(cstate);
                free_parsestate(pstate);
                copy_reader = nullptr;
            }
            table_close(rel, NoLock);
            spi_env_end(&env);
            if (rows != j.row_count)
                ereport(ERROR,
                        (errcode(ERRCODE_DATA_CORRUPTED),
                         errmsg("the archive of partition %s has %lld rows, its manifest says %lld",
                                j.name.c_str(), static_cast<long long>(rows),
                                static_cast<long long>(j.row_count)),
                         errhint("The partition was not restored.")));
            char *fsql =
                psprintf("SELECT %s._hb_restore_finish($1, $2)", extension_schema_quoted());
            values[1] = Int64GetDatum(rows);
            run_sql(fsql, 2, types, values, SPI_OK_SELECT);
            state = text_value(0, 1);
        },
        &error, &sqlstate);
    copy_reader = nullptr;
    readers.clear();
    if (!ok)
        return fail(error, sqlstate);
    for (const auto &p : spooled)
        remove_quietly(p);
    ereport(LOG, (errmsg("hb_lifecycle worker: partition %s restored, %lld rows", j.name.c_str(),
                         static_cast<long long>(rows))));
    return {state, "", "", rows};
}

}  // namespace

bool recover_after_restart() {
    std::vector<std::pair<std::string, std::string>> uploads;
    std::vector<std::string> alerts;  // partitions whose failed archive alerts
    Config alert_cfg = alert_config();
    bool ok = worker::in_transaction("hb_lifecycle: recovering jobs", [&] {
        char *sql = psprintf(
            "SELECT job, upload_key, upload_id, requeued, partition_name, alert FROM "
            "%s._hb_jobs_recover($1)",
            extension_schema_quoted());
        Oid types[1] = {INTERVALOID};
        char nulls[1] = {' '};
        Datum values[1] = {alert_interval_arg(alert_cfg, &nulls[0])};
        run_sql(sql, 1, types, values, SPI_OK_SELECT, nulls);
        for (uint64 i = 0; i < SPI_processed; i++) {
            char *job = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
            char *key = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
            char *id = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
            char *requeued = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4);
            char *partition = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 5);
            char *alert = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 6);
            if (id != nullptr)
                uploads.emplace_back(key ? key : "", id);
            if (requeued != nullptr && strcmp(requeued, "t") == 0)
                ereport(LOG, (errmsg("hb_lifecycle worker: job %s, left running by a previous "
                                     "worker, is queued again",
                                     job)));
            else
                ereport(WARNING, (errmsg("hb_lifecycle worker: job %s failed: three workers "
                                         "stopped while they ran it",
                                         job)));
            if (alert != nullptr && strcmp(alert, "t") == 0 && partition != nullptr)
                alerts.emplace_back(partition);
        }
    });
    if (!ok)
        return false;
    // After the commit: no network I/O inside a transaction.
    for (const auto &partition : alerts)
        send_alert(alert_cfg, partition,
                   "the worker stopped three times while it archived this partition; see the "
                   "server log");
    // The spool: whatever a dead worker left.
    std::string dir = spool_dir();
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        ereport(WARNING, (errmsg("hb_lifecycle worker: cannot create \"%s\": %m", dir.c_str())));
    if (DIR *d = AllocateDir(dir.c_str())) {
        while (struct dirent *e = ReadDir(d, dir.c_str()))
            if (e->d_name[0] != '.')
                remove_quietly(dir + "/" + e->d_name);
        FreeDir(d);
    }
    // Unfinished multipart uploads (their job aborts them again if this fails).
    if (!uploads.empty()) {
        try {
            Config cfg = load_config();
            if (cfg.target.kind == ArchiveTarget::Kind::S3) {
                core::S3Client s3(cfg.s3);
                for (const auto &[key, id] : uploads)
                    (void)s3.abort_multipart(cfg.target.bucket, key, id);
            }
        } catch (const std::exception &e) {
            ereport(LOG,
                    (errmsg("hb_lifecycle worker: unfinished uploads not aborted: %s", e.what())));
        }
    }
    return true;
}

Outcome run_job(std::int64_t job_id, worker::JobKind kind) {
    return kind == worker::JobKind::Restore ? run_restore(job_id) : run_archive(job_id);
}

}  // namespace hb::archive

extern "C" {
PG_FUNCTION_INFO_V1(hb_partition_written);
}

// The late-write trigger (see 85__hb_archive_steps.sql): _hb_late_write as
// the extension's owner, once per partition and subtransaction (a statement
// that writes many rows calls it once; an update undone by ROLLBACK TO
// SAVEPOINT was made in a subtransaction whose id never comes back, so the
// next write calls it again).
extern "C" Datum hb_partition_written(PG_FUNCTION_ARGS) {
    static LocalTransactionId seen_xact = InvalidLocalTransactionId;
    static SubTransactionId seen_subxact = InvalidSubTransactionId;
    static Oid seen_rel = InvalidOid;
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("hb_partition_written() must be called as a trigger")));
    auto *td = reinterpret_cast<TriggerData *>(fcinfo->context);
    Oid rel = RelationGetRelid(td->tg_relation);
    if (MyProc->lxid == seen_xact && GetCurrentSubTransactionId() == seen_subxact &&
        rel == seen_rel)
        return PointerGetDatum(nullptr);
    const char *op = TRIGGER_FIRED_BY_INSERT(td->tg_event)   ? "rows inserted"
                     : TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "rows updated"
                     : TRIGGER_FIRED_BY_DELETE(td->tg_event) ? "rows deleted"
                                                             : "truncated";
    // As the extension's owner (what it records is not the table owner's
    // to write), in a security-restricted operation; also for a partition
    // detached for now (_hb_late_write finds it by name and schema).
    hb::SpiEnv env;
    hb::spi_env_begin(&env, hb::config_table_owner());
    char *sql = psprintf("SELECT %s._hb_late_write($1, $2)", hb::extension_schema_quoted());
    Oid types[2] = {REGCLASSOID, TEXTOID};
    Datum values[2] = {ObjectIdGetDatum(rel), CStringGetTextDatum(op)};
    hb::spi_run_args(&env, sql, 2, types, values, nullptr, SPI_OK_SELECT);
    hb::spi_env_end(&env);
    seen_xact = MyProc->lxid;
    seen_subxact = GetCurrentSubTransactionId();
    seen_rel = rel;
    return PointerGetDatum(nullptr);
}
