// s3_client.cpp — see s3_client.hpp.
#include "core/s3_client.hpp"

#include "core/archive_stream.hpp"
#include "core/manifest.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <type_traits>

namespace hb::core {
namespace {

std::once_flag curl_init_once;

bool transient(CURLcode rc) {
    switch (rc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
            return true;
        default:
            return false;
    }
}

bool header_is(std::string_view line, std::string_view name, std::string_view *value) {
    if (line.size() <= name.size() || line[name.size()] != ':')
        return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        char a = line[i], b = name[i];
        if (a >= 'A' && a <= 'Z')
            a = static_cast<char>(a - 'A' + 'a');
        if (a != b)
            return false;
    }
    std::string_view v = line.substr(name.size() + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
        v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
        v.remove_suffix(1);
    *value = v;
    return true;
}

std::string sha256_hex(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.hex_final();
}

}  // namespace

std::string uri_encode(std::string_view s, bool keep_slash) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
        if (unreserved || (keep_slash && c == '/')) {
            out += ch;
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        }
    }
    return out;
}

std::string xml_value(std::string_view xml, std::string_view tag) {
    std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
    std::size_t a = xml.find(open);
    if (a == std::string_view::npos)
        return "";
    a += open.size();
    std::size_t b = xml.find(close, a);
    if (b == std::string_view::npos)
        return "";
    return std::string(xml.substr(a, b - a));
}

struct S3Client::Request {
    const char *method = "GET";
    std::string bucket, key, query;  // query: sorted and encoded, name=value&...
    std::string_view body;
    bool sse = false;
    const char *content_type = nullptr;
    const std::function<void(const char *, std::size_t)> *sink = nullptr;
    // state of one attempt
    std::size_t sent = 0;
    std::uint64_t delivered = 0;
    S3Result *result = nullptr;
};

S3Client::S3Client(S3Config config) : config_(std::move(config)) {
    std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
    if (curl_ == nullptr)
        throw std::runtime_error("S3: cannot start libcurl");
    while (!config_.endpoint.empty() && config_.endpoint.back() == '/')
        config_.endpoint.pop_back();
}

S3Client::~S3Client() {
    if (curl_)
        curl_easy_cleanup(static_cast<CURL *>(curl_));
}

// libcurl's callbacks (plain functions: curl_easy_setopt is a macro that a
// lambda's commas would confuse).
static_assert(std::is_same_v<curl_off_t, std::int64_t>, "on_progress is declared with int64_t");

int S3Client::on_progress(void *ud, std::int64_t, std::int64_t, std::int64_t, std::int64_t) {
    auto *self = static_cast<S3Client *>(ud);
    try {
        return self->interrupted && self->interrupted() ? 1 : 0;
    } catch (...) {
        return 1;
    }
}

size_t S3Client::on_header(char *p, size_t size, size_t n, void *ud) {
    auto *rq = static_cast<Request *>(ud);
    std::string_view line(p, size * n), v;
    if (line.rfind("HTTP/", 0) == 0) {  // a status line (also of a 100 Continue)
        std::size_t sp = line.find(' ');
        if (sp != std::string_view::npos)
            rq->result->status =
                std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
    } else if (header_is(line, "etag", &v)) {
        rq->result->etag = std::string(v);
    } else if (header_is(line, "x-amz-server-side-encryption", &v)) {
        rq->result->sse = std::string(v);
    } else if (header_is(line, "content-length", &v)) {
        rq->result->content_length = std::strtoull(std::string(v).c_str(), nullptr, 10);
    }
    return size * n;
}

size_t S3Client::on_write(char *p, size_t size, size_t n, void *ud) {
    auto *rq = static_cast<Request *>(ud);
    // Only a successful answer's body goes to the sink; an error's is kept
    // to be read.
    if (rq->sink != nullptr && rq->result->status >= 200 && rq->result->status < 300) {
        (*rq->sink)(p, size * n);
        rq->delivered += size * n;
    } else {
        rq->result->body.append(p, size * n);
    }
    return size * n;
}

size_t S3Client::on_read(char *buf, size_t size, size_t n, void *ud) {
    auto *rq = static_cast<Request *>(ud);
    size_t left = rq->body.size() - rq->sent;
    size_t k = std::min(left, size * n);
    std::memcpy(buf, rq->body.data() + rq->sent, k);
    rq->sent += k;
    return k;
}

S3Result S3Client::perform(Request &req) {
    CURL *c = static_cast<CURL *>(curl_);
    S3Result r;
    // libcurl 7.88 signs a path right only when it needs no encoding: keys
    // are made of the characters archive names use.
    for (char ch : req.key)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '/' || ch == '.' || ch == '_' || ch == '-')) {
            r.error = "S3 object keys may hold letters, digits, '/', '.', '_' and '-' only";
            return r;
        }
    std::string url = config_.endpoint + "/" + uri_encode(req.bucket, false);
    if (!req.key.empty())
        url += "/" + uri_encode(req.key, true);
    if (!req.query.empty())
        url += "?" + req.query;
    std::string payload_hash = sha256_hex(req.body);
    std::string sigv4 = "aws:amz:" + config_.region + ":s3";
    static std::mt19937 rng{std::random_device{}()};

    for (int attempt = 1; attempt <= config_.max_attempts; ++attempt) {
        r = S3Result();
        r.attempts = attempt;
        req.sent = 0;
        req.result = &r;
        curl_easy_reset(c);
        struct curl_slist *headers = nullptr;
        headers = curl_slist_append(headers, ("x-amz-content-sha256: " + payload_hash).c_str());
        if (req.sse && !config_.sse.empty() && config_.sse != "none")
            headers = curl_slist_append(headers,
                                        ("x-amz-server-side-encryption: " + config_.sse).c_str());
        if (!config_.credentials.session_token.empty())
            headers = curl_slist_append(
                headers, ("x-amz-security-token: " + config_.credentials.session_token).c_str());
        if (req.content_type)
            headers = curl_slist_append(headers,
                                        (std::string("Content-Type: ") + req.content_type).c_str());
        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
        curl_easy_setopt(c, CURLOPT_USERNAME, config_.credentials.access_key_id.c_str());
        curl_easy_setopt(c, CURLOPT_PASSWORD, config_.credentials.secret_access_key.c_str());
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, config_.connect_timeout_s);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, config_.timeout_s);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &req);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &req);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        // A connection that stalls (under 1 byte/s for a minute) is a
        // timeout, whatever timeout_s allows a slow but moving transfer.
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        if (interrupted) {
            curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
            curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        }
        if (std::strcmp(req.method, "HEAD") == 0) {
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        } else if (std::strcmp(req.method, "PUT") == 0) {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
            curl_easy_setopt(c, CURLOPT_READDATA, &req);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        } else if (std::strcmp(req.method, "POST") == 0) {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                             static_cast<curl_off_t>(req.body.size()));
        } else if (std::strcmp(req.method, "DELETE") == 0) {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
        }
        CURLcode rc = curl_easy_perform(c);
        curl_slist_free_all(headers);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        r.status = status;
        bool retry = false;
        if (rc == CURLE_ABORTED_BY_CALLBACK) {
            r.error = "S3 request interrupted";
            retry = false;
        } else if (rc != CURLE_OK) {
            r.error = std::string("S3 request failed: ") + curl_easy_strerror(rc);
            retry = transient(rc);
        } else if (status >= 200 && status < 300) {
            // CompleteMultipartUpload can answer 200 with an error in its body.
            if (r.body.find("<Error>") != std::string::npos) {
                r.error =
                    "S3 error " + xml_value(r.body, "Code") + ": " + xml_value(r.body, "Message");
                retry = xml_value(r.body, "Code") == "InternalError" ||
                        xml_value(r.body, "Code") == "SlowDown";
            }
        } else {
            std::string code = xml_value(r.body, "Code"), msg = xml_value(r.body, "Message");
            r.error = "S3 answered HTTP " + std::to_string(status) +
                      (code.empty() ? std::string() : " " + code) +
                      (msg.empty() ? std::string() : ": " + msg);
            retry = retryable_status(status);
        }
        if (r.ok() || !retry || attempt == config_.max_attempts || req.delivered > 0)
            break;
        double wait = backoff_seconds(attempt, config_.backoff_base_s, config_.backoff_cap_s,
                                      static_cast<std::uint32_t>(rng()));
        if (sleeper) {
            sleeper(wait);
        } else {
            // In slices, so that an interruption does not wait the backoff out.
            auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait);
            while (std::chrono::steady_clock::now() < until) {
                if (interrupted && interrupted())
                    break;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
        if (interrupted && interrupted()) {
            r.error = "S3 request interrupted";
            break;
        }
    }
    // Never let a secret out through an error message.
    for (const std::string *secret :
         {&config_.credentials.secret_access_key, &config_.credentials.session_token}) {
        if (secret->empty())
            continue;
        for (std::size_t at; (at = r.error.find(*secret)) != std::string::npos;)
            r.error.replace(at, secret->size(), "[redacted]");
    }
    return r;
}

S3Result S3Client::create_bucket(const std::string &bucket) {
    Request q;
    q.method = "PUT";
    q.bucket = bucket;
    return perform(q);
}

S3Result S3Client::put_object(const std::string &bucket, const std::string &key,
                              std::string_view data) {
    Request q;
    q.method = "PUT";
    q.bucket = bucket;
    q.key = key;
    q.body = data;
    q.sse = true;
    return perform(q);
}

S3Result S3Client::head_object(const std::string &bucket, const std::string &key) {
    Request q;
    q.method = "HEAD";
    q.bucket = bucket;
    q.key = key;
    return perform(q);
}

S3Result S3Client::get_object(const std::string &bucket, const std::string &key,
                              const std::function<void(const char *, std::size_t)> &sink) {
    Request q;
    q.bucket = bucket;
    q.key = key;
    q.sink = &sink;
    return perform(q);
}

S3Result S3Client::delete_object(const std::string &bucket, const std::string &key) {
    Request q;
    q.method = "DELETE";
    q.bucket = bucket;
    q.key = key;
    return perform(q);
}

S3Result S3Client::create_multipart(const std::string &bucket, const std::string &key,
                                    std::string *upload_id) {
    Request q;
    q.method = "POST";
    q.bucket = bucket;
    q.key = key;
    q.query = "uploads=";
    q.sse = true;
    S3Result r = perform(q);
    if (r.ok()) {
        *upload_id = xml_value(r.body, "UploadId");
        if (upload_id->empty())
            r.error = "S3 did not return an upload id";
    }
    return r;
}

S3Result S3Client::upload_part(const std::string &bucket, const std::string &key,
                               const std::string &upload_id, unsigned part_number,
                               std::string_view data) {
    Request q;
    q.method = "PUT";
    q.bucket = bucket;
    q.key = key;
    q.query =
        "partNumber=" + std::to_string(part_number) + "&uploadId=" + uri_encode(upload_id, false);
    q.body = data;
    return perform(q);
}

S3Result S3Client::complete_multipart(const std::string &bucket, const std::string &key,
                                      const std::string &upload_id,
                                      const std::vector<std::string> &etags) {
    std::string xml = "<CompleteMultipartUpload>";
    for (std::size_t i = 0; i < etags.size(); ++i)
        xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + etags[i] +
               "</ETag></Part>";
    xml += "</CompleteMultipartUpload>";
    Request q;
    q.method = "POST";
    q.bucket = bucket;
    q.key = key;
    q.query = "uploadId=" + uri_encode(upload_id, false);
    q.body = xml;
    q.content_type = "application/xml";
    return perform(q);
}

S3Result S3Client::abort_multipart(const std::string &bucket, const std::string &key,
                                   const std::string &upload_id) {
    Request q;
    q.method = "DELETE";
    q.bucket = bucket;
    q.key = key;
    q.query = "uploadId=" + uri_encode(upload_id, false);
    return perform(q);
}

}  // namespace hb::core
