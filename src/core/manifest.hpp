// manifest.hpp — the manifest.json of a partition's archive, and the
// upload rules that do not depend on a server: part sizes, retries.
//
// Pure C++ (no postgres.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hb::core {

struct ManifestFile {
    std::string name;  // part-00000.csv.gz
    std::uint64_t bytes = 0;
    std::string sha256;  // hex
};

struct ManifestColumn {
    std::string name;
    std::string type;  // format_type() of the column
};

struct Manifest {
    std::string parent;                  // schema-qualified
    std::string partition;               // hb_partitions.partition_name
    std::string range_start, range_end;  // ISO 8601, UTC
    std::vector<ManifestColumn> columns;
    std::uint64_t row_count = 0;
    std::uint64_t bytes = 0;  // of the CSV, before compression
    std::string compression;  // "gzip" or "none"
    std::vector<ManifestFile> files;
    std::string extension_version;
    std::string created_at;  // ISO 8601, UTC
};

// The manifest as JSON (keys in a fixed order, one line per key).
std::string manifest_json(const Manifest &m);

// A JSON string literal for s (quotes included), escaped per RFC 8259.
std::string json_string(std::string_view s);

// S3 multipart rules: every part but the last is at least 5 MiB, at most
// 5 GiB, and an upload has at most 10,000 parts. The part size to use for
// a configured size (clamped into [5 MiB, 5 GiB]).
inline constexpr std::size_t kMinPartBytes = 5u << 20;
inline constexpr std::uint64_t kMaxPartBytes = 5ull << 30;
inline constexpr unsigned kMaxParts = 10000;
std::size_t clamp_part_size(std::uint64_t configured);

// Retries: which HTTP answers are worth another attempt (timeouts are the
// caller's to count), and how long to wait before attempt n (1-based):
// "full jitter", a uniform draw in [0, min(cap, base * 2^(n-1))], from a
// random 32-bit value the caller supplies.
bool retryable_status(long http_status);
double backoff_seconds(int attempt, double base_s, double cap_s, std::uint32_t random);

}  // namespace hb::core
