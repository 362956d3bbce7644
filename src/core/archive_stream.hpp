// archive_stream.hpp — the pure parts of a partition's export to an
// archive: rows become CSV by COPY's rules, the CSV is gzip-compressed (or
// not), and SHA-256 digests are taken of what is written, all streaming in
// constant memory.
//
// Pure C++ (no postgres.h): OpenSSL for SHA-256, zlib for gzip. Nothing here
// touches PostgreSQL, so it may run on a thread of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace hb::core {

// COPY ... (FORMAT csv) output rules: ',' between fields, "\n" after each
// row, NULL as nothing, and a value quoted ("...", with '"' doubled) when it
// is empty, holds ',', '"', '\r' or '\n', or is exactly "\." (which COPY
// would read back as the end of data).
class CsvWriter {
public:
    void field(std::string_view value);
    void null();
    void end_row();
    // What has been written since the last take().
    std::string &buffer() noexcept { return out_; }
    void take(std::string *into);

private:
    void separate();
    std::string out_;
    bool row_open_ = false;
};

// Streaming SHA-256 (hex digest, lower case).
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256 &) = delete;
    Sha256 &operator=(const Sha256 &) = delete;
    void update(const void *data, std::size_t n);
    void update(std::string_view s) { update(s.data(), s.size()); }
    // The digest of everything given; the object cannot be updated after.
    std::string hex_final();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Streaming gzip (RFC 1952) compressor. Output goes to sink as it is made.
class GzipWriter {
public:
    using Sink = std::function<void(const char *, std::size_t)>;
    explicit GzipWriter(Sink sink, int level = 6);
    ~GzipWriter();
    GzipWriter(const GzipWriter &) = delete;
    GzipWriter &operator=(const GzipWriter &) = delete;
    void write(const void *data, std::size_t n);
    void write(std::string_view s) { write(s.data(), s.size()); }
    // Flushes the rest and the gzip trailer; nothing may be written after.
    void finish();
    std::uint64_t bytes_in() const noexcept { return in_; }
    std::uint64_t bytes_out() const noexcept { return out_; }

private:
    void pump(int flush);
    struct Impl;
    std::unique_ptr<Impl> impl_;
    Sink sink_;
    std::uint64_t in_ = 0, out_ = 0;
    bool finished_ = false;
};

// Reads a local file, gunzipping it when it is gzip (zlib's gzread, which
// passes other files through as they are). Throws std::runtime_error when
// the file cannot be opened or is corrupt.
class GzFileReader {
public:
    explicit GzFileReader(const std::string &path);
    ~GzFileReader();
    GzFileReader(const GzFileReader &) = delete;
    GzFileReader &operator=(const GzFileReader &) = delete;
    // Up to n bytes into buf; 0 at the end.
    std::size_t read(char *buf, std::size_t n);

private:
    void *file_ = nullptr;
};

}  // namespace hb::core
