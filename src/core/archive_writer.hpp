// archive_writer.hpp — one archive file written as it streams: CSV text in,
// gzip (or not), SHA-256 of the stored bytes, out to a sink (a local file or
// an S3 object, multipart above the part size), in constant memory.
//
// Pure C++ (no postgres.h). A sink either completes an object whole or
// leaves nothing: a local file is written under a temporary name, fsynced
// and renamed; an S3 upload is completed, or aborted on failure.
#pragma once

#include "core/archive_stream.hpp"
#include "core/manifest.hpp"
#include "core/s3_client.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace hb::core {

// Where the bytes of one object go. write() may throw std::runtime_error
// (its message never holds a secret); after a throw, abort() cleans up.
class ObjectSink {
public:
    virtual ~ObjectSink() = default;
    virtual void write(const char *data, std::size_t n) = 0;
    // Makes the object durable and visible under its name.
    virtual void finish() = 0;
    // Leaves no object (and no temporary file or unfinished upload).
    virtual void abort() noexcept = 0;
};

// A file: <path>.partial, fsynced, then renamed to <path> (directories are
// created as needed, mode 0700).
std::unique_ptr<ObjectSink> make_file_sink(const std::string &path);

// An S3 object: a single PUT below part_bytes, a multipart upload above.
std::unique_ptr<ObjectSink> make_s3_sink(S3Client &client, std::string bucket, std::string key,
                                         std::size_t part_bytes);

// One archive file: CSV text in, a ManifestFile out.
class ArchiveFileWriter {
public:
    ArchiveFileWriter(std::unique_ptr<ObjectSink> sink, std::string name, bool gzip,
                      int gzip_level = 6);
    ~ArchiveFileWriter();
    void write(std::string_view csv);
    // Finishes the object; returns its name, stored size and SHA-256.
    ManifestFile finish();
    void abort() noexcept;
    std::uint64_t csv_bytes() const noexcept { return csv_bytes_; }

private:
    void store(const char *p, std::size_t n);
    std::unique_ptr<ObjectSink> sink_;
    std::string name_;
    std::unique_ptr<GzipWriter> gzip_;
    Sha256 sha_;
    std::uint64_t stored_ = 0, csv_bytes_ = 0;
    bool done_ = false;
};

}  // namespace hb::core
