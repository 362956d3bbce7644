// s3_client.hpp — a small S3 client for archives: single and multipart
// uploads, HEAD, GET, DELETE, signed with AWS Signature Version 4.
//
// Pure C++ (no postgres.h) on libcurl: the signing is libcurl's
// CURLOPT_AWS_SIGV4, which signs correctly when the request carries its own
// x-amz-content-sha256 header and a query string already sorted and
// encoded, with every parameter written name=value (also "uploads=").
// Path-style URLs (<endpoint>/<bucket>/<key>), so that S3-compatible
// servers work. Transient failures (timeouts, connection errors, 408, 429,
// 5xx) are retried with capped, fully jittered exponential backoff.
// Errors never contain the secret key or the session token. Object keys
// are limited to letters, digits, '/', '.', '_' and '-' (what archive
// names use; libcurl 7.88 would sign other characters wrong).
//
// Not thread-safe (one client per thread); it never calls PostgreSQL, so
// it may run on a thread of its own.
#pragma once

#include "core/archive_target.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace hb::core {

struct S3Config {
    std::string endpoint;  // e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000
    std::string region = "us-east-1";
    AwsCredentials credentials;
    std::string sse = "AES256";  // x-amz-server-side-encryption: AES256, aws:kms, or none
    long connect_timeout_s = 10;
    long timeout_s = 300;
    int max_attempts = 5;
    double backoff_base_s = 0.5;
    double backoff_cap_s = 20;
};

struct S3Result {
    long status = 0;    // HTTP status of the last attempt (0: no answer)
    int attempts = 0;   // how many were made
    std::string error;  // why it failed; empty when it did not
    std::string body;   // the answer's body (not for GET with a sink)
    std::string etag;   // ETag header, quotes included
    std::string sse;    // x-amz-server-side-encryption of the answer
    std::uint64_t content_length = 0;
    bool ok() const { return error.empty(); }
};

class S3Client {
public:
    explicit S3Client(S3Config config);
    ~S3Client();
    S3Client(const S3Client &) = delete;
    S3Client &operator=(const S3Client &) = delete;

    S3Result create_bucket(const std::string &bucket);
    S3Result put_object(const std::string &bucket, const std::string &key, std::string_view data);
    S3Result head_object(const std::string &bucket, const std::string &key);
    S3Result get_object(const std::string &bucket, const std::string &key,
                        const std::function<void(const char *, std::size_t)> &sink);
    S3Result delete_object(const std::string &bucket, const std::string &key);

    S3Result create_multipart(const std::string &bucket, const std::string &key,
                              std::string *upload_id);
    S3Result upload_part(const std::string &bucket, const std::string &key,
                         const std::string &upload_id, unsigned part_number, std::string_view data);
    S3Result complete_multipart(const std::string &bucket, const std::string &key,
                                const std::string &upload_id,
                                const std::vector<std::string> &etags);
    S3Result abort_multipart(const std::string &bucket, const std::string &key,
                             const std::string &upload_id);

    // For tests: what the retry waits would have been is observable.
    std::function<void(double seconds)> sleeper;
    // Asked about once a second during a transfer and before each retry:
    // true stops the request at once (its error says "interrupted"). The
    // worker stops on shutdown or hb_cancel_job this way.
    std::function<bool()> interrupted;

private:
    struct Request;
    S3Result perform(Request &req);
    static std::size_t on_header(char *p, std::size_t size, std::size_t n, void *ud);
    static std::size_t on_write(char *p, std::size_t size, std::size_t n, void *ud);
    static std::size_t on_read(char *buf, std::size_t size, std::size_t n, void *ud);
    static int on_progress(void *ud, std::int64_t, std::int64_t, std::int64_t, std::int64_t);
    void *curl_ = nullptr;
    S3Config config_;
};

// RFC 3986 percent-encoding as SigV4 wants it (unreserved characters kept;
// '/' kept when keep_slash).
std::string uri_encode(std::string_view s, bool keep_slash);

// The text of <tag>...</tag> in an XML answer, or "" when absent.
std::string xml_value(std::string_view xml, std::string_view tag);

}  // namespace hb::core
