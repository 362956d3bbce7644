// key_codec.hpp — order-preserving byte encodings of device identifiers.
//
// Pure C++ (no postgres.h). The last-status triggers turn every device value
// into a byte string whose memcmp order is the order in which rows are
// locked: integers become 8 big-endian bytes with the sign bit flipped (so
// memcmp order == numeric order, for int2, int4 and int8 alike), text and
// uuid keep their bytes (memcmp order == COLLATE "C" order == uuid order).
// The SQL paths sort with the same order, so every writer of a last-status
// table takes its row locks in one global order and concurrent batches never
// deadlock on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hb::core {

// What a device column's type is encoded as.
enum class KeyKind : std::uint8_t {
    Int,    // smallint, integer, bigint
    Bytes,  // text, varchar (deterministic collation), uuid
};

inline constexpr std::size_t kIntKeyBytes = 8;

// Writes the order-preserving encoding of v into out[0..7].
void encode_int_to(std::int64_t v, char out[kIntKeyBytes]) noexcept;

// Appends the order-preserving encoding of v to out.
void encode_int(std::int64_t v, std::string &out);

// Decodes an encoding produced by encode_int. The key must be 8 bytes.
std::int64_t decode_int(std::string_view key) noexcept;

// Compares two encoded keys in lock order. Returns <0, 0 or >0.
int compare_keys(std::string_view a, std::string_view b) noexcept;

}  // namespace hb::core
