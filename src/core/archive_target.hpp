// archive_target.hpp — where archives go, and the names of what is written.
//
// Pure C++ (no postgres.h). hb_lifecycle.archive_url is `file:///dir` or
// `s3://bucket/prefix`; an archive of a partition is
//   <url>/<parent>/<partition>/part-00000.csv.gz ... and manifest.json.
// Credentials for S3 come from a file in the AWS credentials format, read
// by the worker; nothing here logs or returns a secret in an error.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hb::core {

struct ArchiveTarget {
    enum class Kind { File, S3 } kind = Kind::File;
    std::string dir;     // File: absolute directory, no trailing '/'
    std::string bucket;  // S3
    std::string prefix;  // S3: key prefix, no leading or trailing '/', may be empty
};

// Parses an archive_url; on failure returns nullopt and sets *error to a
// sentence that says what is wrong (it quotes no part of the URL beyond
// its scheme, which cannot hold a secret).
std::optional<ArchiveTarget> parse_archive_url(std::string_view url, std::string *error);

// The key (S3) or path (file) of an object of a partition's archive:
// object_path(t, "public.heartbeats", "hb_2026_11_02", "manifest.json").
// parent and partition are used as they are: callers pass names that
// passed validation (see valid_object_name).
std::string object_path(const ArchiveTarget &t, std::string_view parent, std::string_view partition,
                        std::string_view file);

// The URL a manifest is recorded under (hb_partitions.checksum_manifest_url).
std::string object_url(const ArchiveTarget &t, std::string_view path);

// Whether a table or partition name can be part of an object name as it is:
// 1 to 63 bytes of letters, digits, '_', '-', '.', not starting with '.'.
bool valid_object_name(std::string_view name);

// The name of data part n: part-00000.csv.gz (or .csv without compression).
std::string part_name(unsigned n, bool gzip);

// AWS credentials file (~/.aws/credentials format): [profile] sections with
// aws_access_key_id, aws_secret_access_key and, optionally,
// aws_session_token. Comments start with '#' or ';'.
struct AwsCredentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // empty when none
};

// Reads the profile from the file's text; nullopt with *error (naming the
// profile and the missing key, never a value) when it is not there whole.
std::optional<AwsCredentials> parse_aws_credentials(std::string_view text, std::string_view profile,
                                                    std::string *error);

}  // namespace hb::core
