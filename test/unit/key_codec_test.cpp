// Unit tests of core/key_codec: the byte order of encoded device keys is the
// lock order, so it must match the numeric order exactly.
#include "core/key_codec.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using hb::core::compare_keys;
using hb::core::decode_int;
using hb::core::encode_int;

namespace {

std::string key(std::int64_t v) {
    std::string out;
    encode_int(v, out);
    return out;
}

}  // namespace

TEST(KeyCodec, IntegerKeysAreEightBytes) {
    EXPECT_EQ(key(0).size(), hb::core::kIntKeyBytes);
    EXPECT_EQ(key(std::numeric_limits<std::int64_t>::min()).size(), hb::core::kIntKeyBytes);
}

TEST(KeyCodec, DecodeInvertsEncode) {
    const std::vector<std::int64_t> values = {std::numeric_limits<std::int64_t>::min(),
                                              -4294967296LL,
                                              -32768,
                                              -1,
                                              0,
                                              1,
                                              2,
                                              255,
                                              256,
                                              32767,
                                              2147483647LL,
                                              std::numeric_limits<std::int64_t>::max()};
    for (std::int64_t v : values)
        EXPECT_EQ(decode_int(key(v)), v) << v;
}

TEST(KeyCodec, ByteOrderIsNumericOrder) {
    const std::vector<std::int64_t> ascending = {std::numeric_limits<std::int64_t>::min(),
                                                 -1000000000000LL,
                                                 -65536,
                                                 -256,
                                                 -255,
                                                 -1,
                                                 0,
                                                 1,
                                                 255,
                                                 256,
                                                 65536,
                                                 1000000000000LL,
                                                 std::numeric_limits<std::int64_t>::max()};
    for (std::size_t i = 0; i + 1 < ascending.size(); ++i) {
        EXPECT_LT(compare_keys(key(ascending[i]), key(ascending[i + 1])), 0)
            << ascending[i] << " vs " << ascending[i + 1];
        EXPECT_GT(compare_keys(key(ascending[i + 1]), key(ascending[i])), 0);
    }
}

TEST(KeyCodec, EqualKeysCompareEqual) {
    EXPECT_EQ(compare_keys(key(42), key(42)), 0);
    EXPECT_EQ(compare_keys("device-7", "device-7"), 0);
}

TEST(KeyCodec, ByteKeysCompareLikeCollateC) {
    // A prefix sorts first; bytes compare unsigned (UTF-8 after ASCII).
    EXPECT_LT(compare_keys("dev", "device"), 0);
    EXPECT_LT(compare_keys("Z", "a"), 0);
    EXPECT_LT(compare_keys("z", "\xc3\xa9"), 0);
    EXPECT_LT(compare_keys("", "a"), 0);
}
