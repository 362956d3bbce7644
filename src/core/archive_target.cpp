// archive_target.cpp — see archive_target.hpp.
#include "core/archive_target.hpp"

#include <cstdio>

namespace hb::core {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

bool valid_bucket(std::string_view b) {
    // S3's rules for new buckets: 3-63 characters, lower-case letters,
    // digits, '.', '-', starting and ending with a letter or digit.
    if (b.size() < 3 || b.size() > 63)
        return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(b.front()) || !alnum(b.back()))
        return false;
    for (char c : b)
        if (!alnum(c) && c != '.' && c != '-')
            return false;
    return true;
}

bool valid_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == '/';
}

}  // namespace

std::optional<ArchiveTarget> parse_archive_url(std::string_view url, std::string *error) {
    ArchiveTarget t;
    if (url.rfind("file://", 0) == 0) {
        std::string_view dir = url.substr(7);
        if (dir.empty() || dir.front() != '/') {
            *error = "a file:// archive URL needs an absolute directory: file:///path/to/dir";
            return std::nullopt;
        }
        while (dir.size() > 1 && dir.back() == '/')
            dir.remove_suffix(1);
        if (dir.find("/../") != std::string_view::npos ||
            (dir.size() >= 3 && dir.substr(dir.size() - 3) == "/..")) {
            *error = "a file:// archive URL may not contain '..'";
            return std::nullopt;
        }
        t.kind = ArchiveTarget::Kind::File;
        t.dir = std::string(dir);
        return t;
    }
    if (url.rfind("s3://", 0) == 0) {
        std::string_view rest = url.substr(5);
        std::size_t slash = rest.find('/');
        std::string_view bucket = rest.substr(0, slash);
        std::string_view prefix =
            slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
        if (!valid_bucket(bucket)) {
            *error =
                "the bucket of an s3:// archive URL must be 3 to 63 lower-case letters, digits, "
                "'.' or '-': s3://bucket/prefix";
            return std::nullopt;
        }
        while (!prefix.empty() && prefix.back() == '/')
            prefix.remove_suffix(1);
        for (char c : prefix)
            if (!valid_key_char(c)) {
                *error =
                    "the prefix of an s3:// archive URL may hold letters, digits, '_', '-', '.' "
                    "and '/' only";
                return std::nullopt;
            }
        if (!prefix.empty() && prefix.front() == '/') {
            *error = "the prefix of an s3:// archive URL may not start with '/'";
            return std::nullopt;
        }
        t.kind = ArchiveTarget::Kind::S3;
        t.bucket = std::string(bucket);
        t.prefix = std::string(prefix);
        return t;
    }
    *error = "an archive URL is file:///dir or s3://bucket/prefix";
    return std::nullopt;
}

std::string object_path(const ArchiveTarget &t, std::string_view parent, std::string_view partition,
                        std::string_view file) {
    std::string p = t.kind == ArchiveTarget::Kind::File ? t.dir : t.prefix;
    if (!p.empty() && p.back() != '/')
        p += '/';
    p.append(parent);
    p += '/';
    p.append(partition);
    p += '/';
    p.append(file);
    return p;
}

std::string object_url(const ArchiveTarget &t, std::string_view path) {
    if (t.kind == ArchiveTarget::Kind::File)
        return "file://" + std::string(path);
    return "s3://" + t.bucket + "/" + std::string(path);
}

bool valid_object_name(std::string_view name) {
    if (name.empty() || name.size() > 63 || name.front() == '.')
        return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    return true;
}

std::string part_name(unsigned n, bool gzip) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "part-%05u.csv%s", n, gzip ? ".gz" : "");
    return buf;
}

std::optional<AwsCredentials> parse_aws_credentials(std::string_view text, std::string_view profile,
                                                    std::string *error) {
    AwsCredentials c;
    bool in_profile = false, seen_profile = false;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = trim(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (line.empty() || line.front() == '#' || line.front() == ';')
            continue;
        if (line.front() == '[' && line.back() == ']') {
            in_profile = trim(line.substr(1, line.size() - 2)) == profile;
            seen_profile = seen_profile || in_profile;
            continue;
        }
        if (!in_profile)
            continue;
        std::size_t eq = line.find('=');
        if (eq == std::string_view::npos)
            continue;
        std::string_view key = trim(line.substr(0, eq));
        std::string_view value = trim(line.substr(eq + 1));
        if (key == "aws_access_key_id")
            c.access_key_id = std::string(value);
        else if (key == "aws_secret_access_key")
            c.secret_access_key = std::string(value);
        else if (key == "aws_session_token")
            c.session_token = std::string(value);
    }
    if (!seen_profile) {
        *error = "the credentials file has no [" + std::string(profile) + "] profile";
        return std::nullopt;
    }
    if (c.access_key_id.empty() || c.secret_access_key.empty()) {
        *error = "profile [" + std::string(profile) + "] of the credentials file lacks " +
                 (c.access_key_id.empty() ? "aws_access_key_id" : "aws_secret_access_key");
        return std::nullopt;
    }
    return c;
}

}  // namespace hb::core
