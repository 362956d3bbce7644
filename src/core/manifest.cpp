// manifest.cpp — see manifest.hpp.
#include "core/manifest.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace hb::core {

std::string json_string(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
    return out;
}

std::string manifest_json(const Manifest &m) {
    std::string j = "{\n";
    auto field = [&](const char *key, const std::string &value, bool last = false) {
        j += "  ";
        j += json_string(key);
        j += ": ";
        j += value;
        j += last ? "\n" : ",\n";
    };
    field("format", json_string("hb_lifecycle archive 1"));
    field("parent", json_string(m.parent));
    field("partition", json_string(m.partition));
    field("range_start", json_string(m.range_start));
    field("range_end", json_string(m.range_end));
    std::string cols = "[";
    for (std::size_t i = 0; i < m.columns.size(); ++i) {
        cols += i ? ", " : "";
        cols += "{\"name\": " + json_string(m.columns[i].name) +
                ", \"type\": " + json_string(m.columns[i].type) + "}";
    }
    cols += "]";
    field("columns", cols);
    field("row_count", std::to_string(m.row_count));
    field("bytes", std::to_string(m.bytes));
    field("compression", json_string(m.compression));
    std::string files = "[";
    for (std::size_t i = 0; i < m.files.size(); ++i) {
        files += i ? ", " : "";
        files += "{\"name\": " + json_string(m.files[i].name) +
                 ", \"bytes\": " + std::to_string(m.files[i].bytes) +
                 ", \"sha256\": " + json_string(m.files[i].sha256) + "}";
    }
    files += "]";
    field("files", files);
    field("extension_version", json_string(m.extension_version));
    field("created_at", json_string(m.created_at), true);
    j += "}\n";
    return j;
}

std::size_t clamp_part_size(std::uint64_t configured) {
    std::uint64_t v = std::max<std::uint64_t>(configured, kMinPartBytes);
    v = std::min<std::uint64_t>(v, kMaxPartBytes);
    return static_cast<std::size_t>(v);
}

bool retryable_status(long s) {
    return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

double backoff_seconds(int attempt, double base_s, double cap_s, std::uint32_t random) {
    if (attempt < 1)
        attempt = 1;
    double ceiling = std::min(cap_s, base_s * std::ldexp(1.0, std::min(attempt - 1, 30)));
    return ceiling * (static_cast<double>(random) / 4294967296.0);
}

}  // namespace hb::core
