// key_codec.cpp — see key_codec.hpp.
#include "core/key_codec.hpp"

#include <cstring>

namespace hb::core {

void encode_int_to(std::int64_t v, char out[kIntKeyBytes]) noexcept {
    // Flipping the sign bit maps INT64_MIN..INT64_MAX onto 0..UINT64_MAX
    // monotonically; big-endian bytes then compare like the numbers.
    std::uint64_t u = static_cast<std::uint64_t>(v) ^ (std::uint64_t{1} << 63);
    for (int i = static_cast<int>(kIntKeyBytes) - 1; i >= 0; --i) {
        out[i] = static_cast<char>(u & 0xffu);
        u >>= 8;
    }
}

void encode_int(std::int64_t v, std::string &out) {
    char buf[kIntKeyBytes];
    encode_int_to(v, buf);
    out.append(buf, kIntKeyBytes);
}

std::int64_t decode_int(std::string_view key) noexcept {
    std::uint64_t u = 0;
    for (std::size_t i = 0; i < kIntKeyBytes && i < key.size(); ++i)
        u = (u << 8) | static_cast<unsigned char>(key[i]);
    return static_cast<std::int64_t>(u ^ (std::uint64_t{1} << 63));
}

int compare_keys(std::string_view a, std::string_view b) noexcept {
    const std::size_t n = a.size() < b.size() ? a.size() : b.size();
    if (n > 0) {
        const int c = std::memcmp(a.data(), b.data(), n);
        if (c != 0)
            return c;
    }
    if (a.size() == b.size())
        return 0;
    return a.size() < b.size() ? -1 : 1;
}

}  // namespace hb::core
